"""Downstream systems, declared in one config file.

Two files ship: `layers/common/config/systems.json`, the production example (vendors' real
base URLs, `EDIT-ME` placeholders an operator must replace), and `local/systems.json`, the
local stack's default (sandbox URLs under `${LOCAL_STACK_URL}`).

Each system names its connector type, the identifier types it can act on, the purposes it
serves, how identifiers are hashed for it, its rate limit, where its credentials live, and
connector options. `${VAR}` in option strings is expanded from the environment. Loading
refuses, naming the system and the option: a variable left unexpanded, a URL option (`*url`)
that is not HTTPS, except plain HTTP to a loopback host in local mode (`OPTOUT_LOCAL_MODE=true`:
the local stack and the tests set it, a deployed stack never does), and, outside local mode, a
URL whose host is an IP address that is not public (private, loopback, link-local such as the
instance metadata address 169.254.169.254). Host names stay allowed.

Two optional top-level maps, `unserved_purposes` and `unserved_identifier_types` (word ->
reason), record that no system serves a purpose, or takes an identifier type, on purpose:
`make template` and the local stack refuse a file that leaves one unserved without saying so
(scripts/gen_template.py, `check_coverage`), since an opt-out of it would read `completed`
with no system sent to.

Functions read the configuration as frozen dataclasses (`SystemConfig`, `SystemsConfig`).
`load_systems` reads a file in its plain, valid form directly; any other file (a refusal, a
value in a form the plain reader is not sure of) goes to the pydantic models in
`optout.systems_models`, imported only then: they stay the one description of what is valid
and word every refusal (docs/decisions.md, "The systems configuration without pydantic";
tests/unit/test_systems_plain.py holds the plain reader to them).
"""

import hashlib
import ipaddress
import json
import math
import os
import re
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final, Literal, get_args

from optout.identifiers import ID_TYPES, IdType
from optout.plain_text import pydantic_str
from optout.purposes import ALL_PURPOSES, Purpose

ConnectorType = Literal[
    "webhook", "segment", "braze", "salesforce", "google_ads", "meta", "trade_desk"
]
Hashing = Literal["none", "sha256"]


# The identifier types each connector can send (its vendor's API has a field for them). A
# system may declare fewer, never more: a job the connector cannot act on would only end as
# "no record". The connectors read their `accepted_types` from here.
CONNECTOR_ID_TYPES: dict[str, tuple[IdType, ...]] = {
    "webhook": ("email", "phone", "customer_id", "device_id"),
    # Segment matches on userId only: our device_id is our cookie, not Segment's anonymousId.
    "segment": ("customer_id",),
    "braze": ("customer_id", "email", "phone"),
    "salesforce": ("email",),
    "google_ads": ("email", "phone"),
    "meta": ("email", "phone"),
    "trade_desk": ("email", "phone"),
}
# How each connector hashes identifiers, whatever a system's `hashing` says: only the webhook
# reads the field (None). `make template` refuses a system declaring another form, as braze,
# salesforce and segment would still send clear values under `"hashing": "sha256"`.
CONNECTOR_HASHING: dict[str, Hashing | None] = {
    "webhook": None,
    "segment": "none",
    "braze": "none",
    "salesforce": "none",
    "google_ads": "sha256",
    "meta": "sha256",
    "trade_desk": "sha256",
}
NAME_PATTERN: Final = r"[a-z][a-z0-9_]{0,39}"
DEFAULT_RATE_LIMIT: Final = 10


@dataclass(frozen=True)  # no slots: rebuilding the class for them costs a cold start
class SystemConfig:
    """One downstream system, as validated by `optout.systems_models.SystemModel`."""

    name: str
    type: ConnectorType
    identifier_types: tuple[IdType, ...]
    purposes: tuple[Purpose, ...]
    hashing: Hashing = "none"
    rate_limit_per_second: float = DEFAULT_RATE_LIMIT
    credentials: str | None = None  # Secrets Manager name (prod) or key in the local secrets file
    options: dict[str, Any] = field(default_factory=dict)

    def accepts(self, id_type: str) -> bool:
        return id_type in self.identifier_types

    @property
    def queue_key(self) -> str:
        """Letters and digits only: names the system's queue, DLQ and worker in template.yaml."""
        return re.sub(r"[^A-Za-z0-9]", "", self.name)


@dataclass(frozen=True)
class SystemsConfig:
    systems: tuple[SystemConfig, ...]
    # What the file declares no system serves, on purpose: word -> the operator's reason.
    unserved_purposes: dict[Purpose, str] = field(default_factory=dict, hash=False)
    unserved_identifier_types: dict[IdType, str] = field(default_factory=dict, hash=False)
    # `fingerprint` of the file it was loaded from (`load_systems`); "" when built in code.
    fingerprint: str = field(default="", compare=False)

    def get(self, name: str) -> SystemConfig:
        for system in self.systems:
            if system.name == name:
                return system
        raise KeyError(name)


class SystemsConfigError(ValueError):
    """The systems file is unusable; the message names each system and field at fault."""


def load_systems(path: str | Path, environ: Mapping[str, str] | None = None) -> SystemsConfig:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    env = dict(os.environ if environ is None else environ)
    config = read_plain(data, env)
    return replace(config or _validated(path, data, env), fingerprint=fingerprint(data))


def _validated(path: str | Path, data: Any, env: Mapping[str, str]) -> SystemsConfig:
    from optout.systems_models import validate  # noqa: PLC0415 - pydantic only off the plain path

    try:
        return validate(data, env)
    except SystemsConfigError as error:
        raise SystemsConfigError(f"{path}: {error}") from None


FINGERPRINT_DIGITS: Final = 16


def fingerprint(data: Any) -> str:
    """The systems file's fingerprint, which a request's RESOLUTION keeps (`systems_sha256`):
    the first 16 hex digits of the SHA-256 of its canonical form, the JSON as parsed with keys
    sorted, no whitespace, UTF-8, `${VAR}`s as written (not expanded). An operator recomputes
    it from any copy of the file (docs/operations.md, "A request's record"): indentation and
    key order do not change it, any value does."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:FINGERPRINT_DIGITS]


# -- the plain reader -------------------------------------------------------------------------
# It returns exactly what the models make of `data`, or None: None is not a refusal, it sends
# the file to the models. So it accepts a subset of what they accept: JSON's own types, no
# coercion, texts pydantic takes as they are (`plain_text.pydantic_str`), and it gives up on
# anything a validator would raise about.

_FIELDS: Final = frozenset(f.name for f in fields(SystemConfig))
_REQUIRED: Final = frozenset({"name", "type", "identifier_types", "purposes"})
_NAME: Final = re.compile(NAME_PATTERN)
_CONNECTORS: Final = frozenset(get_args(ConnectorType))
_HASHING: Final = frozenset(get_args(Hashing))
_ID_TYPES: Final = frozenset(ID_TYPES)
_PURPOSES: Final = frozenset(ALL_PURPOSES)
_EXACT_FLOAT: Final = 2**53  # an int beyond it is the models' to judge


_TOP_LEVEL: Final = frozenset({"systems", "unserved_purposes", "unserved_identifier_types"})


def read_plain(data: Any, environ: Mapping[str, str]) -> SystemsConfig | None:
    if type(data) is not dict or "systems" not in data or not data.keys() <= _TOP_LEVEL:
        return None
    if type(data["systems"]) is not list:
        return None
    systems: list[SystemConfig] = []
    for raw in data["systems"]:
        system = _plain_system(raw, environ)
        if system is None:
            return None
        systems.append(system)
    if len({s.name for s in systems}) != len(systems):
        return None
    purposes = _reasons(data.get("unserved_purposes", {}), _PURPOSES)
    id_types = _reasons(data.get("unserved_identifier_types", {}), _ID_TYPES)
    if purposes is None or id_types is None:
        return None
    return SystemsConfig(tuple(systems), purposes, id_types)


def _reasons(value: Any, allowed: frozenset[str]) -> dict[Any, str] | None:
    """A JSON object of allowed word -> non-empty reason, as a dict; None otherwise."""
    if type(value) is not dict:
        return None
    for key, reason in value.items():
        if key not in allowed or type(reason) is not str or not reason:
            return None
        if not pydantic_str(reason):
            return None
    return dict(value)


def _plain_system(raw: Any, environ: Mapping[str, str]) -> SystemConfig | None:
    if type(raw) is not dict or not _REQUIRED <= raw.keys() <= _FIELDS:
        return None
    name, kind = raw["name"], raw["type"]
    if type(name) is not str or not _NAME.fullmatch(name) or type(kind) is not str:
        return None
    if kind not in _CONNECTORS:
        return None
    id_types = _words(raw["identifier_types"], _ID_TYPES)
    purposes = _words(raw["purposes"], _PURPOSES)
    if not id_types or not purposes or not set(id_types) <= set(CONNECTOR_ID_TYPES[kind]):
        return None
    hashing = raw.get("hashing", CONNECTOR_HASHING[kind] or "none")  # as the model reads it
    credentials = raw.get("credentials")
    options = raw.get("options", {})
    if type(hashing) is not str or hashing not in _HASHING or type(options) is not dict:
        return None
    if credentials is not None and not pydantic_str(credentials):
        return None
    rate: float = DEFAULT_RATE_LIMIT  # a default is not validated: the models keep the int too
    if "rate_limit_per_second" in raw:
        given = raw["rate_limit_per_second"]
        if type(given) not in (int, float) or not 0 < given <= _EXACT_FLOAT:
            return None
        if not math.isfinite(given):  # inf is the models' (they take it), NaN too (they don't)
            return None
        rate = float(given)
    if not all(pydantic_str(key) for key in options):
        return None
    try:
        options = expand_options(options, environ, name)
    except ValueError:
        return None
    # kind and hashing are among their Literal's words (checked above)
    return SystemConfig(name, kind, id_types, purposes, hashing, rate, credentials, options)  # type: ignore[arg-type]


def _words(value: Any, allowed: frozenset[str]) -> tuple[Any, ...]:
    """A non-empty JSON array of allowed words, as a tuple; () otherwise."""
    if type(value) is not list or not all(type(v) is str and v in allowed for v in value):
        return ()
    return tuple(value)


def expand_options(
    options: dict[str, Any], environ: Mapping[str, str], name: str
) -> dict[str, Any]:
    """Each option's ${VAR} expanded and each URL option checked (ValueError, naming the system
    and the option): the models' first step, and the plain reader's."""
    expanded = {k: _expand(v, environ, name, f"options.{k}") for k, v in options.items()}
    for key, value in expanded.items():
        if key.endswith("url") and isinstance(value, str):
            _check_url(
                value, name, f"options.{key}", local=environ.get("OPTOUT_LOCAL_MODE") == "true"
            )
    return expanded


VARIABLE = re.compile(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
LOOPBACK_NAMES = frozenset({"localhost"})
# Blocks whose `is_global` differs by Python version (CPython gh-113171: the tests' 3.11.7 and
# Lambda's 3.13 disagree), refused on every version so a file the tests and `make template`
# accept is one Lambda loads. None holds a vendor's API; 6to4 carries any IPv4 address.
NOT_GLOBAL_EVERYWHERE: Final = tuple(
    ipaddress.ip_network(block)
    for block in (
        "192.0.0.0/24",  # IETF protocol assignments: 3.11.7 refuses only 192.0.0.0/29
        "2001::/23",  # IETF protocol assignments: 3.13 allows 2001:20::/28, 2001:4:112::/48, ...
        "2002::/16",  # 6to4 (2002:a00:5:: is 10.0.0.5): 3.11.7 allows it
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation: 3.11.7 allows it
    )
)


def _expand(value: Any, environ: Mapping[str, str], system: str, field: str) -> Any:
    """${VAR} (and $VAR) from the environment; an unset one refuses the file."""
    if isinstance(value, list):
        return [_expand(v, environ, system, f"{field}[{n}]") for n, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _expand(v, environ, system, f"{field}.{k}") for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        variable = match.group(1) if match.group(1) is not None else match.group(2)
        if variable not in environ:
            raise ValueError(f"system {system}: {field} uses ${{{variable}}}, which is not set")
        return environ[variable]

    return VARIABLE.sub(substitute, value)


def _check_url(url: str, system: str, field: str, *, local: bool) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        if not local and _internal_address(parts.hostname):
            raise ValueError(
                f"system {system}: {field} must name a public host: its host is a private, "
                "loopback, link-local or otherwise non-public IP address"
            )
        return
    if parts.scheme == "http" and parts.hostname and local and _loopback(parts.hostname):
        return
    allowed = "https (or http to a loopback host in local mode)" if local else "https"
    raise ValueError(f"system {system}: {field} must be an {allowed} URL")


def _internal_address(host: str) -> bool:
    """An IP literal (any form the resolver takes: 10.0.0.5, ::1, 0x7f.1) that is not a public
    address: private, loopback, link-local (the instance metadata address), reserved. A vendor
    is reached by a name; an internal address in the production file is a typo or an attack."""
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:  # the legacy IPv4 forms getaddrinfo also reads: 167772165, 0xa.0.0.5, 10.5
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False  # a host name
    inside = _embedded_ipv4(address)
    if inside is not None and _internal_address(str(inside)):
        return True
    return not address.is_global or any(address in network for network in NOT_GLOBAL_EVERYWHERE)


# IPv6 forms that carry an IPv4 address in their last 32 bits: NAT64's well-known prefix
# (a translator reaches 64:ff9b::a00:5 as 10.0.0.5) and the deprecated IPv4-compatible form.
CARRIES_IPV4: Final = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))


def _embedded_ipv4(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches (review s21 py313: `[64:ff9b::a00:5]` and
    `[::a00:5]`, 10.0.0.5, read as public on every Python), None for any other address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if any(address in network for network in CARRIES_IPV4) and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped or address.sixtofour


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


PLACEHOLDER = "EDIT-ME"  # marks values in the production example an operator must replace


def placeholders(options: Mapping[str, Any], prefix: str = "options") -> list[str]:
    """Option paths still holding the production example's placeholder."""
    found: list[str] = []
    for key, value in options.items():
        path = f"{prefix}.{key}"
        if isinstance(value, str) and PLACEHOLDER in value:
            found.append(path)
        elif isinstance(value, Mapping):
            found.extend(placeholders(value, path))
        elif isinstance(value, list):
            found.extend(p for n, v in enumerate(value) for p in placeholders({str(n): v}, path))
    return found
