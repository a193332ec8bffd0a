"""A status check reads each vendor reference on its own (review s29 F2): one read the vendor
refuses answers for the jobs holding that reference only, never for the batch's others."""

from typing import Any

from local.sandbox.wire import json_response
from optout.connectors.base import Submitted
from tests.unit.connectors.conftest import make_connector, make_job

UNKNOWN_REQUEST = "0000unknownrequest"  # a requestId Google does not know: 404 NOT_FOUND


def _google_submitted(server: Any) -> tuple[Any, Submitted]:
    connector = make_connector(server, "google_ads")
    server.sandboxes["google_ads"].vendor.checks_until_done = 1
    (good,) = connector.deliver([make_job(("email", "a@example.com"), system="google_ads")])
    return connector, Submitted(good.job_id, good.vendor_ref or "", ("email",))


def test_google_one_refused_status_read_fails_only_the_job_holding_that_request(server):
    # Given job A, whose request Google finished, and job B, whose requestId Google does not
    # know (it answers 404 NOT_FOUND: a request it no longer keeps)
    connector, done = _google_submitted(server)
    other = Submitted("other-job", UNKNOWN_REQUEST, ("email",))
    # When both are confirmed in one batch
    first, second = connector.confirm([done, other])
    # Then A is done with its requestId, and only B fails for good, keeping its own
    assert (first.job_id, first.status, first.vendor_ref) == (done.job_id, "done", done.vendor_ref)
    assert (second.job_id, second.status) == ("other-job", None)
    assert second.error.retryable is False and second.error.http_status == 404
    assert second.vendor_ref == UNKNOWN_REQUEST
    assert (second.identifier_types_sent, second.identifier_types_attempted) == (("email",), ())


def test_google_one_status_read_failing_for_now_asks_that_job_again_later(server):
    # Given job A finished at Google, and job B whose status read answers 503
    connector, done = _google_submitted(server)
    vendor = server.sandboxes["google_ads"].vendor
    original = vendor.handle

    def handle(request: Any) -> Any:
        if UNKNOWN_REQUEST in request.path:
            return json_response(503, {"error": {"code": 503, "status": "UNAVAILABLE"}})
        return original(request)

    vendor.handle = handle
    # When both are confirmed
    first, second = connector.confirm([done, Submitted("other-job", UNKNOWN_REQUEST, ("email",))])
    # Then A is done, and B is a retryable failure (still submitted: asked again later)
    assert first.status == "done"
    assert second.status is None and second.error.retryable
    assert second.vendor_ref == UNKNOWN_REQUEST


def test_google_status_read_refusing_the_token_still_rereads_the_credentials(server):
    # Given job A finished at Google, and Google refusing the status read's token twice (the
    # session's own fresh token included: oauth.BearerSession), then taking it
    connector, done = _google_submitted(server)
    vendor = server.sandboxes["google_ads"].vendor
    original, refused = vendor.handle, []

    def handle(request: Any) -> Any:
        if request.path.startswith("/v1/requestStatus") and len(refused) < 2:
            refused.append(request.path)
            return json_response(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
        return original(request)

    vendor.handle = handle
    reloads = []
    reload = connector.reload_credentials
    connector.reload_credentials = lambda: (reloads.append(1), reload())[1]  # type: ignore[method-assign]
    # When it is confirmed
    (outcome,) = connector.confirm([done])
    # Then the refusal went to the one fresh read of the credentials and the check was asked
    # again, not failed for good as a 4xx of its own
    assert len(refused) == 2 and reloads == [1]
    assert outcome.status == "done"


def test_segment_one_refused_regulation_read_fails_only_its_jobs(server):
    # Given a regulation Segment runs, and another regulateId Segment does not know (404)
    connector = make_connector(server, "segment", options={"mode": "regulation"})
    (outcome,) = connector.deliver([make_job(("customer_id", "c1"), system="segment")])
    known = Submitted(outcome.job_id, outcome.vendor_ref or "", ("customer_id",))
    unknown = Submitted("other-job", "reg_404", ("customer_id",))
    # When both are confirmed until Segment finishes the known one (its third read)
    answers = [connector.confirm([known, unknown]) for _ in range(3)]
    # Then the known one goes submitted, submitted, done; only the unknown one fails
    assert [a[0].status for a in answers] == ["submitted", "submitted", "done"]
    assert all(a[1].status is None and a[1].error.retryable is False for a in answers)
    assert answers[-1][1].vendor_ref == "reg_404"
