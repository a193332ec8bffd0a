"""Review s25 diff (an outside read of session 25's merges), the findings a test can show.

F2 (retire25, review s24 diff C C1): of two first retires of a name at once, the loser was kept
in `retired_again` with the time its own call read, which may be before the winner's
`retired_at`; sorted, the loser's became the retirement closing the open jobs. Fixed: a later
retirement is never recorded before the latest one.

F3 (opsfix25, review s25 ops O4): a replay that left out a denied request's failed job left a
genuine request citing that job failed for good. The change was withdrawn; this test keeps it
so (docs/decisions.md, "A denial opts no one back in")."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from optout.retire import RetireService
from optout.store import keys, transact
from optout.store.codec import deserialize, serialize
from optout.store.retired import retired_at_for
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_admin import admin_get
from tests.integration.test_operator_routes import deny, ok
from tests.integration.test_resolver_delivery import Vendor, work
from tests.integration.test_resolver_replay import SYSTEM, replay
from tests.support.http_events import json_body
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


# -- F2 (retire25): two first retires of a name at once ----------------------------------------


def test_the_loser_of_two_retires_at_once_closes_nothing_and_the_first_settles(
    table: Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two operators retiring meta at once: A's call reads the time first (12:00:00.000)
    # and finds no retirement; B's (12:00:00.050) writes its retirement before A's write.
    # meta is on record (a failed job listed), as a retire requires
    table.client.put_item(
        TableName=table.name,
        Item=serialize(
            {"pk": keys.failed_pk("meta"), "sk": "r-old:meta", "failed_at": "2026-11-01T00:00:00Z"}
        ),
    )
    a_at, b_at = datetime(2026, 11, 3, 12, tzinfo=UTC), "2026-11-03T12:00:00.050Z"
    write = transact.write

    def b_first(table_: Table, items: list[Any]) -> None:
        monkeypatch.setattr(transact, "write", write)
        table.client.put_item(TableName=table.name, Item=serialize({
            "pk": keys.RETIRED_PK, "sk": "meta", "kind": "retirement", "system": "meta",
            "event_id": "r-b", "retired_at": b_at, "retired_by": "op-b",
            "reason": "contract ended in November"}))  # fmt: skip
        write(table_, items)

    monkeypatch.setattr(transact, "write", b_first)
    answer = RetireService(table, None, 1125).retire(
        "meta", "contract ended in November too", "op-a", a_at
    )
    # Then A is answered with B's retirement, the first, which settles the jobs made before
    # it (docs/decisions.md: "the loser ... is kept as a later retirement a moment after the
    # winner, closing nothing")
    assert (answer.already_retired, answer.retired_at) == (True, b_at)
    found = table.client.get_item(TableName=table.name, Key={"pk": {"S": keys.RETIRED_PK},
                                                             "sk": {"S": "meta"}})  # fmt: skip
    item = deserialize(found["Item"])
    assert item["retired_at"] == b_at and len(item["retired_again"]) == 1
    job = {"created_at": "2026-11-02T10:00:00.000Z", "status": "pending"}
    assert retired_at_for(job, item) == b_at


# -- F3 (opsfix25): a denied request's failed job cited by another request ------------------------


def test_a_request_citing_a_denied_requests_failed_job_is_not_left_failed_by_the_replay(
    pipe: Pipeline,
) -> None:
    # Given a scripted opt-out naming someone's email (its salesforce job not sent yet), then
    # that person's own opt-out, which cites the job already carrying its purposes there
    bot = pipe.post("/v1/opt-out", {"email": "real.person@example.com", "purposes": ["sale"]})
    pipe.resolve()
    person = pipe.post("/v1/opt-out", {"email": "real.person@example.com", "purposes": ["sale"]})
    pipe.resolve()
    own = json_body(admin_get(pipe, person["request_id"]))
    (cited,) = [s for s in own["systems"] if s["system"] == SYSTEM]
    assert cited["status"] == "processing"  # the scripted request's job, cited
    assert [i for i in pipe.items(keys.request_pk(person["request_id"]))
            if i["sk"] == f"JOB#{SYSTEM}"] == []  # fmt: skip
    # ... salesforce refuses the job for good, and the operator denies the scripted request
    work(pipe, SYSTEM, Vendor(refuse=True))
    ok(deny(pipe, bot["request_id"]))
    # When salesforce is fixed and the operator replays it (the documented remedy)
    replay(pipe)
    assert pipe.resolve() == {"batchItemFailures": []}
    work(pipe, SYSTEM, Vendor())
    # Then the person's own request is not left failed at salesforce for good
    after = json_body(admin_get(pipe, person["request_id"]))
    (system,) = [s for s in after["systems"] if s["system"] == SYSTEM]
    assert system["status"] == "done"


def test_a_request_with_its_own_job_and_a_denied_requests_cited_job_gets_every_identifier_sent(
    pipe: Pipeline,
) -> None:
    # Review s26 diff A R1: session 26's withdrawn replay lost this case for good. A scripted
    # opt-out names someone's email (its meta job not sent yet); that person's own opt-out
    # names the email and a phone: its own meta job carries the phone, the email is cited
    bot = pipe.post("/v1/opt-out", {"email": "real.person@example.com", "purposes": ["share"]})
    pipe.resolve()
    person = pipe.post("/v1/opt-out", {"email": "real.person@example.com",
                                       "phone": "+14155550199", "purposes": ["share"]})  # fmt: skip
    pipe.resolve()
    (own,) = [i for i in pipe.items(keys.request_pk(person["request_id"])) if i["sk"] == "JOB#meta"]
    assert [i["type"] for i in own["identifiers"]] == ["phone"]
    # ... meta refuses both jobs for good, and the operator denies the scripted request
    work(pipe, "meta", Vendor(refuse=True))
    ok(deny(pipe, bot["request_id"]))
    # When meta is fixed and the operator replays it
    replay(pipe, "meta")
    assert pipe.resolve() == {"batchItemFailures": []}
    fixed = Vendor()
    work(pipe, "meta", fixed)
    # Then meta took the person's email too, and the request is done there
    sent = {i.type for job in fixed.received for i in job.identifiers}
    assert sent == {"email", "phone"}
    after = json_body(admin_get(pipe, person["request_id"]))
    assert [s["status"] for s in after["systems"] if s["system"] == "meta"] == ["done"]
