"""Configuration, validated once per cold start from the environment."""

import os
import re
from dataclasses import dataclass, fields
from typing import Any

# Documented development default (README "Configuration"): used only in local mode
# (OPTOUT_LOCAL_MODE=true: the local stack and the tests). Production sets HASH_KEY_SECRET_NAME.
LOCAL_HASH_KEY = "optout-bridge-local-development-key-not-secret"
# The same for identity tokens (README "Identity tokens"): the local demo login signs with it.
# Accepted only with OPTOUT_LOCAL_MODE=true; a deployed capture function without
# IDENTITY_TOKEN_SECRET_NAME refuses to start (optout/token_keys.py).
LOCAL_TOKEN_KID = "local-dev"  # noqa: S105 - a key id, and a documented development one
LOCAL_TOKEN_KEY = "optout-bridge-local-development-token-key-not-secret"  # noqa: S105


# Bounds of the whole-number settings, inclusive (None: no bound on that side).
_BOUNDS: dict[str, tuple[int | None, int | None]] = {
    "record_retention_days": (731, None),  # CCPA: >= 24 months
    "max_body_bytes": (None, None),
    "max_cluster_size": (2, 99),
    "max_asserters": (1, 1000),
    "identity_token_max_lifetime_seconds": (30, 3600),
}
# Values parse as they did when this class was a pydantic model (lax mode, pydantic-core
# 2.46), so a stack that started before starts now: tests/unit/test_settings.py holds _parse to
# pydantic's TypeAdapter(int) / TypeAdapter(bool). A boolean is one of these words, ASCII letters
# in any case, with no surrounding space.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
# A whole number: a JSON integer of at most 4300 characters, or one once cleaned of surrounding
# space (Rust's `trim`: Unicode White_Space, so not Python's \x1c-\x1f), a leading "+", leading
# zeros, a ".000" tail and single underscores between digits ("1_095.0" is 1095). ASCII digits
# only: a full-width "\uff15" is refused.
_JSON_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_MAX_INT_CHARS = 4300
_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


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
    max_body_bytes: int = 16 * 1024
    systems_config: str = "config/systems.json"
    queue_url_template: str = ""  # "https://sqs.../{system}-jobs": one queue per system
    # A job and the in-flight marks of its identities are one transaction (100 items at most).
    max_cluster_size: int = 50
    # Identities that may assert one identifier (webform, banner without a token): bounds
    # what a stranger can make every later resolution of that identifier read.
    max_asserters: int = 100
    identity_token_secret_name: str | None = None
    identity_token_audience: str = "optout-bridge"  # noqa: S105
    identity_token_max_lifetime_seconds: int = 600

    def __post_init__(self) -> None:
        for item in fields(self):
            value, kind = getattr(self, item.name), _KINDS[item.name]
            if type(value) is not kind and not (value is None and item.name in _OPTIONAL):
                raise ValueError(f"setting {item.name.upper()}: must be of type {kind.__name__}")
        for name, (low, high) in _BOUNDS.items():
            value = getattr(self, name)
            if low is not None and value < low:
                raise ValueError(f"setting {name.upper()}: must be at least {low}")
            if high is not None and value > high:
                raise ValueError(f"setting {name.upper()}: must be at most {high}")
        if not self.identity_token_audience:
            raise ValueError("setting IDENTITY_TOKEN_AUDIENCE: must not be empty")

    @classmethod
    def from_env(cls) -> "Settings":
        """From the variables named after the fields (upper case); an empty one is unset."""
        env = os.environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = env.get(item.name.upper(), "")
            if raw != "":
                values[item.name] = _parse(item.name, raw)
        if "table_name" not in values:
            raise ValueError("setting TABLE_NAME: is required")
        return cls(**values)


_KINDS: dict[str, type] = {
    "optout_local_mode": bool,
    "store_ip_address": bool,
    **dict.fromkeys(_BOUNDS, int),
}
_KINDS.update((name, str) for name in Settings.__dataclass_fields__ if name not in _KINDS)
_OPTIONAL = frozenset({"hash_key_secret_name", "edge_secret_name", "identity_token_secret_name"})


def _parse(name: str, raw: str) -> object:
    kind = _KINDS[name]
    if kind is bool:
        word = raw.lower() if raw.isascii() else ""
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ValueError(f"setting {name.upper()}: must be true or false")
    if kind is int:
        number = _whole_number(raw)
        if number is None:
            raise ValueError(f"setting {name.upper()}: must be a whole number")
        return number
    return raw


def _whole_number(raw: str) -> int | None:
    if _JSON_INT.fullmatch(raw):
        return int(raw) if len(raw) <= _MAX_INT_CHARS else None
    text = _cleaned(raw)
    if text is None or not _JSON_INT.fullmatch(text) or len(text) > _MAX_INT_CHARS:
        return None
    return int(text)


def _cleaned(raw: str) -> str | None:
    text = raw.strip(_SPACE)
    if text.startswith("+"):
        text = text[1:]
        if text.startswith("-"):
            return None
    negative = text.startswith("-")
    if negative:
        text = text[1:]
        if text.startswith(("-", "+")):
            return None
    digits = _without_leading_zeros(text)
    if digits is None:
        return None
    text = digits
    point = text.find(".")
    if point >= 0 and text[point + 1 :] and not text[point + 1 :].strip("0"):
        text = text[:point]
    if "_" in text and "__" not in text and not text.startswith("_") and not text.endswith("_"):
        text = text.replace("_", "")
    return "-" + text if negative else text


def _without_leading_zeros(text: str) -> str | None:
    """ "007" -> "7", "000" -> "0", "00.0" -> "0.0", "0_001" -> "1"; None if it starts badly."""
    if not text or text[0] not in "0123456789-":
        return None
    if text[0] != "0":
        return text
    for index, char in enumerate(text[1:], start=1):
        if char in "123456789-":
            return text[index:]
        if char == ".":
            return text[index - 1 :]
        if char not in "0_":
            return None
    return text[-1]
