"""A request the sweep re-opens and the quiet period then settles is complete when it was
re-opened, not before: its public page read `processing` until then. The re-open's time and
redrive event are kept on the RESOLUTION by the write the re-open already makes, and the
export's request record names them (review s31 counsel F1)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from optout.ops.export import request_records
from optout.store.proof import load_with_proof
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_covering_proof import (
    EMAIL,
    FIRST_CHECK,
    first_braze_job_answered,
    status,
    sweep_and_resolve,
)
from tests.integration.test_operator_routes import call, ok
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


class _Later(datetime):
    """The resolver's clock when the sweep's redrive reaches it: the sweep's first check."""

    @classmethod
    def now(cls, tz: Any = None) -> "_Later":
        at = datetime.now(tz) + FIRST_CHECK
        return cls.fromtimestamp(at.timestamp(), tz)


def test_a_request_the_quiet_period_settles_at_its_reopen_is_dated_by_the_reopen(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a request that cited another's Braze job in flight, which then answered no_record
    body = {"email": EMAIL, "purposes": ["sale"]}
    request_id = first_braze_job_answered(pipe, body, body, {"status": "no_record"})
    assert status(pipe, request_id) == "processing"
    (first,) = [i for i in pipe.items("REQ#") if i["sk"] == "JOB#braze"]
    answered = str(first["completed_at"])
    # When the sweep re-opens it 16 minutes on, and the resolver settles Braze by the quiet
    # period (no job, only `not_asked`)
    with monkeypatch.context() as later:
        later.setattr("optout.resolver.service.datetime", _Later)
        report = sweep_and_resolve(pipe)
    assert report.reopened == [request_id] and pipe.drain("braze") == []
    (resolution,) = [i for i in pipe.items(f"REQ#{request_id}") if i["sk"] == "RESOLUTION"]
    (reopen,) = resolution["reopens"]
    (event_id,) = report.redrive_events
    assert reopen["event_id"] == event_id and reopen["systems"] == ["braze"]
    assert reopen["at"] > answered > str(resolution["resolved_at"])
    # Then the operator view, the export and the public status all date its completion by the
    # re-open, not before the answer that settles it
    path = f"/v1/admin/requests/{request_id}"
    detail = ok(call(pipe, "GET", path, params={"request_id": request_id}))
    assert (detail["status"], detail["completed_at"]) == ("completed", reopen["at"])
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    items, covering = load_with_proof(table, request_id)
    records = request_records(request_id, items, covering)
    (record,) = [r for r in records if r["record"] == "request"]
    assert (record["completed_at"], record["answered_at"]) == (reopen["at"], reopen["at"])
    # ... whose request record names the re-open
    assert record["reopened"] == [{"at": reopen["at"], "event_id": event_id, "systems": ["braze"]}]
    after = datetime.now(UTC) + FIRST_CHECK * 2
    public = pipe.get_at(after, f"/v1/requests/{request_id}", request_id=request_id)
    assert (public["status"], public["completed_at"]) == ("completed", reopen["at"])
