"""Each connector's exact request (path, method, headers, auth, body, hashes) and how it reads
the vendor's answer. Expected hashes are computed here with hashlib on literals."""

import base64
import hashlib
import hmac
import json
import urllib.parse

from tests.unit.connectors.conftest import (
    EMAIL_NORMALISED,
    PHONE,
    calls,
    make_connector,
    make_job,
    secret_for,
)

EMAIL_HEX = hashlib.sha256(b"jane.doe+ads@gmail.com").hexdigest()
META_PHONE_HEX = hashlib.sha256(b"14155550123").hexdigest()
GOOGLE_PHONE_HEX = hashlib.sha256(b"+14155550123").hexdigest()
UID2_EMAIL = base64.b64encode(hashlib.sha256(b"janedoe@gmail.com").digest()).decode()
UID2_PHONE = base64.b64encode(hashlib.sha256(b"+14155550123").digest()).decode()


def test_webhook_signs_the_body_and_hashes_identifiers(server):
    job = make_job(("email", EMAIL_NORMALISED), ("phone", PHONE), system="webhook")

    (outcome,) = make_connector(server, "webhook").deliver([job])

    (call,) = calls(server, "webhook")
    assert (call["method"], call["path"]) == ("POST", "")
    body = json.loads(call["body"])
    assert body == {
        "request_id": "req-1",
        "job_id": "req-1:webhook",
        "purposes": ["sale", "share"],
        "identifiers": [
            {"type": "email", "value": EMAIL_HEX, "hashed": True},
            {"type": "phone", "value": hashlib.sha256(b"+14155550123").hexdigest(), "hashed": True},
        ],
    }
    timestamp = call["headers"]["x-optout-timestamp"]
    secret = secret_for("webhook")["signing_secret"].encode()
    mac = hmac.new(secret, timestamp.encode() + b"." + call["body"].encode(), hashlib.sha256)
    assert call["headers"]["x-optout-signature"] == "sha256=" + mac.hexdigest()
    assert (outcome.status, outcome.vendor_ref) == ("done", "wh_1")
    assert outcome.identifier_types_sent == ("email", "phone")


def test_webhook_sends_clear_values_when_hashing_is_none(server):
    job = make_job(("customer_id", "cust-42"), system="webhook")

    make_connector(server, "webhook", hashing="none").deliver([job])

    (call,) = calls(server, "webhook")
    assert json.loads(call["body"])["identifiers"] == [
        {"type": "customer_id", "value": "cust-42", "hashed": False}
    ]


def test_segment_consent_event_sets_category_preferences_false(server):
    job = make_job(
        ("customer_id", "cust-42"),
        ("device_id", "dev_0123456789abcdef"),
        ("email", EMAIL_NORMALISED),
        system="segment",
    )
    connector = make_connector(server, "segment", options={"categories": {"sale": "Advertising"}})

    (outcome,) = connector.deliver([job])

    (call,) = calls(server, "segment")
    assert (call["method"], call["path"]) == ("POST", "/v1/batch")
    key = secret_for("segment")["write_key"]
    assert (
        call["headers"]["authorization"] == "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    )
    events = json.loads(call["body"])["batch"]
    assert [e.get("userId") or e.get("anonymousId") for e in events] == [
        "cust-42",
        "dev_0123456789abcdef",
    ]
    assert events[0]["event"] == "Segment Consent Preference Updated"
    assert events[0]["context"]["consent"]["categoryPreferences"] == {
        "Advertising": False,
        "share": False,
    }
    assert EMAIL_NORMALISED not in call["body"]
    assert outcome.identifier_types_sent == ("customer_id", "device_id")


def test_segment_regulation_mode_suppresses_user_ids(server):
    jobs = [
        make_job(("customer_id", f"cust-{n}"), request_id=f"r{n}", system="segment") for n in (1, 2)
    ]

    outcomes = make_connector(server, "segment", options={"mode": "regulation"}).deliver(jobs)

    (call,) = calls(server, "segment")
    assert (call["method"], call["path"]) == ("POST", "/regulations")
    assert call["headers"]["authorization"] == "Bearer " + secret_for("segment")["token"]
    assert json.loads(call["body"]) == {
        "regulationType": "SUPPRESS_ONLY",
        "subjectType": "USER_ID",
        "subjectIds": ["cust-1", "cust-2"],
    }
    assert [o.vendor_ref for o in outcomes] == ["reg_1", "reg_1"]


def test_braze_sets_the_attribute_in_batches_of_75(server):
    jobs = [
        make_job(
            ("customer_id", f"c{n}"),
            ("email", f"u{n}@example.com"),
            request_id=f"r{n}",
            system="braze",
        )
        for n in range(40)
    ]

    outcomes = make_connector(server, "braze", options={"attribute": "dns_flag"}).deliver(jobs)

    sizes = [len(json.loads(c["body"])["attributes"]) for c in calls(server, "braze")]
    assert sizes == [74, 6]  # 2 objects per job, a job is never split across calls
    first = calls(server, "braze")[0]
    assert (first["method"], first["path"]) == ("POST", "/users/track")
    assert first["headers"]["authorization"] == "Bearer " + secret_for("braze")["api_key"]
    assert json.loads(first["body"])["attributes"][:2] == [
        {"external_id": "c0", "dns_flag": True},
        {"email": "u0@example.com", "dns_flag": True},
    ]
    assert {o.status for o in outcomes} == {"done"}


def test_braze_job_whose_every_object_is_rejected_fails(server):
    good = make_job(("customer_id", "c1"), request_id="r1", system="braze")
    bad = make_job(("email", "not-an-email"), request_id="r2", system="braze")

    outcomes = {o.job_id: o for o in make_connector(server, "braze").deliver([good, bad])}

    assert outcomes["r1:braze"].status == "done"
    assert outcomes["r2:braze"].error.retryable is False


def test_salesforce_updates_the_individual_found_by_email(server):
    job = make_job(("email", EMAIL_NORMALISED), purposes=("sale", "profiling"), system="salesforce")

    (outcome,) = make_connector(server, "salesforce").deliver([job])

    token, lookup, patch = calls(server, "salesforce")
    assert (token["method"], token["path"]) == ("POST", "/services/oauth2/token")
    form = dict(urllib.parse.parse_qsl(token["body"]))
    assert form["grant_type"] == "client_credentials"
    assert (lookup["method"], lookup["path"]) == ("POST", "/services/data/v62.0/composite")
    assert EMAIL_NORMALISED not in lookup["path"]
    assert lookup["headers"]["authorization"] == "Bearer 00Dsandbox!fake-session-token"
    individual = "0PK" + hashlib.sha256(EMAIL_NORMALISED.encode()).hexdigest()[:15].upper()
    assert (patch["method"], patch["path"]) == (
        "PATCH",
        f"/services/data/v62.0/sobjects/Individual/{individual}",
    )
    assert json.loads(patch["body"]) == {"HasOptedOutTracking": True, "HasOptedOutProfiling": True}
    assert (outcome.status, outcome.http_status, outcome.vendor_ref) == ("done", 204, individual)


def test_salesforce_person_not_found_is_a_no_record_receipt(server):
    job = make_job(("email", "unknown.person@example.com"), system="salesforce")

    (outcome,) = make_connector(server, "salesforce").deliver([job])

    assert outcome.status == "no_record"
    assert [c["method"] for c in calls(server, "salesforce")] == ["POST", "POST"]  # no PATCH


def test_salesforce_quotes_an_apostrophe_in_soql(server):
    job = make_job(("email", "o'brien@example.com"), system="salesforce")

    (outcome,) = make_connector(server, "salesforce").deliver([job])

    assert outcome.status == "done"


def test_google_ads_creates_adds_removes_and_runs_a_job_per_user_list(server):
    job = make_job(("email", EMAIL_NORMALISED), ("phone", PHONE), system="google_ads")
    connector = make_connector(
        server, "google_ads", options={"user_list_ids": ["555", "777"], "login_customer_id": "999"}
    )

    (outcome,) = connector.deliver([job])

    recorded = calls(server, "google_ads")
    assert [c["path"] for c in recorded] == [
        "/token",
        "/v21/customers/1234567890/offlineUserDataJobs:create",
        "/v21/customers/1234567890/offlineUserDataJobs/1:addOperations",
        "/v21/customers/1234567890/offlineUserDataJobs/1:run",
        "/v21/customers/1234567890/offlineUserDataJobs:create",
        "/v21/customers/1234567890/offlineUserDataJobs/2:addOperations",
        "/v21/customers/1234567890/offlineUserDataJobs/2:run",
    ]
    create, add = recorded[1], recorded[2]
    assert create["headers"]["developer-token"] == secret_for("google_ads")["developer_token"]
    assert create["headers"]["login-customer-id"] == "999"
    assert json.loads(create["body"])["job"]["customerMatchUserListMetadata"] == {
        "userList": "customers/1234567890/userLists/555"
    }
    assert json.loads(add["body"])["operations"] == [
        {
            "remove": {
                "userIdentifiers": [
                    {"hashedEmail": EMAIL_HEX},
                    {"hashedPhoneNumber": GOOGLE_PHONE_HEX},
                ]
            }
        }
    ]
    assert outcome.vendor_ref == (
        "customers/1234567890/offlineUserDataJobs/1,customers/1234567890/offlineUserDataJobs/2"
    )


def test_google_ads_malformed_user_list_gets_a_final_400(server):
    job = make_job(("email", EMAIL_NORMALISED), system="google_ads")

    (outcome,) = make_connector(server, "google_ads", options={"user_list_ids": ["x"]}).deliver(
        [job]
    )

    assert (outcome.error.http_status, outcome.error.retryable) == (400, False)


def test_meta_removes_hashed_emails_and_phones_from_every_audience(server):
    job = make_job(("email", EMAIL_NORMALISED), ("phone", PHONE), system="meta")

    (outcome,) = make_connector(server, "meta").deliver([job])

    email_call, phone_call = calls(server, "meta")
    assert (email_call["method"], email_call["path"]) == (
        "DELETE",
        "/v21.0/act_1001/usersofanyaudience",
    )
    token = secret_for("meta")["access_token"]
    assert email_call["headers"]["authorization"] == f"Bearer {token}"
    assert token not in email_call["path"]
    payload = json.loads(dict(urllib.parse.parse_qsl(email_call["body"]))["payload"])
    assert payload == {"schema": "EMAIL_SHA256", "data": [EMAIL_HEX]}
    payload = json.loads(dict(urllib.parse.parse_qsl(phone_call["body"]))["payload"])
    assert payload == {"schema": "PHONE_SHA256", "data": [META_PHONE_HEX]}
    assert (outcome.status, outcome.vendor_ref) == ("done", "1,2")


def test_meta_splits_at_10000_hashes_per_call(server):
    jobs = [
        make_job(("email", f"user{n}@example.com"), request_id=f"r{n}", system="meta")
        for n in range(10_001)
    ]

    make_connector(server, "meta").deliver(jobs)

    sizes = [
        len(json.loads(dict(urllib.parse.parse_qsl(c["body"]))["payload"])["data"])
        for c in calls(server, "meta")
    ]
    assert sizes == [10_000, 1]


def test_meta_unknown_audience_path_is_a_final_404(server):
    job = make_job(("email", EMAIL_NORMALISED), system="meta")

    (outcome,) = make_connector(server, "meta", options={"ad_account_id": "not-numeric"}).deliver(
        [job]
    )

    assert (outcome.error.http_status, outcome.error.retryable) == (404, False)


def test_trade_desk_sends_uid2_items_with_ttd_auth(server):
    job = make_job(("email", EMAIL_NORMALISED), ("phone", PHONE), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    (call,) = calls(server, "trade_desk")
    assert (call["method"], call["path"]) == ("POST", "/data/deletion-optout/advertiser")
    assert call["headers"]["ttd-auth"] == secret_for("trade_desk")["auth_token"]
    assert json.loads(call["body"]) == {
        "AdvertiserId": "adv123",
        "RequestType": "OptOut",
        "Items": [{"UID2": UID2_EMAIL}, {"UID2": UID2_PHONE}],
    }
    assert outcome.status == "done"
