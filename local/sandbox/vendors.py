"""Vendor name (the connector type in systems.json) -> sandbox vendor class."""

from collections.abc import Callable
from typing import Any

from local.sandbox.braze import Braze
from local.sandbox.google_ads import GoogleAds
from local.sandbox.meta import Meta
from local.sandbox.salesforce import Salesforce
from local.sandbox.segment import Segment
from local.sandbox.trade_desk import TradeDesk
from local.sandbox.webhook import Webhook
from local.sandbox.wire import Vendor

VENDORS: dict[str, Callable[[dict[str, Any]], Vendor]] = {
    "webhook": Webhook,
    "segment": Segment,
    "braze": Braze,
    "salesforce": Salesforce,
    "google_ads": GoogleAds,
    "meta": Meta,
    "trade_desk": TradeDesk,
}
