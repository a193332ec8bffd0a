"""The sandboxes themselves: deterministic faults, recording, and real request checks."""

import base64
import json
import urllib.parse
from datetime import UTC, datetime

import pytest
from uid2_client import IdentityMapV3Client, IdentityMapV3Input
from uid2_client.request_response_util import create_envelope

from local.sandbox import uid2
from local.sandbox.base import FaultPlan, Sandbox, SandboxRequest, SandboxResponse
from local.sandbox.server import SandboxServer
from tests.unit.connectors.conftest import secret_for


def post(sandbox: Sandbox, path: str, body: object, headers: dict[str, str]) -> int:
    request = SandboxRequest("POST", path, headers, json.dumps(body).encode())
    return sandbox.handle(request).status


def test_fault_rate_one_half_fails_every_second_call():
    sandbox = Sandbox("braze", "braze", secret_for("braze"))
    sandbox.set_faults(0.5, 503)
    auth = {"authorization": "Bearer " + secret_for("braze")["api_key"]}
    body = {"attributes": [{"external_id": "c1", "flag": True, "_update_existing_only": True}]}

    statuses = [post(sandbox, "/users/track", body, auth) for _ in range(4)]

    assert statuses == [201, 503, 201, 503]
    assert len(sandbox.recorded()) == 4


def test_an_applied_fault_carries_the_call_out_then_answers_the_fault():
    # A commit whose answer was lost: Braze's profile flag is written, the caller sees a 503
    sandbox = Sandbox("braze", "braze", secret_for("braze"))
    report = sandbox.set_fault_spec({"rate": 1, "status": 503, "applied": True})

    answer = braze_call(sandbox)

    assert (answer.status, report["applied"]) == (503, True)
    assert sandbox.vendor.updated == {"external_id:c1": {"flag": True}}


def test_fault_status_must_be_an_error_or_timeout():
    with pytest.raises(ValueError):
        Sandbox("braze", "braze", {}).set_faults(0.5, 200)


@pytest.mark.parametrize(
    "body",
    [
        {"email_address": "p1@example.com", "phone": "+14155550123"},  # two identifiers
        {"phone": "4155550123"},  # a national number: Braze types phone "String in E.164"
        {"phone": "+1 415 555 0123"},
    ],
)
def test_braze_export_takes_one_email_or_one_e164_phone_per_request(body):
    sandbox = Sandbox("braze", "braze", secret_for("braze"))
    auth = {"authorization": "Bearer " + secret_for("braze")["api_key"]}

    refused = post(sandbox, "/users/export/ids", {**body, "fields_to_export": ["braze_id"]}, auth)
    taken = post(sandbox, "/users/export/ids", {"phone": "+14155550123"}, auth)

    assert (refused, taken) == (400, 201)


def braze_call(sandbox: Sandbox) -> SandboxResponse:
    auth = {"authorization": "Bearer " + secret_for("braze")["api_key"]}
    body = {"attributes": [{"external_id": "c1", "flag": True, "_update_existing_only": True}]}
    return sandbox.handle(SandboxRequest("POST", "/users/track", auth, json.dumps(body).encode()))


def test_a_fault_mix_is_taken_in_turn_and_a_429_carries_the_vendors_wait():
    sandbox = Sandbox("braze", "braze", secret_for("braze"))
    sandbox.set_fault_spec({"rate": 1, "statuses": [429, 503], "retry_after": 3})

    first, second = braze_call(sandbox), braze_call(sandbox)

    # Braze's throttle: 429 with X-RateLimit-Retry-After, no Retry-After
    assert (first.status, first.headers.get("x-ratelimit-retry-after")) == (429, "3")
    assert first.headers.get("retry-after") is None
    assert (second.status, second.headers.get("retry-after")) == (503, None)
    assert sandbox.faults()["injected"] == {"429": 1, "503": 1}


def sandbox_throttle(vendor: str, path: str, retry_after: int | None) -> SandboxResponse:
    sandbox = Sandbox(vendor, vendor, secret_for(vendor))
    sandbox.set_fault_spec({"rate": 1, "status": 429, "retry_after": retry_after})
    return sandbox.handle(SandboxRequest("POST", path, {}, b""))


def test_each_sandbox_throttles_in_its_vendors_shape():
    # Salesforce: 403 REQUEST_LIMIT_EXCEEDED, no wait; the usage tells the day's limit (a
    # plan's hour or more) from the concurrent-requests one; its OAuth endpoint answers 429
    daily = sandbox_throttle("salesforce", "/services/data/v66.0/composite", 3600)
    concurrent = sandbox_throttle("salesforce", "/services/data/v66.0/composite", 2)
    token = sandbox_throttle("salesforce", "/services/oauth2/token", 2)
    assert json.loads(daily.body)[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert (daily.status, daily.headers["sforce-limit-info"]) == (403, "api-usage=100000/100000")
    assert (concurrent.status, concurrent.headers["sforce-limit-info"]) == (
        403, "api-usage=25/100000")  # fmt: skip
    assert "retry-after" not in daily.headers
    assert (token.status, token.headers["retry-after"]) == (429, "2")
    # Meta: 400 code 80004, the wait in whole minutes in X-Business-Use-Case-Usage
    meta = sandbox_throttle("meta", "/v27.0/act_1001/usersofanyaudience", 600)
    usage = json.loads(meta.headers["x-business-use-case-usage"])
    assert (meta.status, json.loads(meta.body)["error"]["code"]) == (400, 80004)
    assert usage["1001"][0]["estimated_time_to_regain_access"] == 10
    # Braze: 429, X-RateLimit-Retry-After and -Reset (epoch seconds), no Retry-After
    braze = sandbox_throttle("braze", "/users/export/ids", 30)
    reset = int(braze.headers["x-ratelimit-reset"]) - datetime.now(UTC).timestamp()
    assert (braze.status, braze.headers["x-ratelimit-retry-after"]) == (429, "30")
    assert 28 <= reset <= 31 and "retry-after" not in braze.headers
    # The others (e.g. Segment): 429 with Retry-After
    segment = sandbox_throttle("segment", "/regulations", 2)
    assert (segment.status, segment.headers["retry-after"]) == (429, "2")


def test_a_seeded_fault_plan_replays_the_same_draws():
    plan = {"rate": 0.3, "statuses": [429, 503], "seed": 11}
    runs = []
    for _ in range(2):
        sandbox = Sandbox("braze", "braze", secret_for("braze"))
        sandbox.set_fault_spec(plan)
        runs.append([braze_call(sandbox).status for _ in range(40)])

    assert runs[0] == runs[1]
    assert 0 < sum(s != 201 for s in runs[0]) < 40


def test_the_recorded_calls_say_what_the_sandbox_answered():
    sandbox = Sandbox("braze", "braze", secret_for("braze"))
    sandbox.set_faults(0.5, 503)

    braze_call(sandbox), braze_call(sandbox)

    assert [(c["status"], c["fault"]) for c in sandbox.recorded()] == [(201, False), (503, True)]


@pytest.mark.parametrize(
    "spec",
    [{"rate": 2}, {"rate": "x"}, {"statuses": []}, {"status": 200}, {"rate": 0.1, "colour": 1},
     {"status": 503, "statuses": [503]}, {"hold_seconds": 0}, {"retry_after": True},
     {"status": 503, "applied": "yes"}],
)  # fmt: skip
def test_a_malformed_fault_plan_is_refused_naming_the_field(spec):
    with pytest.raises(ValueError):
        FaultPlan.parse(spec)


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

    assert sandbox.handle(SandboxRequest("GET", "/v27.0/me", {}, b"")).status == 404


# -- the sandboxes disagree with requests the vendors' own SDKs and docs would not make ------

META_AUTH = {"authorization": "Bearer " + secret_for("meta")["access_token"]}


def meta_delete(path: str, payload: object) -> tuple[int, dict]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    answer = Sandbox("meta", "meta", secret_for("meta")).handle(
        SandboxRequest("DELETE", path, META_AUTH, body)
    )
    return answer.status, json.loads(answer.body)


def test_meta_refuses_a_payload_the_facebook_business_sdk_would_not_send():
    # the SDK always sends is_raw; a payload without it is not the SDK's request
    status, answer = meta_delete(
        "/v27.0/act_1001/usersofanyaudience", {"schema": "EMAIL_SHA256", "data": ["a" * 64]}
    )
    assert (status, answer["error"]["code"]) == (400, 100)


def test_meta_answers_an_expired_version_with_code_2635():
    status, answer = meta_delete(
        "/v24.0/act_1001/usersofanyaudience",
        {"schema": "EMAIL_SHA256", "is_raw": False, "data": ["a" * 64]},
    )
    assert (status, answer["error"]["code"]) == (400, 2635)
    assert "deprecated version of the Ads API" in answer["error"]["message"]


def test_google_refuses_a_field_the_data_manager_types_do_not_have():
    sandbox = Sandbox("google_ads", "google_ads", secret_for("google_ads"))
    auth = {"authorization": "Bearer ya29.sandbox-fake-access-token"}
    body = {"destinations": [], "audienceMembers": [], "operations": []}

    assert post(sandbox, "/v1/audienceMembers:remove", body, auth) == 400


def test_trade_desk_refuses_a_key_ttds_models_do_not_have():
    sandbox = Sandbox("trade_desk", "trade_desk", secret_for("trade_desk"))
    auth = {"ttd-auth": secret_for("trade_desk")["auth_token"]}
    body = {"AdvertiserId": "a", "Items": [{"UID2": "x"}], "RequestType": "OptOut", "Extra": 1}

    assert post(sandbox, "/data/deletion-optout/advertiser", body, auth) == 400


def test_segment_has_no_suppress_and_delete_regulation():
    sandbox = Sandbox("segment", "segment", secret_for("segment"))
    auth = {
        "authorization": "Bearer " + secret_for("segment")["token"],
        "content-type": "application/vnd.segment.v1+json",
    }
    body = {"regulationType": "SUPPRESS_AND_DELETE", "subjectType": "USER_ID", "subjectIds": ["u"]}

    assert post(sandbox, "/regulations", body, auth) == 400


def test_braze_creates_a_profile_for_an_unknown_user_without_update_existing_only():
    sandbox = Sandbox("braze", "braze", secret_for("braze"))
    auth = {"authorization": "Bearer " + secret_for("braze")["api_key"]}
    body = {"attributes": [{"email": "unknown@example.com", "flag": True}]}

    post(sandbox, "/users/track", body, auth)

    assert sandbox.vendor.created == ["email"]  # type: ignore[attr-defined]


def test_the_official_uid2_client_maps_through_the_operator_sandbox():
    # The oracle: IABTechLab's own client (binary envelope) talks to our operator sandbox.
    secret = secret_for("trade_desk")
    sandboxes = {"uid2": Sandbox("uid2", "uid2", secret)}
    with SandboxServer(sandboxes) as server:
        client = IdentityMapV3Client(
            server.base_url("uid2"), secret["uid2_api_key"], secret["uid2_secret_key"]
        )
        answer = client.generate_identity_map(
            IdentityMapV3Input.from_emails(["jane@example.com", "optout@example.com"])
        )

    mapped = answer.mapped_identities["jane@example.com"].current_raw_uid
    assert mapped == uid2.raw_uid2(uid2.email_hash("jane@example.com"))
    assert answer.unmapped_identities["optout@example.com"].raw_reason == "optout"


def test_the_uid2_operator_refuses_an_envelope_sealed_with_another_key():
    secret = secret_for("trade_desk")
    operator = Sandbox("uid2", "uid2", secret)
    other = base64.b64decode("b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMzI=")
    sealed = create_envelope(other, datetime.now(UTC), b'{"email_hash": []}')
    request = SandboxRequest(
        "POST", "/v3/identity/map", {"authorization": f"Bearer {secret['uid2_api_key']}"},
        sealed.envelope,
    )  # fmt: skip

    assert operator.handle(request).status == 400
