"""Vendor name (the connector type in systems.json) -> sandbox vendor class.

`uid2` is not a connector type: it is the UID2 operator The Trade Desk's connector maps
identifiers through, served at /_sandbox/uid2/ with the trade_desk system's UID2 credentials.
"""

from collections.abc import Callable
from typing import Any

from local.sandbox.braze import Braze
from local.sandbox.google_ads import GoogleAds
from local.sandbox.meta import Meta
from local.sandbox.salesforce import Salesforce
from local.sandbox.segment import Segment
from local.sandbox.trade_desk import TradeDesk
from local.sandbox.uid2 import Uid2Operator
from local.sandbox.webhook import Webhook
from local.sandbox.wire import Vendor

UID2 = "uid2"


def uid2_operator(secrets: dict[str, Any]) -> Vendor:
    return Uid2Operator(
        [(str(secrets.get("uid2_api_key")), str(secrets.get("uid2_secret_key", "")))]
    )


VENDORS: dict[str, Callable[[dict[str, Any]], Vendor]] = {
    "webhook": Webhook,
    "segment": Segment,
    "braze": Braze,
    "salesforce": Salesforce,
    "google_ads": GoogleAds,
    "meta": Meta,
    "trade_desk": TradeDesk,
    UID2: uid2_operator,
}


def with_operators(
    systems: list[tuple[str, str, dict[str, Any]]],
) -> list[tuple[str, str, dict[str, Any]]]:
    """The configured systems plus the sandboxes they depend on (the UID2 operator)."""
    extra = [(UID2, UID2, secrets) for _name, vendor, secrets in systems if vendor == "trade_desk"][
        :1
    ]
    names = {name for name, _, _ in systems}
    return systems + [e for e in extra if e[0] not in names]
