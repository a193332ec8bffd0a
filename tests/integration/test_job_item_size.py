"""Job items of the bench's stated mix fit one write unit (1 KB as DynamoDB counts it), and a job
stored in the shape before (every flight naming its identity and purposes) is read the same.

The largest jobs the mix makes are the webhook's (it takes every identifier type): a person's
browsers, email and customer id in one cluster, all opted out of every purpose a request
covers. Their item is written by the resolver (with identifier values) and once more by the
worker (values dropped, receipt added); an update is billed on the larger of the two."""

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench.counting import item_size
from optout.connectors.base import Job, Outcome
from optout.connectors.base import _skipped as skipped
from optout.connectors.errors import DeliveryError
from optout.delivery.receipts import receipt_of
from optout.delivery.service import _after_check
from optout.store.codec import serialize
from tests.conftest import Aws
from tests.integration.test_request_proof import detail, status
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.pipeline import Pipeline, build_pipeline

EMAIL = "person123@example.com"  # the bench's values (bench/workload.py)
CUSTOMER = "cust-000123"
PHONE = "+16502530123"
DEVICES = ["0f" * 16, "1e" * 16, "2d" * 16]
ONE_KB = 1024


class WebhookVendor(Vendor):
    """Confirms every job with a receipt shaped like the webhook connector's."""

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        self.received.extend(jobs)
        return [
            Outcome(j.job_id, "done", http_status=200, vendor_ref=f"wh_{n:05d}",
                    identifier_types_sent=tuple(sorted({i.type for i in j.identifiers})))
            for n, j in enumerate(jobs)
        ]  # fmt: skip


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def _link(pipe: Pipeline, device: str, other: dict[str, str]) -> None:
    pipe.post("/v1/identity-links", {"links": [{"a": {"type": "device_id", "value": device},
                                                "b": other}]}, iam=True)  # fmt: skip


def _cluster(pipe: Pipeline, devices: list[str]) -> None:
    """The person's browsers linked to their email, the first also to their customer id."""
    for device in devices:
        _link(pipe, device, {"type": "email", "value": EMAIL})
    _link(pipe, devices[0], {"type": "customer_id", "value": CUSTOMER})
    pipe.resolve()
    pipe.drain_all()


def _webhook_job(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    raw = pipe.aws.dynamodb.get_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "JOB#webhook"}},
        ConsistentRead=True,
    )
    item: dict[str, Any] = raw["Item"]
    return item


def test_a_banner_opt_out_of_a_five_identity_cluster_writes_a_job_of_one_unit(
    pipe: Pipeline,
) -> None:
    # Given a person with three browsers, an email and a customer id in one cluster
    _cluster(pipe, DEVICES)
    # When one browser's banner opts out (the three purposes a banner asks) and it is delivered
    request_id = pipe.post("/v1/consent", {"device_id": DEVICES[0], "opt_out": {
        "sale": True, "share": True, "targeted_advertising": True}})["request_id"]  # fmt: skip
    pipe.resolve()
    pending = _webhook_job(pipe, request_id)
    work(pipe, "webhook", WebhookVendor())
    done = _webhook_job(pipe, request_id)
    # Then the job carried all five identities, and each of its two writes fits 1 KB
    assert len(pending["identifiers"]["L"]) == 5 and done["status"]["S"] == "done"
    assert item_size(pending) <= ONE_KB and item_size(done) <= ONE_KB


def test_a_webform_opt_out_for_five_identities_writes_a_job_of_one_unit(pipe: Pipeline) -> None:
    # Given a person with two browsers, an email and a customer id in one cluster
    _cluster(pipe, DEVICES[:2])
    # When they opt out by webform with their email and phone (every purpose a webform covers),
    # from a stated jurisdiction (kept on the job for the webhook's notice)
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE,
                                           "jurisdiction": "US-CA"})["request_id"]  # fmt: skip
    pipe.resolve()
    pending = _webhook_job(pipe, request_id)
    work(pipe, "webhook", WebhookVendor())
    done = _webhook_job(pipe, request_id)
    # Then the job carried the cluster and the phone, and each of its two writes fits 1 KB
    assert len(pending["identifiers"]["L"]) == 5 and len(pending["purposes"]["L"]) == 4
    assert pending["jurisdictions"] == {"L": [{"S": "US-CA"}]}
    assert item_size(pending) <= ONE_KB and item_size(done) <= ONE_KB


def _long_form(pipe: Pipeline, request_id: str, system: str) -> None:
    """Rewrite a stored job's flights as jobs were stored before: each names its identity's
    pk and its purposes."""
    raw = pipe.aws.dynamodb.get_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": f"JOB#{system}"}},
    )["Item"]
    purposes = [p["S"] for p in raw["purposes"]["L"]]
    flights = [
        {"pk": f"ID#{i['M']['type']['S']}#{i['M']['key']['S']}", "purposes": purposes}
        for i in raw["identifiers"]["L"]
    ]
    assert all(f == {"M": {}} for f in raw["flights"]["L"])  # stored short until now
    pipe.aws.dynamodb.put_item(
        TableName=pipe.aws.table_name, Item={**raw, **serialize({"flights": flights})}
    )


def test_a_job_stored_in_the_long_form_reads_the_same_and_frees_its_marks_when_it_fails(
    pipe: Pipeline,
) -> None:
    # Given a pending salesforce job, and the operator views of its request
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    pipe.drain("salesforce")
    before = (status(pipe, request_id), detail(pipe, request_id))
    # When the job is stored in the shape jobs had before
    _long_form(pipe, request_id, "salesforce")
    # Then the status route and the admin view answer the same
    assert (status(pipe, request_id), detail(pipe, request_id)) == before
    # ... and when salesforce refuses it for good, its purposes are freed: the next opt-out
    # of the same person makes a new job
    pipe.aws.sqs.send_message(
        QueueUrl=pipe.queue_urls["salesforce"],
        MessageBody=json.dumps({"job_id": f"{request_id}:salesforce", "request_id": request_id,
                                "system": "salesforce"}),
    )  # fmt: skip
    assert len(work(pipe, "salesforce", Vendor(refuse=True))) == 1
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    assert len(pipe.drain("salesforce")) == 1


def test_a_google_job_keeping_ten_skipped_status_reads_fits_one_unit(pipe: Pipeline) -> None:
    # Given a Google Ads job of a webform opt-out (email and phone), submitted
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "phone": PHONE,
                                           "jurisdiction": "US-CA"})["request_id"]  # fmt: skip
    pipe.resolve()
    raw = pipe.aws.dynamodb.get_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": "JOB#google_ads"}},
    )["Item"]
    outcome = Outcome(f"{request_id}:google_ads", "submitted", 200,
                      vendor_ref="0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
                      identifier_types_sent=("email", "phone"))  # fmt: skip
    receipt = {**receipt_of(outcome), "submitted_at": "2026-12-03T12:00:00.000000Z"}
    # When eleven status checks in a row were skipped: another reference's read was throttled
    # (a sustained 503 at Google), the worker keeping the last ten in `check_errors`
    other = DeliveryError("google_ads requestStatus:retrieve: HTTP 503", retryable=True,
                          http_status=503)  # fmt: skip
    receipt["error"] = skipped(other).reason  # the first check's
    for _ in range(10):  # each later check moves the one before into the history
        receipt = {**_after_check(receipt), "error": skipped(other).reason}
    # (the same error again is counted on its line, not kept ten times)
    assert receipt["check_errors"] == ["status not read (HTTP 503 at another reference) (10x)"]
    written = {"status": "submitted", "receipt": receipt, "attempts": 11,
               "updated_at": "2026-12-03T14:30:00.000000Z",
               "retry_at": "2026-12-03T14:45:00.000000Z"}  # fmt: skip
    stored = {**raw, **serialize(written)}
    # Then its item still fits one write unit (review s30 receipts F4: 1.1 KB of history alone)
    assert item_size(stored) <= ONE_KB
