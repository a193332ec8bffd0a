"""Segment answers a receipt must read honestly (review s29 V1, V3): a regulation forwarded
to destinations can read FAILED with the suppression in place, so the connector sends only
the Segment-only types; and the Tracking API's 460 is a retry, as Segment's own library reads
it (segment-analytics-python 2.4.0, consumer.py `is_retryable_status`)."""

import json
from typing import Any

from optout.connectors.base import Submitted
from optout.connectors.http import HttpClient, RetryPolicy
from tests.unit.connectors.conftest import (
    CONNECTOR_TIMEOUT,
    calls,
    make_connector,
    make_job,
    secret_for,
)


def test_segment_sandbox_fails_a_forwarded_regulation_an_unsupported_destination_could_not_run(
    server,
):
    # Guard (the sandbox only: passes with the connectors before review s29 too). The sandbox
    # as Segment documents it: with a destination that cannot delete,
    # SUPPRESS_WITH_DELETE ends FAILED overall, the user suppressed all the same (which is why
    # the connector refuses that type); a Segment-only type finishes.
    sandbox = server.sandboxes["segment"]
    sandbox.vendor.unsupported_destination = True
    http = HttpClient(CONNECTOR_TIMEOUT)
    headers = {"Authorization": "Bearer " + secret_for("segment")["token"],
               "Content-Type": "application/vnd.segment.v1+json"}  # fmt: skip
    root = server.base_url("segment")

    def regulate(kind: str, subject: str) -> dict[str, Any]:
        body = {"regulationType": kind, "subjectType": "USER_ID", "subjectIds": [subject]}
        made = http.send("POST", root + "/regulations", step="t", headers=headers,
                         body=json.dumps(body).encode()).json()  # fmt: skip
        ref = made["data"]["regulateId"]
        reads = [http.send("GET", f"{root}/regulations/{ref}", step="t", headers=headers)
                 for _ in range(3)]  # fmt: skip
        return reads[-1].json()["data"]["regulation"]

    forwarded = regulate("SUPPRESS_WITH_DELETE", "c1")
    internal = regulate("SUPPRESS_WITH_DELETE_INTERNAL", "c2")

    assert forwarded["overallStatus"] == "FAILED"
    (stream,) = forwarded["streamStatus"]
    assert [d["status"] for d in stream["destinationStatus"]] == ["NOT_SUPPORTED"]
    assert internal["overallStatus"] == "FINISHED" and internal["streamStatus"] == []
    assert sandbox.vendor.suppressed == {"c1", "c2"}


def test_segment_suppress_only_is_done_with_a_destination_that_cannot_delete(server):
    # Guard (passes on the code before review s29 too): the default type is not forwarded to
    # destinations, so an unsupported one does not fail it; refusing SUPPRESS_WITH_DELETE
    # relies on this
    server.sandboxes["segment"].vendor.unsupported_destination = True
    connector = make_connector(server, "segment", options={"mode": "regulation"})
    (outcome,) = connector.deliver([make_job(("customer_id", "c1"), system="segment")])
    pending = [Submitted(outcome.job_id, outcome.vendor_ref or "")]

    verdicts = [connector.confirm(pending)[0] for _ in range(3)]

    assert verdicts[2].status == "done"
    assert server.sandboxes["segment"].vendor.suppressed == {"c1"}


def consent_jobs(first: int) -> list[Any]:
    return [make_job(("customer_id", f"c{n}"), request_id=f"r{n}", system="segment")
            for n in (first, first + 1)]  # fmt: skip


def test_segment_tracking_460_is_tried_again_and_the_batch_delivered(server):
    # Given Segment's Tracking API answering 460 to every second call (the fault counter),
    # and the worker's in-call retries
    server.sandboxes["segment"].set_faults(0.5, 460)
    connector = make_connector(server, "segment")
    connector.http = HttpClient(CONNECTOR_TIMEOUT, RetryPolicy(attempts=3), sleep=lambda _: None)

    first = connector.deliver(consent_jobs(1))
    second = connector.deliver(consent_jobs(3))  # its first try is answered 460

    assert [c["status"] for c in calls(server, "segment")] == [200, 460, 200]
    assert [o.status for o in first + second] == ["done"] * 4


def test_segment_tracking_460_on_the_last_try_is_retried_later_not_failed_for_good(server):
    server.sandboxes["segment"].set_faults(1.0, 460)

    outcomes = make_connector(server, "segment").deliver(consent_jobs(1))

    assert [o.status for o in outcomes] == [None, None]
    assert [(o.error.retryable, o.error.http_status) for o in outcomes] == [(True, 460)] * 2
    assert outcomes[0].error.reason == "segment batch: HTTP 460"


def test_a_460_from_any_other_vendor_or_segments_public_api_stays_final(server):
    # Guard (passes on the code before review s29 too): the override is the Tracking API
    # call's own, the global reading of a 4xx is unchanged
    server.sandboxes["webhook"].set_faults(1.0, 460)
    server.sandboxes["segment"].set_faults(1.0, 460)
    webhook = make_connector(server, "webhook")
    regulation = make_connector(server, "segment", options={"mode": "regulation"})

    (hooked,) = webhook.deliver([make_job(("email", "a@example.com"), system="webhook")])
    (regulated,) = regulation.deliver([make_job(("customer_id", "c1"), system="segment")])

    assert (hooked.error.retryable, hooked.error.http_status) == (False, 460)
    assert (regulated.error.retryable, regulated.error.http_status) == (False, 460)
