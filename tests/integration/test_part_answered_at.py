"""A request complied with in part is answered at its last receipt, a failure's included
(review s34 proof F2).

Its §7102 days and its export's `answered_at` and `late` counted from the last system that
confirmed, so a system failing for good later (after retries, days on, past the deadline)
left a request the consumer saw `processing` all that time counted as answered early.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from local.moto_guard import guarded
from optout.ops.contribution import contribution_of
from optout.status import covering_keys
from optout.store.batch import batch_get
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_operator_routes import call, ok, watch
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.pipeline import QUEUE_KEYS, Pipeline, build_pipeline

EMAIL = "part-answered@example.com"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def done_then_braze_fails(pipe: Pipeline) -> tuple[str, str]:
    """An opt-out every system confirms but braze, which fails for good after them; the
    request id and braze's failure time."""
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    for key in QUEUE_KEYS:
        if key != "braze":
            work(pipe, key, Vendor())
    work(pipe, "braze", Vendor(refuse=True))
    (job,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "JOB#braze"]
    assert job["status"] == "failed"
    return request_id, str(job["completed_at"])


def test_a_request_done_in_part_is_answered_when_its_last_system_failed(pipe: Pipeline) -> None:
    # Given systems that confirmed, then braze failing for good after them
    request_id, failed_at = done_then_braze_fails(pipe)
    # When the contribution to the figures is read
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    items = pipe.items(f"REQ#{request_id}")
    covering = batch_get(table, set(covering_keys(items)), consistent=True)
    found = contribution_of(items, covering)
    # Then it is complied with in part, answered at braze's failure: the last receipt
    assert found is not None and found.outcome == "complied_part"
    assert found.responded_at == failed_at


def test_the_export_says_it_was_answered_at_the_failure(pipe: Pipeline) -> None:
    # Given the same request, read by the watch
    request_id, failed_at = done_then_braze_fails(pipe)
    watch(pipe, datetime.now(UTC) + timedelta(minutes=5))
    # When an operator exports the email's records
    body = {"type": "email", "value": EMAIL}
    records = ok(call(pipe, "POST", "/v1/admin/exports/identity", body))["records"]
    # Then its request record is answered at braze's failure, not at the last confirmation
    (request,) = [r for r in records if r["record"] == "request" and r["request_id"] == request_id]
    assert request["outcome"] == "complied_part"
    assert request["answered_at"] == failed_at
