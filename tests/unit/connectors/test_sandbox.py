"""The sandboxes themselves: deterministic faults, recording, and real request checks."""

import base64
import json

import pytest

from local.sandbox.base import Sandbox, SandboxRequest
from tests.unit.connectors.conftest import secret_for


def post(sandbox: Sandbox, path: str, body: object, headers: dict[str, str]) -> int:
    request = SandboxRequest("POST", path, headers, json.dumps(body).encode())
    return sandbox.handle(request).status


def test_fault_rate_one_half_fails_every_second_call():
    sandbox = Sandbox("braze", "braze", secret_for("braze"))
    sandbox.set_faults(0.5, 503)
    auth = {"authorization": "Bearer " + secret_for("braze")["api_key"]}
    body = {"attributes": [{"external_id": "c1", "flag": True}]}

    statuses = [post(sandbox, "/users/track", body, auth) for _ in range(4)]

    assert statuses == [201, 503, 201, 503]
    assert len(sandbox.recorded()) == 4


def test_fault_status_must_be_an_error_or_timeout():
    with pytest.raises(ValueError):
        Sandbox("braze", "braze", {}).set_faults(0.5, 200)


@pytest.mark.parametrize(
    ("vendor", "path", "body", "headers"),
    [
        (
            "braze",
            "/users/track",
            {"attributes": [{"flag": True}]},
            "Bearer local-fake-braze-rest-api-key",
        ),
        ("trade_desk", "/data/deletion-optout/advertiser", {"Items": []}, None),
        ("segment", "/v1/batch", {"batch": [{"type": "identify"}]}, None),
    ],
)
def test_a_malformed_request_gets_400(vendor, path, body, headers):
    secret = secret_for(vendor)
    if vendor == "trade_desk":
        auth = {"ttd-auth": secret["auth_token"]}
    elif vendor == "segment":
        auth = {
            "authorization": "Basic "
            + base64.b64encode(f"{secret['write_key']}:".encode()).decode()
        }
    else:
        auth = {"authorization": headers}

    assert post(Sandbox(vendor, vendor, secret), path, body, auth) == 400


def test_an_unknown_path_gets_404():
    sandbox = Sandbox("meta", "meta", secret_for("meta"))

    assert sandbox.handle(SandboxRequest("GET", "/v21.0/me", {}, b"")).status == 404
