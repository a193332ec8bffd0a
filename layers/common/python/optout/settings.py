"""Configuration, validated once per cold start from the environment."""

import os
import re
from dataclasses import MISSING, dataclass, fields
from typing import Any

# Documented development default (README "Configuration"): used only in local mode
# (OPTOUT_LOCAL_MODE=true: the local stack and the tests). Production sets HASH_KEY_SECRET_NAME.
LOCAL_HASH_KEY = "optout-bridge-local-development-key-not-secret"
# The same for identity tokens (README "Identity tokens"): the local demo login signs with it.
# Accepted only with OPTOUT_LOCAL_MODE=true; a deployed capture function without
# IDENTITY_TOKEN_SECRET_NAME refuses to start (optout/token_keys.py).
LOCAL_TOKEN_KID = "local-dev"  # noqa: S105 - a key id, and a documented development one
LOCAL_TOKEN_KEY = "optout-bridge-local-development-token-key-not-secret"  # noqa: S105


# name -> (lower bound or None, exclusive?, upper bound inclusive or None): check_bounds'.
Bounds = dict[str, tuple[float | None, bool, float | None]]
# The whole-number settings, inclusive bounds.
_BOUNDS: Bounds = {
    "record_retention_days": (731, False, None),  # CCPA: >= 24 months
    "max_body_bytes": (None, False, None),
    "max_cluster_size": (2, False, 99),
    "max_asserters": (1, False, 1000),
    "max_asserted": (1, False, 1000),
    "max_cluster_asserted": (1, False, 1000),
    "identity_token_max_lifetime_seconds": (30, False, 3600),
    # At most a week: a person who becomes a vendor's customer after its "no such person"
    # must still get the opt-out well inside the 15 business days CCPA allows.
    "no_record_quiet_hours": (0, False, 168),
}
# Values parse as they did when this class was a pydantic model (lax mode), so a stack that
# started before starts now. The plain forms every template writes are read here; anything else
# ("1100.0", " 1095 ", "True") goes to pydantic's own TypeAdapter, imported only then
# (tests/unit/test_settings.py holds read_variable to it).
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_PLAIN_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")  # a JSON integer well inside pydantic's limit
# A JSON number without an exponent, short enough that float() and pydantic round it alike.
_PLAIN_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")


@dataclass(frozen=True)  # no slots: rebuilding the class for them costs a cold start ~1 ms
class Settings:
    """A plain dataclass, not a pydantic model: every function builds one at its cold start,
    and the capture function's hot routes import no pydantic (docs/decisions.md, "The hot
    bodies without pydantic"). A bad value stops the function at its start (ValueError, naming
    the variable, never its value), as the model's ValidationError did."""

    table_name: str
    hash_key_secret_name: str | None = None
    local_hash_key: str = LOCAL_HASH_KEY
    optout_local_mode: bool = False  # OPTOUT_LOCAL_MODE; nothing sets it on Lambda
    edge_secret_name: str | None = None  # EnableEdge=true: the CloudFront origin header's secret
    store_ip_address: bool = False
    record_retention_days: int = 1095
    policy_version: str = "unversioned"
    # The site's privacy choices page (the webform), linked from the API's HTML pages; the API
    # serves none itself. Empty: no such link.
    privacy_page_url: str = ""
    max_body_bytes: int = 16 * 1024
    systems_config: str = "config/systems.json"
    queue_url_template: str = ""  # "https://sqs.../{system}-jobs": one queue per system
    # A job and the in-flight marks of its identities are one transaction (100 items at most).
    max_cluster_size: int = 50
    # Identities that may assert one identifier (webform, banner without a token): bounds
    # what a stranger can make every later resolution of that identifier read.
    max_asserters: int = 100
    # Identifiers one browser (or identity) may assert: bounds what one stranger's device makes
    # each of its later events fan out to.
    max_asserted: int = 20
    # Identifiers one verified cluster may assert, all its members together (a person's few
    # browsers naming family or their own unlinked identifiers): what one account logged in
    # on many browsers can make each event fan out to (docs/decisions.md, "Asserted edges per
    # cluster").
    max_cluster_asserted: int = 100
    # After a vendor answers "no such person" for an identity, the resolver asks it nothing
    # more about that identity for this long (0: every event asks again).
    no_record_quiet_hours: int = 24
    identity_token_secret_name: str | None = None
    identity_token_audience: str = "optout-bridge"  # noqa: S105
    identity_token_max_lifetime_seconds: int = 600

    def __post_init__(self) -> None:
        check_kinds(self, _KINDS, _OPTIONAL)
        check_bounds(self, _BOUNDS)
        if not self.identity_token_audience:
            raise ValueError("setting IDENTITY_TOKEN_AUDIENCE: must not be empty")

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(**environment_values(cls, _KINDS))


_KINDS: dict[str, type] = {
    "optout_local_mode": bool,
    "store_ip_address": bool,
    **dict.fromkeys(_BOUNDS, int),
}
_KINDS.update((name, str) for name in Settings.__dataclass_fields__ if name not in _KINDS)
_OPTIONAL = frozenset({"hash_key_secret_name", "edge_secret_name", "identity_token_secret_name"})


def environment_values(settings: type, kinds: dict[str, type]) -> dict[str, Any]:
    """A settings dataclass's values from the variables named after its fields (upper case),
    each read as its kind; an empty variable is unset, and a field without a default must be
    set (ValueError naming the variable). Settings' and the worker's settings'."""
    values: dict[str, Any] = {}
    for item in fields(settings):
        raw = os.environ.get(item.name.upper(), "")
        if raw != "":
            values[item.name] = read_variable(item.name, kinds[item.name], raw)
    for item in fields(settings):
        if item.name not in values and item.default is MISSING and item.default_factory is MISSING:
            raise ValueError(f"setting {item.name.upper()}: is required")
    return values


def check_kinds(settings: object, kinds: dict[str, type], optional: frozenset[str]) -> None:
    """Each field's value of its kind (an int is a float too; a bool is neither), or None where
    it may be unset: ValueError naming the variable."""
    for item in fields(settings):  # type: ignore[arg-type]
        value, kind = getattr(settings, item.name), kinds[item.name]
        if value is None and item.name in optional:
            continue
        if not (type(value) in (int, float) if kind is float else type(value) is kind):
            raise ValueError(f"setting {item.name.upper()}: must be of type {kind.__name__}")


def check_bounds(settings: object, bounds: Bounds) -> None:
    """Each bounded field within its bounds: ValueError naming the variable and the bound."""
    for name, (low, above, high) in bounds.items():
        value = getattr(settings, name)
        # `not (...)` so that NaN, which compares false to everything, is refused
        if low is not None and not (value > low if above else value >= low):
            relation = "greater than" if above else "at least"
            raise ValueError(f"setting {name.upper()}: must be {relation} {low}")
        if high is not None and not value <= high:
            raise ValueError(f"setting {name.upper()}: must be at most {high}")


def read_variable(name: str, kind: type, raw: str) -> object:
    """One variable's text as `kind` (bool, int, float or str) the way pydantic's lax mode
    reads it; ValueError naming the variable, never its value. Also the worker's settings'."""
    if kind is bool and raw in _TRUE | _FALSE:
        return raw in _TRUE
    if kind is int and _PLAIN_INT.fullmatch(raw):
        return int(raw)
    if kind is float and _PLAIN_FLOAT.fullmatch(raw):
        return float(raw)
    if kind is str:
        return raw
    return _lax(name, kind, raw)


def _lax(name: str, kind: type, raw: str) -> object:
    """A value in any other form, read by pydantic's lax rules (rare: not on a cold start's
    usual path, so pydantic is imported only here)."""
    from pydantic import TypeAdapter, ValidationError  # noqa: PLC0415

    try:
        return TypeAdapter(kind).validate_python(raw)
    except ValidationError:
        what = {bool: "true or false", int: "a whole number"}.get(kind, "a number")
        raise ValueError(f"setting {name.upper()}: must be {what}") from None
