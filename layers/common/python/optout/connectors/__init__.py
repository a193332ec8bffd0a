"""Downstream connectors: one module per vendor behind the interface in base.py."""

from typing import Any

from optout.connectors.base import Connector, Job, Outcome, Submitted
from optout.connectors.braze import BrazeConnector
from optout.connectors.credentials import SecretSource
from optout.connectors.google_ads import GoogleAdsConnector
from optout.connectors.http import HttpClient
from optout.connectors.meta import MetaConnector
from optout.connectors.salesforce import SalesforceConnector
from optout.connectors.segment import SegmentConnector
from optout.connectors.trade_desk import TradeDeskConnector
from optout.connectors.webhook import WebhookConnector
from optout.systems import ConnectorType, SystemConfig

CONNECTORS: dict[ConnectorType, type[Connector[Any]]] = {
    "webhook": WebhookConnector,
    "segment": SegmentConnector,
    "braze": BrazeConnector,
    "salesforce": SalesforceConnector,
    "google_ads": GoogleAdsConnector,
    "meta": MetaConnector,
    "trade_desk": TradeDeskConnector,
}


def build_connector(
    system: SystemConfig, secrets: SecretSource, http: HttpClient
) -> Connector[Any]:
    """Options are validated here (ConfigError); credentials are read when first used."""
    return CONNECTORS[system.type](system, secrets.reader(system.credentials), http)


__all__ = ["CONNECTORS", "Connector", "Job", "Outcome", "Submitted", "build_connector"]
