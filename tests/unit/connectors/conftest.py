"""Connectors against the vendor sandboxes on a loopback HTTP server."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.sandbox.base import Sandbox
from local.sandbox.server import SandboxServer
from optout.connectors import CONNECTORS, Connector, Job
from optout.connectors.credentials import CredentialReader, fixed
from optout.connectors.http import HttpClient
from optout.identifiers import Identifier
from optout.systems import CONNECTOR_ID_TYPES
from optout.systems_models import SystemModel

ROOT = Path(__file__).resolve().parents[3]
SECRETS: dict[str, dict[str, Any]] = json.loads((ROOT / "local" / "secrets.json").read_text())
VENDORS = ("webhook", "segment", "braze", "salesforce", "google_ads", "meta", "trade_desk")
CONNECTOR_TIMEOUT = 2.0  # generous: a loaded CI machine must not turn a 200 into a timeout
SANDBOX_TIMEOUT_DELAY = 3.0  # longer than the connector timeout: a "timeout" fault times out

EMAIL = "Jane.Doe+ads@Gmail.com "  # raw; normalised below as the resolver would store it
EMAIL_NORMALISED = "jane.doe+ads@gmail.com"
PHONE = "+14155550123"

DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "google_ads": {"operating_account_id": "1234567890", "user_list_ids": ["555"]},
    "meta": {"ad_account_id": "1001"},
    "trade_desk": {"advertiser_id": "adv123"},
    "segment": {"categories": {"sale": "C0004", "share": "C0004",
                               "targeted_advertising": "C0004", "profiling": "C0003"}},
}  # fmt: skip
LOCAL = {"environ": {"OPTOUT_LOCAL_MODE": "true"}}  # validation context: local mode


def secret_for(vendor: str) -> dict[str, Any]:
    return dict(SECRETS[f"optout-bridge/systems/{vendor}"])


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    sandboxes = {
        v: Sandbox(v, v, secret_for(v), timeout_delay_seconds=SANDBOX_TIMEOUT_DELAY)
        for v in VENDORS
    }
    sandboxes["uid2"] = Sandbox("uid2", "uid2", secret_for("trade_desk"))
    with SandboxServer(sandboxes) as running:
        yield running


def make_connector(
    server: SandboxServer,
    vendor: str,
    *,
    options: dict[str, Any] | None = None,
    secret: dict[str, Any] | CredentialReader | None = None,
    hashing: str = "sha256",
    identifier_types: tuple[str, ...] | None = None,  # default: all the connector can send
) -> Connector:
    base_url = server.base_url(vendor)
    opts: dict[str, Any] = {
        "base_url": base_url,
        **DEFAULT_OPTIONS.get(vendor, {}),
        **(options or {}),
    }
    if vendor == "google_ads":
        opts.setdefault("token_url", base_url + "/token")
    if vendor == "trade_desk":
        opts.setdefault("uid2_base_url", server.base_url("uid2"))
    system = SystemModel.model_validate(
        {"name": vendor, "type": vendor,
         "identifier_types": list(identifier_types or CONNECTOR_ID_TYPES[vendor]),
         "purposes": ["sale", "share", "targeted_advertising", "profiling"], "hashing": hashing,
         "credentials": f"optout-bridge/systems/{vendor}", "options": opts},
        context=LOCAL,
    ).config()  # fmt: skip
    given = secret if secret is not None else secret_for(vendor)
    reader = fixed(given) if isinstance(given, dict) else given
    return CONNECTORS[vendor](system, reader, HttpClient(CONNECTOR_TIMEOUT))


def make_job(*identifiers: tuple[str, str], request_id: str = "req-1", system: str = "x",
             purposes: tuple[str, ...] = ("sale", "share"),
             jurisdictions: tuple[str, ...] = ()) -> Job:  # fmt: skip
    return Job(
        job_id=f"{request_id}:{system}",
        request_id=request_id,
        system=system,
        purposes=purposes,  # type: ignore[arg-type]
        identifiers=tuple(Identifier(t, v) for t, v in identifiers),  # type: ignore[arg-type]
        jurisdictions=jurisdictions,
    )


def calls(server: SandboxServer, vendor: str) -> list[dict[str, Any]]:
    return server.sandboxes[vendor].recorded()
