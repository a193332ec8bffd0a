"""One rule for "in part" (review s26 diff B F2): a repeat the quiet period did not ask at a
system, after that system's job sent the vendor nothing for an identity the repeat names, is
complied with in part in every view: the status page, the §7102 outcome the deadline watch
folds, the export's `request` record, the operator's record and `optout status`. Before, only
the page said so (`status._quiet_not_taken`), and the rest read complied in whole."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.moto_guard import guarded
from optout.connectors.base import Job, Outcome
from optout.ops.metrics import MetricsService
from optout.ops.watch import Watch, WatchReport, WatchSettings
from optout.store.table import Table
from optout.timestamps import iso
from optout.webform_pages import COMPLETED_IN_PART
from tests.conftest import Aws
from tests.integration.test_cli import Cli
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.cli import AdminTransport
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline

NO_FORM_EMAIL = "+news@gmail.com"  # Google's gmail rule leaves it no local part: never sent
OTHER_QUEUES = ("webhook", "segment", "braze", "salesforce", "meta", "tradedesk")


class Uid2OptedOut:
    """The Trade Desk's connector where the UID2 operator answers that the email opted out of
    UID2 (the vendor's data) and TTD takes the phone's UID2: done, the email refused."""

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        return [Outcome(j.job_id, "done", 200, None, ("phone",),
                        identifier_types_rejected=("email",),
                        note="email not sent: UID2 operator optout") for j in jobs]  # fmt: skip


class NoForm:
    """Google's connector for an email it has no form of: no call, no_record, not sent."""

    def deliver(self, jobs: list[Job]) -> list[Outcome]:
        return [Outcome(j.job_id, "no_record", identifier_types_rejected=("email",),
                        identifier_types_unformed=("email",),
                        note="email not sent: no Google form") for j in jobs]  # fmt: skip


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


@pytest.fixture
def cli(pipe: Pipeline, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capsys, AdminTransport(pipe.admin))


def _page(pipe: Pipeline, request_id: str, at: datetime) -> str:
    """The status page a browser reads, as read at `at` (past any replayed answer time)."""
    event = http_event("GET", f"/v1/requests/{request_id}", headers={"accept": "text/html"},
                       path_parameters={"request_id": request_id})  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("optout.queries.read_at", lambda: at)
        answer: dict[str, Any] = invoke(pipe.capture, event)
    assert answer["statusCode"] == 200
    return str(answer["body"])


def _views(
    pipe: Pipeline, cli: Cli, request_id: str, later: datetime, days: set[str],
    system: str = "google_ads",
) -> dict[str, Any]:  # fmt: skip
    """What each view says of one request: whether it reads in part, and what was not taken
    (`days`: gets the day its §7102 figures count it under)."""
    page = _page(pipe, request_id, later)
    path = f"/v1/admin/requests/{request_id}"
    detail = json_body(invoke(pipe.admin, http_event(
        "GET", path, path_parameters={"request_id": request_id}, iam=True)))  # fmt: skip
    day = detail["received_at"][:10]
    export = json_body(invoke(pipe.admin, http_event(
        "POST", "/v1/admin/exports/range", {"from": day, "to": day}, iam=True)))  # fmt: skip
    (record,) = [r for r in export["records"]
                 if r["record"] == "request" and r["request_id"] == request_id]  # fmt: skip
    # the §7102 outcome as the deadline watch folds it into the ledger (its own read)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    watch = Watch(table, WatchSettings(lag_seconds=0, backfill_days=1), clock=lambda: later)
    folded = watch.check(request_id, later, WatchReport(run_at=iso(later)))
    assert folded is not None
    ran = cli("status", request_id)
    assert ran.code == 0, ran.err
    days.add(folded.day)
    return {
        "page": COMPLETED_IN_PART in page,
        "ledger": folded.outcome,
        "export": record["outcome"],
        "export_not_taken": record["not_taken"],
        "operator": (detail["status"], detail.get("not_taken", [])),
        "cli": f"{system}  not taken: email" in ran.out,
    }


def test_a_repeat_not_asked_after_a_job_that_sent_nothing_is_in_part_in_every_view(
    pipe: Pipeline, cli: Cli
) -> None:
    # Given a first opt-out for an email Google has no form of: its Google job sent nothing
    first = pipe.post("/v1/opt-out", {"email": NO_FORM_EMAIL})["request_id"]
    pipe.resolve()
    assert len(work(pipe, "googleads", NoForm())) == 1
    for queue in OTHER_QUEUES:
        work(pipe, queue, Vendor())
    # And a repeat within the quiet period naming the same email and a customer id: Google,
    # which takes no customer id, is not asked again (it cites the first request's job)
    second = pipe.post("/v1/opt-out", {"email": NO_FORM_EMAIL, "customer_id": "cust-in-part-1",
                                       "agent": {"name": "Agent"}})["request_id"]  # fmt: skip
    pipe.resolve()
    assert pipe.drain("googleads") == []
    for queue in OTHER_QUEUES:
        work(pipe, queue, Vendor())
    later = datetime.now(UTC) + timedelta(days=2)
    part = [{"system": "google_ads", "identifier_types": ["email"]}]
    # When each view reads them
    days: set[str] = set()
    for request_id in (first, second):
        views = _views(pipe, cli, request_id, later, days)
        # Then every view says complied with in part, Google not having taken the email: the
        # page, the figures, the export and the operator record agree (review s26 diff B F2:
        # the repeat's page said in part while the rest said in whole)
        assert views == {
            "page": True, "ledger": "complied_part", "export": "complied_part",
            "export_not_taken": part, "operator": ("completed", part), "cli": True,
        }, request_id  # fmt: skip
    # And the §7102 figures the report reads (the ledger the watch folded) count both so
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    (day,) = days
    requests = MetricsService(table).year(int(day[:4]), "now")["requests"]
    assert (requests["complied_part"], requests["complied_whole"]) == (2, 0)


def test_a_detail_a_vendor_refused_is_in_part_for_operators_and_not_on_the_public_page(
    pipe: Pipeline, cli: Cli
) -> None:
    # Given an opt-out naming someone's email beside the requester's own phone, whose email
    # the UID2 operator answers is opted out of UID2 (review s27 stranger F2)
    request_id = pipe.post("/v1/opt-out", {"email": "someone@example.com",
                                           "phone": "+14155550123"})["request_id"]  # fmt: skip
    pipe.resolve()
    assert len(work(pipe, "tradedesk", Uid2OptedOut())) == 1
    for queue in ("webhook", "segment", "braze", "salesforce", "meta", "googleads"):
        work(pipe, queue, Vendor())
    later = datetime.now(UTC) + timedelta(days=2)
    # When each view reads it
    views = _views(pipe, cli, request_id, later, set(), system="trade_desk")
    # Then the operators' views, the export and the §7102 outcome say complied with in part,
    # and the public page does not: the vendor's answer is not the requester's to read
    part = [{"system": "trade_desk", "identifier_types": ["email"]}]
    assert views == {
        "page": False, "ledger": "complied_part", "export": "complied_part",
        "export_not_taken": part, "operator": ("completed", part), "cli": True,
    }  # fmt: skip
    page = _page(pipe, request_id, later)
    assert "Completed: we have finished with your request" in page
