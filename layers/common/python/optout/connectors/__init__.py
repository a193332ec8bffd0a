"""Downstream connectors: one module per vendor behind the interface in base.py.

A vendor's module is imported when a connector of its type is first built: in production each
worker function serves one system, so its cold start imports one vendor, not seven.
"""

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from optout.connectors.base import Connector, Job, Outcome, Submitted
from optout.connectors.credentials import SecretSource
from optout.connectors.http import HttpClient
from optout.systems import ConnectorType, SystemConfig

_MODULES: dict[ConnectorType, tuple[str, str]] = {
    "webhook": ("webhook", "WebhookConnector"),
    "segment": ("segment", "SegmentConnector"),
    "braze": ("braze", "BrazeConnector"),
    "salesforce": ("salesforce", "SalesforceConnector"),
    "google_ads": ("google_ads", "GoogleAdsConnector"),
    "meta": ("meta", "MetaConnector"),
    "trade_desk": ("trade_desk", "TradeDeskConnector"),
}


class _Connectors(Mapping[ConnectorType, type[Connector[Any]]]):
    """Connector type -> class, each vendor's module imported on first look-up."""

    def __getitem__(self, kind: ConnectorType) -> type[Connector[Any]]:
        module, name = _MODULES[kind]
        found: type[Connector[Any]] = getattr(
            importlib.import_module(f"optout.connectors.{module}"), name
        )
        return found

    def __iter__(self) -> Iterator[ConnectorType]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


CONNECTORS: Mapping[ConnectorType, type[Connector[Any]]] = _Connectors()


def build_connector(
    system: SystemConfig, secrets: SecretSource, http: HttpClient
) -> Connector[Any]:
    """Options are validated here (ConfigError); credentials are read when first used."""
    return CONNECTORS[system.type](system, secrets.reader(system.credentials), http)


__all__ = ["CONNECTORS", "Connector", "Job", "Outcome", "Submitted", "build_connector"]
