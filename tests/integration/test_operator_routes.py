"""Compliance operator routes (admin function): deny, metrics, exports, imports, redrive.
IAM only, allow-listed callers only, no identifier values out but the one asked for."""

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from local.environment import LOCAL_IAM_CALLER
from local.moto_guard import guarded
from optout.events import KeyedIdentifier
from optout.identifiers import Identifier
from optout.ops.export import PAGE_QUERIES, ExportService
from optout.ops.redrive import LONG_POLL_SECONDS
from optout.ops.watch import Watch, WatchSettings
from optout.store import keys
from optout.store.batch import batch_put
from optout.store.table import Table
from optout.timestamps import iso
from optout.webform_pages import NEUTRAL_DATE
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.aws_hooks import session_hooks
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function
from tests.support.pipeline import QUEUE_KEYS, Pipeline, build_pipeline
from tests.support.seed import SECRET, seed_request
from tests.support.tokens import token_for

EMAIL = "operator-test@example.com"
OTHER = "someone-else@example.com"
DEVICE = "dev-operator-aaaaaaaaaa"
RID = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
TODAY = datetime.now(UTC).date().isoformat()
NEW_ROUTES = [
    ("POST", f"/v1/admin/requests/{RID}/deny", {"request_id": RID},
     {"reason_code": "suspected_fraud", "reason": "a scripted burst from one address"}),
    ("GET", "/v1/admin/metrics", None, None),
    ("POST", "/v1/admin/exports/identity", None, {"type": "email", "value": EMAIL}),
    ("POST", "/v1/admin/exports/range", None, {"from": "2026-11-01", "to": "2026-11-29"}),
    ("POST", "/v1/admin/imports", None, {"rows": [{"external_id": "x", "received_at": "2026"}]}),
    ("POST", "/v1/admin/systems/braze/redrive", {"system": "braze"}, None),
]  # fmt: skip


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def call(
    pipe: Pipeline,
    method: str,
    path: str,
    body: Any = None,
    *,
    iam: bool = True,
    params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> Any:
    event = http_event(method, path, body, path_parameters=params, iam=iam)
    if query:
        event["queryStringParameters"] = query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return invoke(pipe.admin, event)


def ok(answer: dict[str, Any], status: int = 200) -> Any:
    assert answer["statusCode"] == status, answer["body"]
    return json_body(answer)


def watch(pipe: Pipeline, at: datetime | None = None) -> None:
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    moment = at or datetime.now(UTC) + timedelta(minutes=5)
    Watch(table, WatchSettings(backfill_days=2), clock=lambda: moment).run()


@pytest.mark.parametrize(("method", "path", "params", "body"), NEW_ROUTES)
def test_every_operations_route_refuses_an_unsigned_call(
    pipe: Pipeline, method: str, path: str, params: dict[str, str] | None, body: Any
) -> None:
    answer = call(pipe, method, path, body, iam=False, params=params, query={"year": "2026"})
    assert answer["statusCode"] == 403
    assert json_body(answer)["error"]["code"] == "forbidden"
    assert pipe.items() == []


# -- denial -------------------------------------------------------------------------------------


def deny(pipe: Pipeline, request_id: str, reason: str = "a burst of 400 requests from one IP"):  # type: ignore[no-untyped-def]
    body = {"reason_code": "suspected_fraud", "reason": reason}
    path = f"/v1/admin/requests/{request_id}/deny"
    return call(pipe, "POST", path, body, params={"request_id": request_id})


def test_a_denied_request_shows_denied_with_its_reason_code(pipe: Pipeline) -> None:
    # Given an opt-out
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    # When an operator denies it
    answer = ok(deny(pipe, request_id))
    # Then the public status says denied, and the record keeps who, when and why
    assert answer["status"] == "denied"
    status = pipe.get(f"/v1/requests/{request_id}", request_id=request_id)
    assert (status["status"], status["denial_reason"]) == ("denied", "suspected_fraud")
    detail = ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}",
                     params={"request_id": request_id}))  # fmt: skip
    assert detail["denial"]["denied_by"].endswith("local-signed-caller")
    assert detail["denial"]["reason"] == "a burst of 400 requests from one IP"
    # ... and the person's status page gives the reason it says it gives (review s22 proof P3),
    # never the operator's own text
    path = f"/v1/requests/{request_id}"
    page = invoke(pipe.capture, http_event("GET", path, path_parameters={"request_id": request_id},
                                           headers={"accept": "text/html"}))["body"]  # fmt: skip
    assert "for the reason shown below" in page and "will tell you why" not in page
    assert "request is fraudulent" in page and "burst of 400" not in page


def test_a_denial_reason_holding_an_email_or_phone_is_refused_without_echo(
    pipe: Pipeline,
) -> None:
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    for reason in (f"the person {EMAIL} called", "called us from +1 415 555 0132 twice"):
        answer = deny(pipe, request_id, reason)
        assert answer["statusCode"] == 422
        assert json_body(answer)["error"]["field"] == "reason"
        assert EMAIL not in answer["body"] and "555" not in answer["body"]
    assert not [i for i in pipe.items("REQ#") if i["sk"] == "DENIAL"]


def test_a_denial_reason_naming_the_requests_customer_id_or_a_disguised_email_is_refused(
    pipe: Pipeline,
) -> None:
    # Review s17 PII M2: a fullwidth at sign, a spelled-out address and the request's own
    # customer id passed, and `optout status` and the exports showed them.
    body = {"email": "canary.z9q@example.org", "customer_id": "CUST-CANARY-77"}
    request_id = pipe.post("/v1/opt-out", body)["request_id"]
    for reason in ("scripted, same as canary.z9q\uff20example.org and more",
                   "fraud from canary.z9q at example.org seen",
                   "fraud from CUST-CANARY-77 seen, scripted"):  # fmt: skip
        answer = deny(pipe, request_id, reason)
        assert answer["statusCode"] == 422, reason
        assert json_body(answer)["error"]["field"] == "reason"
        assert "canary" not in answer["body"].lower()
    assert not [i for i in pipe.items("REQ#") if i["sk"] == "DENIAL"]
    assert ok(deny(pipe, request_id, "fraud from CUST-CANARY-78 seen, scripted"))


def test_a_request_is_denied_once_and_only_an_opt_out_can_be(pipe: Pipeline) -> None:
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    ok(deny(pipe, request_id))
    assert deny(pipe, request_id)["statusCode"] == 409
    assert deny(pipe, RID)["statusCode"] == 404
    link = {"links": [{"a": {"type": "device_id", "value": DEVICE},
                       "b": {"type": "email", "value": EMAIL}}]}  # fmt: skip
    links_request = pipe.post("/v1/identity-links", link, iam=True)["request_id"]
    assert deny(pipe, links_request)["statusCode"] == 409


def test_a_request_every_system_confirmed_cannot_be_denied_afterwards(pipe: Pipeline) -> None:
    # Given an opt-out every system has confirmed
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    for key in QUEUE_KEYS:
        work(pipe, key, Vendor())
    assert pipe.get(f"/v1/requests/{request_id}", request_id=request_id)["status"] == "completed"
    # When an operator tries to deny it
    answer = deny(pipe, request_id)
    # Then it is refused, nothing is written, and the record still says complied with
    assert answer["statusCode"] == 409
    assert json_body(answer)["error"]["field"] == "request_id"
    assert not [i for i in pipe.items("REQ#") if i["sk"] == "DENIAL"]
    assert pipe.get(f"/v1/requests/{request_id}", request_id=request_id)["status"] == "completed"


def test_a_request_to_limit_can_be_denied_and_is_counted_denied_on_its_own_rows(
    pipe: Pipeline,
) -> None:
    # Given a request to limit the use of sensitive data only (review s13 law 2)
    body = {"email": EMAIL, "purposes": ["limit_sensitive"]}
    request_id = pipe.post("/v1/opt-out", body)["request_id"]
    pipe.resolve()
    watch(pipe)
    year = str(datetime.now(UTC).year)
    before = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))
    # When an operator denies it as fraudulent (§7027(f))
    assert ok(deny(pipe, request_id))["status"] == "denied"
    watch(pipe, datetime.now(UTC) + timedelta(minutes=10))
    after = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))
    # Then it is counted on the limit rows, received then denied, and not as an opt-out
    assert (before["limit_requests"]["received"], before["limit_requests"]["open"]) == (1, 1)
    assert (after["limit_requests"]["received"], after["limit_requests"]["denied"]) == (1, 1)
    assert after["requests"]["received"] == 0
    status = pipe.get(f"/v1/requests/{request_id}", request_id=request_id)
    assert status["status"] == "denied"


def test_a_request_a_system_confirmed_cannot_be_denied_as_it_was_complied_with_in_part(
    pipe: Pipeline,
) -> None:
    # Given an opt-out one system confirmed while the others have not answered yet
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    work(pipe, QUEUE_KEYS[0], Vendor())
    status = ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}",
                     params={"request_id": request_id}))  # the operator's count  # fmt: skip
    assert status["status"] != "completed" and status["systems_done"] >= 1
    # When an operator tries to deny it
    answer = deny(pipe, request_id)
    # Then it is refused (review s13 law 7): it was complied with in part, nothing is written
    assert answer["statusCode"] == 409
    assert json_body(answer)["error"]["field"] == "request_id"
    assert "in part" in json_body(answer)["error"]["message"]
    assert not [i for i in pipe.items("REQ#") if i["sk"] == "DENIAL"]


def test_the_metrics_count_a_denial_once_the_watch_has_seen_it(pipe: Pipeline) -> None:
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    watch(pipe)
    year = str(datetime.now(UTC).year)
    before = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))["requests"]
    ok(deny(pipe, request_id))
    watch(pipe, datetime.now(UTC) + timedelta(minutes=10))
    after = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))["requests"]
    assert (before["open"], before["denied"]) == (1, 0)
    assert (after["open"], after["denied"], after["received"]) == (0, 1, 1)


def test_the_metrics_give_californias_sale_and_sharing_figure_apart_from_all_requests(
    pipe: Pipeline,
) -> None:
    # Given a Colorado opt-out of profiling only, a California opt-out of sale and one of
    # sharing with no jurisdiction (review s13 law 4: all three were counted as requests to
    # opt out of sale or sharing)
    pipe.post("/v1/opt-out", {"email": "prof1@example.com", "purposes": ["profiling"],
                              "jurisdiction": "US-CO"})  # fmt: skip
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"], "jurisdiction": "US-CA"})
    pipe.post("/v1/opt-out", {"email": "nowhere@example.com", "purposes": ["share"]})
    pipe.resolve()
    watch(pipe)
    # When an operator reads the year's figures
    year = str(datetime.now(UTC).year)
    found = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))
    # Then all individuals' opt-outs are 3, California's sale/sharing opt-outs (§7102(a)(1)(D))
    # 1; the Colorado profiling-only one is not in it, nor the one of unknown jurisdiction
    assert found["requests"]["received"] == 3
    assert found["california_sale_share"]["received"] == 1
    groups = {(region, purpose): cell["received"] for region, cells in found["by_group"].items()
              for purpose, cell in cells.items() if cell["received"]}  # fmt: skip
    assert groups == {("california", "sale_share"): 1, ("other", "ads_profiling_only"): 1,
                      ("unknown", "sale_share"): 1}  # fmt: skip
    assert found["split"]["complete"] is True
    # And it warns that one request of no known jurisdiction is not in California's figure
    # (review s14 counsel 4: the webform and banner send none, and without the edge nothing
    # geolocates them, so California's figure read 0 with no word of why)
    unknown = found["unknown_jurisdiction"]
    assert (unknown["requests"], unknown["limit_requests"]) == (1, 0)
    assert unknown["warning"].startswith("1 opt-out requests and 0 requests to limit")
    assert "EnableEdge=true" in unknown["warning"] and "`jurisdiction`" in unknown["warning"]


def test_the_metrics_give_no_unknown_jurisdiction_warning_when_every_request_has_one(
    pipe: Pipeline,
) -> None:
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"], "jurisdiction": "US-CA"})
    pipe.resolve()
    watch(pipe)
    year = str(datetime.now(UTC).year)
    found = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))
    assert found["unknown_jurisdiction"] == {"requests": 0, "limit_requests": 0, "warning": None}


def test_a_repeated_gpc_signal_is_counted_as_a_repeat_not_as_a_request_received(
    pipe: Pipeline,
) -> None:
    # Given a browser's GPC signal, carried out by every system
    device = "dev-gpc-repeat-0000000001"
    pipe.post("/v1/consent", {"device_id": device, "opt_out": {}, "gpc": True})
    pipe.resolve()
    for queue_key in QUEUE_KEYS:
        work(pipe, queue_key, Vendor())
    # When the banner posts it again on the next pages (each with its own key)
    for _ in range(3):
        pipe.post("/v1/consent", {"device_id": device, "opt_out": {}, "gpc": True})
        pipe.resolve()
    assert pipe.drain_all() == {key: [] for key in QUEUE_KEYS}  # nothing new to send
    watch(pipe)
    # Then the year counts one GPC request received and complied with, and three repeats
    # on their own row, outside the received count, the days to respond and the weeks
    year = str(datetime.now(UTC).year)
    found = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))
    gpc = found["by_source"]["gpc"]
    assert (gpc["received"], gpc["complied"], gpc["repeats"]) == (1, 1, 3)
    assert (found["requests"]["received"], found["requests"]["repeats"]) == (1, 3)
    assert gpc["days_to_respond"]["responses"] == 1
    assert sum(week["gpc"] for week in found["weekly"]) == 1


def test_page_views_of_a_person_no_vendor_holds_count_as_repeats_and_ask_no_vendor_again(
    pipe: Pipeline,
) -> None:
    # Given a logged-in visitor's GPC signal that every system answered "no such person"
    device = "dev-gpc-nobody-000000001"
    page = {"device_id": device, "opt_out": {}, "gpc": True,
            "identity_token": token_for(email=EMAIL, device_id=device)}  # fmt: skip
    pipe.post("/v1/consent", page)
    pipe.resolve()
    for queue_key in QUEUE_KEYS:
        work(pipe, queue_key, Vendor(status="no_record"))
    # When the banner posts it again on the next pages, within the quiet period
    for _ in range(3):
        login = token_for(email=EMAIL, device_id=device)
        pipe.post("/v1/consent", {**page, "identity_token": login})
        pipe.resolve()
    # Then no vendor is asked again (each call costs money and rate limit)
    assert pipe.drain_all() == {key: [] for key in QUEUE_KEYS}
    watch(pipe)
    # And the year counts one GPC request and three repeats, not four requests received
    year = str(datetime.now(UTC).year)
    found = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": year}))
    gpc = found["by_source"]["gpc"]
    assert (gpc["received"], gpc["repeats"]) == (1, 3)
    # And the person's export says, per page view and system, it was not asked, and why
    body = {"type": "email", "value": EMAIL}
    records = ok(call(pipe, "POST", "/v1/admin/exports/identity", body))["records"]
    quiet = [r for r in records if r["record"] == "not_asked" and r["system"] == "braze"]
    assert len(quiet) == 3 and len({r["request_id"] for r in quiet}) == 3
    assert all(r["note"].startswith("not asked: the vendor answered no such person at ")
               for r in quiet)  # fmt: skip


# -- exports ------------------------------------------------------------------------------------


def test_an_identity_export_holds_its_requests_jobs_and_links_but_no_other_value(
    pipe: Pipeline,
) -> None:
    # Given two opt-outs naming the email (one typed on a browser), and another person's
    first = pipe.post("/v1/opt-out", {"email": EMAIL, "device_id": DEVICE})["request_id"]
    second = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.post("/v1/opt-out", {"email": OTHER})
    pipe.resolve()
    watch(pipe)
    # When an operator exports the email's records
    answer = ok(call(pipe, "POST", "/v1/admin/exports/identity", {"type": "email",
                                                                   "value": EMAIL}))  # fmt: skip
    records = answer["records"]
    # Then it has the identity, who asserted it, both requests with their jobs; no other value
    kinds = [r["record"] for r in records]
    assert kinds[0] == "identity" and records[0]["value"] == EMAIL.lower()
    assert {r["kind"] for r in records if r["record"] == "link"} == {"asserted_by"}
    assert [r["request_id"] for r in records if r["record"] == "request"] == [first, second]
    assert {r["system"] for r in records if r["record"] == "job"} >= {"braze", "salesforce"}
    text = json.dumps(records)
    assert text.count(EMAIL.lower()) == 1
    assert DEVICE not in text and OTHER not in text
    assert answer["cursor"] is None


def test_an_identity_exports_delivery_names_the_job_whose_receipt_confirmed_it(
    pipe: Pipeline,
) -> None:
    # Given an opt-out braze confirmed
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    work(pipe, "braze", Vendor())
    watch(pipe)
    # When an operator exports the email's records
    body = {"type": "email", "value": EMAIL}
    records = ok(call(pipe, "POST", "/v1/admin/exports/identity", body))["records"]
    # Then braze's delivery names its job, and that job's record holds the confirmation time
    (delivery,) = [r for r in records if r["record"] == "delivery" and r["system"] == "braze"]
    assert (delivery["confirmed"], delivery["jobs"]) == (["sale"], {"sale": f"{request_id}:braze"})
    (job,) = [r for r in records if r["record"] == "job" and r["job_id"] == f"{request_id}:braze"]
    assert job["status"] == "done" and job["completed_at"] is not None


def test_an_identity_named_by_many_unreferenced_requests_exports_page_after_page(
    pipe: Pipeline,
) -> None:
    # Given an email named by 55 requests through edges only (no reference: older than the
    # watch, or their references expired while the edges lived on)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    pk = keys.identity_pk("email", KeyedIdentifier.of(SECRET, Identifier("email", EMAIL)).key)
    at = datetime.now(UTC) - timedelta(days=900)
    seeded = [seed_request(table, n, at + timedelta(hours=n), "completed") for n in range(1, 56)]
    edges = [{"pk": pk, "sk": keys.edge_sk(keys.ASSERTED_PREFIX, f"ID#device_id#k{n}"),
              "kind": "asserted", "request_id": s.request_id, "carried": [],
              "asserted_at": iso(s.received_at + timedelta(minutes=1))}
             for n, s in enumerate(seeded)]  # fmt: skip
    batch_put(table, [{"pk": pk, "sk": keys.NODE_SK, "kind": "node", "version": 1}, *edges])
    # When an operator exports it through the route, page after page
    body: dict[str, Any] = {"type": "email", "value": EMAIL}
    pages = [ok(call(pipe, "POST", "/v1/admin/exports/identity", body))]
    while pages[-1]["cursor"] is not None:
        # the route takes up to 2,048 (422 past it); the seal's chain adds a fixed ~130
        assert len(pages[-1]["cursor"]) < 400
        body["cursor"] = pages[-1]["cursor"]
        pages.append(ok(call(pipe, "POST", "/v1/admin/exports/identity", body)))
    # Then every page was answered, and every request came once, oldest first
    exported = [r["request_id"] for p in pages for r in p["records"] if r["record"] == "request"]
    assert exported == [s.request_id for s in seeded]
    assert [p["progress"]["done"] for p in pages] == [25, 50, 55]


def test_a_range_export_pages_through_every_request_once(pipe: Pipeline) -> None:
    # Given 30 opt-outs today
    made = {pipe.post("/v1/opt-out", {"email": f"p{n}@example.com"})["request_id"]
            for n in range(30)}  # fmt: skip
    today = datetime.now(UTC).date().isoformat()
    # When an operator exports today, page by page
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        body = {"from": today, "to": today, **({"cursor": cursor} if cursor else {})}
        answer = ok(call(pipe, "POST", "/v1/admin/exports/range", body))
        seen += [r["request_id"] for r in answer["records"] if r["record"] == "request"]
        pages += 1
        cursor = answer["cursor"]
        if cursor is None:
            break
    # Then every request comes exactly once, over more than one page, and no email with it
    assert sorted(seen) == sorted(made) and pages > 1
    assert answer["progress"] == {"done": 1, "total": 1, "unit": "days"}


@pytest.mark.parametrize(
    ("path", "body"),
    [("/v1/admin/exports/identity", {"type": "email", "value": EMAIL}),
     ("/v1/admin/exports/range", {"from": TODAY, "to": TODAY})],
)  # fmt: skip
def test_an_export_page_answers_the_shape_the_iam_document_states(
    pipe: Pipeline, path: str, body: dict[str, str]
) -> None:
    # Given a request on record, and the IAM routes' OpenAPI document
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    watch(pipe)
    doc = ok(call(pipe, "GET", "/v1/admin/openapi.json"))
    # When an operator exports a page
    answer = ok(call(pipe, "POST", path, body))
    # Then the document states the page's fields, not "any object" (schemathesis could check
    # nothing: review s19 ST), and the answer is valid against it
    schema = doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
    root = {**schema["schema"], "components": doc["components"]}
    page = doc["components"]["schemas"][schema["schema"]["$ref"].rsplit("/", 1)[1]]
    assert {"records", "cursor", "progress"} <= set(page["required"])
    jsonschema.Draft202012Validator(root).validate(answer)
    assert answer["records"], "a page with records on it"
    assert set(answer) == set(page["properties"])


def test_a_range_export_says_which_requests_are_late(pipe: Pipeline) -> None:
    # Given an opt-out every system confirmed today, and one no system has answered yet
    # (review s13 law 8: the exports had `deadline` and `completed_at` but no "late" flag)
    done = pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    for key in QUEUE_KEYS:
        work(pipe, key, Vendor())
    open_one = pipe.post("/v1/opt-out", {"email": OTHER, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    now = datetime.now(UTC)
    today = now.date()

    def late_at(moment: datetime) -> dict[str, tuple[str, bool]]:
        answer = ExportService(table, b"k" * 32, clock=lambda: moment).range(today, today, None)
        return {r["request_id"]: (r["status"], r["late"])
                for r in answer["records"] if r["record"] == "request"}  # fmt: skip

    # When they are exported today, then neither is late
    assert late_at(now) == {done: ("completed", False), open_one: ("processing", False)}
    # When they are exported two months on, past both deadlines: the open one is late, the
    # one completed before its deadline is not
    later = now + timedelta(days=60)
    assert late_at(later) == {done: ("completed", False), open_one: ("processing", True)}


def queries_of(pipe: Pipeline) -> list[str]:
    """Names of the DynamoDB Queries the pipe's client makes from now on."""
    calls: list[str] = []
    pipe.aws.dynamodb.meta.events.register(
        "before-call.dynamodb.Query", lambda model, **_: calls.append(model.name)
    )
    return calls


def test_a_range_export_of_a_quiet_stretch_answers_within_its_query_bound_with_a_cursor(
    pipe: Pipeline,
) -> None:
    # Given a range of 799 quiet days (16 day-shards each: 12,784 Queries if read in one call)
    exports = ExportService(Table(pipe.aws.dynamodb, pipe.aws.table_name), b"k" * 32)
    queries = queries_of(pipe)
    # When its first page is asked for
    answer = exports.range(date(2025, 1, 1), date(2027, 3, 10), None)
    # Then the page stops at the Query bound, holds nothing, and gives a cursor to go on from
    assert len(queries) == PAGE_QUERIES
    assert answer["records"] == [] and answer["cursor"] is not None
    days = PAGE_QUERIES // len(keys.DAY_SHARDS)
    assert answer["progress"] == {"done": days, "total": 799, "unit": "days"}


def test_a_range_export_page_ends_when_the_function_runs_low_on_time(pipe: Pipeline) -> None:
    exports = ExportService(Table(pipe.aws.dynamodb, pipe.aws.table_name), b"k" * 32)
    queries = queries_of(pipe)
    # When the function has less time left than a page's margin
    answer = exports.range(date(2026, 1, 1), date(2026, 1, 31), None, lambda: 1.0)
    # Then the page makes one Query (so the cursor still moves on) and answers
    assert len(queries) == 1 and answer["cursor"] is not None
    again = exports.range(date(2026, 1, 1), date(2026, 1, 31), answer["cursor"], lambda: 1.0)
    assert len(queries) == 2 and again["cursor"] != answer["cursor"]


def test_a_sparse_range_export_follows_empty_pages_to_every_request_once(pipe: Pipeline) -> None:
    # Given 3 opt-outs today, after 39 quiet days
    made = {pipe.post("/v1/opt-out", {"email": f"s{n}@example.com"})["request_id"]
            for n in range(3)}  # fmt: skip
    today = datetime.now(UTC).date()
    body = {"from": (today - timedelta(days=39)).isoformat(), "to": today.isoformat()}
    queries = queries_of(pipe)
    # When an operator exports the 40 days, following each cursor
    seen: list[str] = []
    empty = 0
    cursor = None
    while True:
        before = len(queries)
        answer = ok(call(pipe, "POST", "/v1/admin/exports/range",
                         {**body, **({"cursor": cursor} if cursor else {})}))  # fmt: skip
        assert len(queries) - before <= PAGE_QUERIES
        seen += [r["request_id"] for r in answer["records"] if r["record"] == "request"]
        empty += not answer["records"]
        cursor = answer["cursor"]
        if cursor is None:
            break
    # Then pages without records carried the cursor on, and every request came once
    assert empty >= 2 and sorted(seen) == sorted(made)
    assert answer["progress"] == {"done": 40, "total": 40, "unit": "days"}


def test_a_forged_export_cursor_is_refused(pipe: Pipeline) -> None:
    body = {"from": "2026-11-01", "to": "2026-11-02", "cursor": "bm90IGEgY3Vyc29y"}
    answer = call(pipe, "POST", "/v1/admin/exports/range", body)
    assert (answer["statusCode"], json_body(answer)["error"]["field"]) == (422, "cursor")


@pytest.mark.parametrize("moment", ["2026-11-01T00:00:00Z", "2026-11-01T17:00:00-08:00"])
def test_a_range_export_refuses_a_datetime_where_a_day_is_expected(
    pipe: Pipeline, moment: str
) -> None:
    # When a range export is asked from a date and time (read as a day, it would be a UTC day
    # the caller may not mean)
    answer = call(pipe, "POST", "/v1/admin/exports/range", {"from": moment, "to": "2026-11-30"})
    # Then it is refused, naming the field and what it takes, without the value
    assert answer["statusCode"] == 422
    error = json_body(answer)["error"]
    assert (error["field"], error["message"]) == (
        "from", "from must be a day such as 2026-11-01 (a UTC day, without a time)",
    )  # fmt: skip
    assert moment not in answer["body"]


# -- imports ------------------------------------------------------------------------------------


def import_rows(pipe: Pipeline, rows: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = ok(call(pipe, "POST", "/v1/admin/imports", {"rows": rows}))
    return result


def test_an_import_stores_good_rows_and_reports_bad_ones_by_line_and_field(
    pipe: Pipeline,
) -> None:
    rows = [
        {"line": 2, "external_id": "OT-1", "received_at": "2026-03-04T10:00:00Z",
         "email": "imported@example.com", "source": "banner", "completed_at": "2026-03-05"},
        {"line": 3, "external_id": "OT-2", "received_at": "2026-03-04", "phone": "+14155550100",
         "purposes": "sale;share", "jurisdiction": "US-CO"},
        {"line": 4, "external_id": "OT-3", "received_at": "2026-03-04", "email": "not-an-email"},
        {"line": 5, "external_id": "OT-4", "received_at": "yesterday", "email": "a@example.com"},
        {"line": 6, "external_id": "OT-5", "received_at": "2026-03-04"},
        {"line": 7, "external_id": "OT-6", "received_at": "2026-03-04", "email": "b@example.com",
         "purposes": "sale;everything"},
    ]  # fmt: skip
    result = import_rows(pipe, rows)
    assert (result["stored"], result["duplicates"]) == (2, 0)
    assert [(r["line"], r["field"]) for r in result["rejected"]] == [
        (4, "email"), (5, "received_at"), (6, "email"), (7, "purposes"),
    ]  # fmt: skip
    assert "not-an-email" not in json.dumps(result) and "everything" not in json.dumps(result)
    events = [i for i in pipe.items("REQ#") if i["sk"] == "EVENT"]
    assert sorted((e["source"], e["received_at"][:10], e["deadline"]) for e in events) == [
        # (a date alone is that date in Colorado: 45 days from 4 March)
        ("banner", "2026-03-04", "2026-03-25"), ("webform", "2026-03-04", "2026-04-18"),
    ]  # fmt: skip


def test_an_import_refuses_an_external_id_that_is_the_persons_email_phone_or_customer_id(
    pipe: Pipeline,
) -> None:
    # Review s17 PII M1: the external_id is kept and shown (admin view, exports, the CLI's
    # request-ids CSV), and an email was stored as one.
    day = "2026-03-04"
    rows = [
        {"line": 2, "external_id": "canary.z9q@example.org", "received_at": day,
         "email": "canary.z9q@example.org"},
        {"line": 3, "external_id": "canary.z9q\uff20example.org", "received_at": day,
         "customer_id": "CUST-CANARY-77"},
        {"line": 4, "external_id": "CUST-CANARY-77", "received_at": day,
         "customer_id": "CUST-CANARY-77"},
        {"line": 5, "external_id": "sms-4155550199", "received_at": day,
         "phone": "+1 415 555 0199"},
        {"line": 6, "external_id": "OT-20261130-0001234", "received_at": day,
         "customer_id": "CUST-CANARY-77"},
    ]  # fmt: skip
    result = import_rows(pipe, rows)
    assert [(r["line"], r["field"]) for r in result["rejected"]] == [
        (2, "external_id"), (3, "external_id"), (4, "external_id"), (5, "external_id"),
    ]  # fmt: skip
    assert result["stored"] == 1 and "canary" not in json.dumps(result["rejected"]).lower()


def test_an_imported_date_without_a_time_is_that_date_in_the_rows_jurisdiction(
    pipe: Pipeline,
) -> None:
    # Given rows whose received_at is a date alone, or a time without an offset
    rows = [
        {"line": 2, "external_id": "D-1", "received_at": "2026-03-02", "email": "d1@example.com",
         "jurisdiction": "US-CA", "completed_at": "2026-03-03"},
        {"line": 3, "external_id": "D-2", "received_at": "2026-03-02T10:00:00",
         "email": "d2@example.com", "jurisdiction": "US-CA"},
    ]  # fmt: skip
    assert import_rows(pipe, rows)["stored"] == 2
    events = {e["evidence"]["imported"]["external_id"]: e
              for e in pipe.items("REQ#") if e["sk"] == "EVENT"}  # fmt: skip
    # Then a date alone is read from the first instant of that day in California (its
    # westernmost standard offset, UTC-8), so the deadline counts from Monday 2 March, and
    # a completion date from its last instant (never understating days to respond)
    one = events["D-1"]
    assert (one["received_at"], one["deadline"]) == ("2026-03-02T08:00:00.000Z", "2026-03-23")
    assert one["evidence"]["imported"]["completed_at"] == "2026-03-04T07:59:59.999Z"
    # And a time without an offset is UTC (10:00 UTC is 02:00 in California on 2 March)
    two = events["D-2"]
    assert (two["received_at"], two["deadline"]) == ("2026-03-02T10:00:00.000Z", "2026-03-23")


def test_an_imports_record_names_the_calendar_its_deadline_was_counted_in(pipe: Pipeline) -> None:
    # Given rows imported today, one from Colorado and one with no jurisdiction (California's)
    rows = [
        {"line": 2, "external_id": "J-1", "received_at": "2026-03-02T10:00:00Z",
         "email": "j1@example.com", "jurisdiction": "US-CO"},
        {"line": 3, "external_id": "J-2", "received_at": "2026-03-02T10:00:00Z",
         "email": "j2@example.com"},
    ]  # fmt: skip
    taken = import_rows(pipe, rows)["request_ids"]
    ids = {row["external_id"]: row["request_id"] for row in taken}
    pipe.resolve()  # the identity export reads the identities the resolver records
    # Then the operator's record carries the calendar, as a captured request's does
    # (operations.md: absent only for a request stored before 2026-12-01; review s22 proof P7)
    for external_id, calendar in (("J-1", "US-CO"), ("J-2", "US-CA")):
        request_id = ids[external_id]
        record = ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}",
                         params={"request_id": request_id}))  # fmt: skip
        assert record["deadline_jurisdiction"] == calendar
        # ... and so do the person's export and the status page, which names no zone for an
        # import (none was stated) but says its dates are a state's (review s22 diff B10)
        email = f"{external_id.lower().replace('-', '')}@example.com"
        body = {"type": "email", "value": email}
        records = ok(call(pipe, "POST", "/v1/admin/exports/identity", body))["records"]
        (exported,) = [r for r in records if r["record"] == "request"]
        assert exported["deadline_jurisdiction"] == calendar
        path = f"/v1/requests/{request_id}"
        event = http_event("GET", path, path_parameters={"request_id": request_id},
                           headers={"accept": "text/html"})  # fmt: skip
        page = invoke(pipe.capture, event)["body"]
        deadline = escape(f"{record['deadline']} ({NEUTRAL_DATE})")
        assert f"<dt>To be completed by</dt><dd>{deadline}</dd>" in page


def test_an_import_names_an_unknown_column_by_position_never_by_its_text(
    pipe: Pipeline,
) -> None:
    # Given a row whose third key is an email (a file whose header line went missing)
    row = {"external_id": "z2", "received_at": "2026-03-02T10:00:00Z",
           "jane.secret@example.com": "x"}  # fmt: skip
    # When it is imported
    result = import_rows(pipe, [row])
    # Then it is rejected as column 3, and the key appears nowhere in the answer
    assert [(r["field"], r["code"]) for r in result["rejected"]] == [("column 3", "unknown_column")]
    assert "jane.secret" not in json.dumps(result)


def test_an_import_rejection_says_what_is_wrong_in_words_never_a_pattern(pipe: Pipeline) -> None:
    # Given rows whose jurisdiction, external_id and received_at do not match their formats
    rows = [
        {"line": 2, "external_id": "J-1", "received_at": "2026-03-02", "email": "a@example.com",
         "jurisdiction": "california"},
        {"line": 3, "external_id": "b4\u00e9", "received_at": "2026-03-02",
         "email": "b@example.com"},
        {"line": 4, "external_id": "J-3", "received_at": "2026-3", "email": "c@example.com"},
    ]  # fmt: skip
    # When they are imported
    result = import_rows(pipe, rows)
    # Then each is rejected by field with a reason in words: no pattern, no pydantic phrase
    reasons = {r["field"]: r["reason"] for r in result["rejected"]}
    assert sorted(reasons) == ["external_id", "jurisdiction", "received_at"]
    assert "such as US-CA" in reasons["jurisdiction"]
    assert "2026-03-02T10:00:00Z" in reasons["received_at"]
    for reason in reasons.values():
        assert not any(mark in reason for mark in ("^", "$", "[", "pattern", "Input should"))


def test_an_import_row_with_a_repeated_key_is_refused_not_read_as_its_last_value(
    pipe: Pipeline,
) -> None:
    # Given a batch whose row names email twice (JSON would keep only the second)
    body = ('{"rows":[{"external_id":"d1","received_at":"2026-03-02T10:00:00Z",'
            '"email":"op.d1a@example.com","email":"op.d1b@example.com"}]}')  # fmt: skip
    # When it is imported
    answer = invoke(pipe.admin, http_event("POST", "/v1/admin/imports", raw_body=body, iam=True))
    # Then the batch is refused, naming the key but neither value, and nothing is stored
    assert answer["statusCode"] == 400
    error = json_body(answer)["error"]
    assert (error["code"], error["field"]) == ("malformed_json", "email")
    assert "op.d1" not in answer["body"]
    assert [i for i in pipe.items("REQ#") if i["sk"] == "EVENT"] == []


def test_importing_the_same_rows_again_stores_nothing_twice(pipe: Pipeline) -> None:
    rows = [{"line": n + 2, "external_id": f"OT-{n}", "received_at": "2026-05-01",
             "email": f"i{n}@example.com"} for n in range(5)]  # fmt: skip
    first = import_rows(pipe, rows)
    again = import_rows(pipe, [*rows, rows[0]])
    assert (first["stored"], again["stored"], again["duplicates"]) == (5, 0, 6)
    assert len([i for i in pipe.items("REQ#") if i["sk"] == "EVENT"]) == 5
    # ... and each answer names every row's request id, the same each time (review s16
    # drill F10: `optout import` could not say which request a row became)
    stored = {e["evidence"]["imported"]["external_id"]: e["request_id"]
              for e in pipe.items("REQ#") if e["sk"] == "EVENT"}  # fmt: skip
    named = [(r["line"], r["external_id"], r["request_id"]) for r in again["request_ids"]]
    assert named == [(n + 2, f"OT-{n}", stored[f"OT-{n}"]) for n in range(5)] + [named[0]]
    assert first["request_ids"] == again["request_ids"][:5]


def test_imported_opt_outs_are_carried_out_and_folded_into_their_year(pipe: Pipeline) -> None:
    row = {"external_id": "OT-9", "received_at": "2026-02-02T08:00:00Z",
           "email": "carried@example.com", "completed_at": "2026-02-03T08:00:00Z"}  # fmt: skip
    import_rows(pipe, [row])
    pipe.resolve()
    assert {m["system"] for ms in pipe.drain_all().values() for m in ms} >= {"braze"}
    watch(pipe)
    figures = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": "2026"}))["requests"]
    assert (figures["received"], figures["open"]) == (1, 1)


def test_an_imported_completion_is_its_response_even_when_a_system_here_fails(
    pipe: Pipeline,
) -> None:
    # Given an imported opt-out the other tool completed 7 days after receiving it
    row = {"external_id": "OT-7d", "received_at": "2026-03-02T10:00:00Z",
           "email": "week@example.com", "completed_at": "2026-03-09T16:00:00Z"}  # fmt: skip
    import_rows(pipe, [row])
    pipe.resolve()
    # When braze refuses it for good here and every other system confirms it
    for queue_key in QUEUE_KEYS:
        work(pipe, queue_key, Vendor(refuse=queue_key == "braze"))
    watch(pipe)
    # Then the year counts it answered in 7 days (the other tool's completion), in part
    figures = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": "2026"}))
    assert (figures["requests"]["complied_part"], figures["systems"]["braze"]["failed"]) == (1, 1)
    assert figures["days_to_respond_histogram"] == [{"days": 7, "responses": 1}]


# -- redrive ------------------------------------------------------------------------------------


def test_a_redrive_moves_a_systems_dead_letters_back_to_its_queue(pipe: Pipeline) -> None:
    sqs = pipe.aws.sqs
    dlq = pipe.queue_urls["braze"].removesuffix("-jobs") + "-dlq"
    bodies = [json.dumps({"job_id": f"{RID}:braze", "request_id": RID, "system": "braze", "n": n})
              for n in range(12)]  # fmt: skip
    for body in bodies:
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    answer = ok(call(pipe, "POST", "/v1/admin/systems/braze/redrive", params={"system": "braze"}))
    assert (answer["moved"], answer["remaining"]) == (12, 0)
    moved = pipe.drain("braze")
    assert sorted(json.dumps(m) for m in moved) == sorted(bodies)


def test_a_redrives_long_poll_outlasts_its_clients_read_timeout(pipe: Pipeline) -> None:
    # The clients' 2 s read timeout (optout/aws.py, review s17 F2) is shorter than a long poll
    # answered after its whole wait: the redrive's SQS client reads longer, or every empty
    # poll on AWS would time out, be retried and fail the call. The rest of the budget stays.
    config = pipe.admin.services().redrive._sqs.meta.config
    assert config.read_timeout > LONG_POLL_SECONDS + 1
    assert (config.connect_timeout, config.retries["total_max_attempts"]) == (1, 3)


def dead_letters(pipe: Pipeline, count: int) -> str:
    dlq = pipe.queue_urls["braze"].removesuffix("-jobs") + "-dlq"
    for n in range(count):
        body = {"job_id": f"{RID}:braze", "request_id": RID, "system": "braze", "n": n}
        pipe.aws.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    return dlq


def answer_first(operation: str, parsed: dict[str, Any]) -> Any:
    """A `before-call` handler: the first call of `operation` gets `parsed` (HTTP 200) without
    reaching SQS, as AWS may answer it."""
    answered: list[int] = []

    def handler(**_: Any) -> Any:
        if answered:
            return None
        answered.append(1)
        return AWSResponse("https://sqs.local", 200, {}, None), parsed

    return f"before-call.sqs.{operation}", handler


def test_a_redrive_goes_on_after_an_empty_receive_while_the_dlq_holds_messages(
    pipe: Pipeline,
) -> None:
    # Given three dead letters, and a first receive that answers none of them (a short poll
    # samples some of SQS's servers only)
    dlq = dead_letters(pipe, 3)
    receives: list[int] = []
    with session_hooks("redrive-empty", pipe.admin.services.cache_clear) as register:
        register(*answer_first("ReceiveMessage", {}))
        register("provide-client-params.sqs.ReceiveMessage",
                 lambda params, **_: receives.append(params["WaitTimeSeconds"]))  # fmt: skip
        # When an operator redrives braze's DLQ
        path = "/v1/admin/systems/braze/redrive"
        answer = ok(call(pipe, "POST", path, params={"system": "braze"}))
    # Then it long-polls, goes on while the queue's count says messages remain, and moves all
    assert (answer["moved"], answer["remaining"]) == (3, 0)
    assert min(receives) >= 1
    assert len(pipe.drain("braze")) == 3
    assert pipe.aws.sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []


def test_a_redrive_receives_before_it_trusts_a_dlq_count_that_lags_at_zero(
    pipe: Pipeline,
) -> None:
    # Given three dead letters, and the DLQ's approximate count still answering 0 at first (AWS:
    # it may settle only a minute after the last message arrived)
    dead_letters(pipe, 3)
    stale = {"Attributes": {"ApproximateNumberOfMessages": "0",
                            "ApproximateNumberOfMessagesNotVisible": "0"}}  # fmt: skip
    with session_hooks("redrive-stale", pipe.admin.services.cache_clear) as register:
        register(*answer_first("GetQueueAttributes", stale))
        # When an operator redrives braze's DLQ
        path = "/v1/admin/systems/braze/redrive"
        answer = ok(call(pipe, "POST", path, params={"system": "braze"}))
    # Then its first long poll found the letters, and all three are moved
    assert answer["moved"] == 3
    assert len(pipe.drain("braze")) == 3


def test_a_redrive_ends_at_two_empty_long_polls_when_the_dlq_count_lags_high(
    pipe: Pipeline,
) -> None:
    # Given three dead letters, and the DLQ's approximate count still saying 3 after they moved
    dead_letters(pipe, 3)
    stale = {"Attributes": {"ApproximateNumberOfMessages": "3",
                            "ApproximateNumberOfMessagesNotVisible": "0"}}  # fmt: skip
    receives: list[int] = []
    with session_hooks("redrive-stale-high", pipe.admin.services.cache_clear) as register:
        register("before-call.sqs.GetQueueAttributes",
                 lambda **_: (AWSResponse("https://sqs.local", 200, {}, None), stale))  # fmt: skip
        register("provide-client-params.sqs.ReceiveMessage",
                 lambda params, **_: receives.append(params["WaitTimeSeconds"]))  # fmt: skip
        # When an operator redrives braze's DLQ
        path = "/v1/admin/systems/braze/redrive"
        answer = ok(call(pipe, "POST", path, params={"system": "braze"}))
    # Then it stops after two empty long polls, and says none remain
    assert (answer["moved"], answer["remaining"]) == (3, 0)
    assert len(receives) == 3


def test_a_redrive_counts_as_moved_only_the_letters_it_deleted_from_the_dlq(
    pipe: Pipeline,
) -> None:
    # Given two dead letters, and a delete that SQS refuses for one of them (HTTP 200)
    dead_letters(pipe, 2)
    refused: list[str] = []

    def refuse_one(params: dict[str, Any], **_: Any) -> None:
        if not refused:
            refused.append(params["Entries"].pop()["Id"])

    def answer_failed(parsed: dict[str, Any], **_: Any) -> None:
        if refused and not parsed.get("Failed"):
            parsed["Failed"] = [{"Id": refused[0], "SenderFault": False, "Code": "InternalError"}]

    with session_hooks("redrive-delete", pipe.admin.services.cache_clear) as register:
        register("provide-client-params.sqs.DeleteMessageBatch", refuse_one)
        register("after-call.sqs.DeleteMessageBatch", answer_failed)
        # When an operator redrives braze's DLQ
        path = "/v1/admin/systems/braze/redrive"
        answer = ok(call(pipe, "POST", path, params={"system": "braze"}))
    # Then the letter still in the DLQ is not counted as moved: it remains, to move again
    assert (answer["moved"], answer["remaining"]) == (1, 1)


def test_a_redrive_of_an_unknown_system_is_404(pipe: Pipeline) -> None:
    answer = call(pipe, "POST", "/v1/admin/systems/nosuch/redrive", params={"system": "nosuch"})
    assert answer["statusCode"] == 404
    assert "did you mean" not in json_body(answer)["error"]["message"]


def test_a_redrive_of_a_mistyped_system_names_the_close_one(pipe: Pipeline) -> None:
    # review s16 drill F9: the replay's first call answered a typo with no hint
    answer = call(pipe, "POST", "/v1/admin/systems/braz/redrive", params={"system": "braz"})
    error = json_body(answer)["error"]
    assert (answer["statusCode"], error["field"]) == (404, "system")
    assert error["message"].startswith("no system with this name; did you mean braze?")


# -- who acted ----------------------------------------------------------------------------------


def detail(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    path = f"/v1/admin/requests/{request_id}"
    return ok(call(pipe, "GET", path, params={"request_id": request_id}))  # type: ignore[no-any-return]


def test_a_replay_records_who_asked_for_it(pipe: Pipeline) -> None:
    # When an operator replays a system
    path = "/v1/admin/systems/braze/replay"
    started = ok(call(pipe, "POST", path, params={"system": "braze"}), 202)
    # Then the replay's record names the signer and the system
    event = detail(pipe, started["request_id"])["event"]
    assert event["evidence"] == {"acted_by": LOCAL_IAM_CALLER}
    assert event["operation"] == {"system": "braze"}


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example(first: str) -> str:
    """The README's answer example whose line starts with `first`, with its `#      `
    continuation lines."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(first))
    text = lines[start]
    for line in lines[start + 1 :]:
        if not line.startswith("#      "):
            break
        text += line[1:]
    return text


def top_level_keys(text: str) -> list[str]:
    """The names of an answer's outer object, from README's sketch of it (`…` for values,
    or a bare `{"a","b":"v"}` list of names)."""
    names, depth, previous = [], 0, ""
    for token in re.findall(r'"[^"]*"|[{}\[\],:]', text):
        if token in ("{", "["):
            depth += 1
        elif token in ("}", "]"):
            depth -= 1
        elif token.startswith('"') and depth == 1 and previous in ("{", ","):
            names.append(token.strip('"'))
        previous = token
    return names


def test_the_readme_answer_examples_name_every_field_the_routes_answer(pipe: Pipeline) -> None:
    # Given an email opted out, and an operator's replay and backfill
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    lookup = ok(call(pipe, "POST", "/v1/admin/lookup", {"type": "email", "value": EMAIL}))
    system = {"system": "salesforce"}
    replay = ok(call(pipe, "POST", "/v1/admin/systems/salesforce/replay", params=system), 202)
    system = {"system": "meta"}
    backfill = ok(call(pipe, "POST", "/v1/admin/systems/meta/backfill", params=system), 202)
    # Then README's examples show each answer's fields, in its order (review s18 newcomer F4,
    # F5: `retired` and `open_backfills` were missing)
    assert top_level_keys(readme_example('# 200 {"type":"email"')) == list(lookup)
    sketch = readme_example('# 202 {"request_id":"…","hold_id":null,"system":"salesforce"')
    assert top_level_keys(sketch) == list(replay)
    sketch = readme_example('# 202 {"request_id":"…","hold_id":null,"system":"meta"')
    assert top_level_keys(sketch) == list(backfill)
    # ... and so does the route table's row for the backfill
    row = readme_example("| `POST /v1/admin/systems/{system}/backfill")
    found = re.search(r"answers `(\{[^`]*\})`", row)
    assert found and top_level_keys(found.group(1)) == list(backfill)


def test_a_dlq_redrive_leaves_a_record_of_who_moved_how_many(pipe: Pipeline) -> None:
    # Given two dead letters in braze's DLQ
    dlq = pipe.queue_urls["braze"].removesuffix("-jobs") + "-dlq"
    for n in range(2):
        body = {"job_id": f"{RID}:braze", "request_id": RID, "system": "braze", "n": n}
        pipe.aws.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    # When an operator redrives braze's DLQ
    moved = ok(call(pipe, "POST", "/v1/admin/systems/braze/redrive", params={"system": "braze"}))
    # Then the answer names a record of it, which says who moved how many of whose letters
    event = detail(pipe, moved["request_id"])["event"]
    assert (event["event_type"], event["source"]) == ("redrive", "operator")
    assert event["evidence"] == {"acted_by": LOCAL_IAM_CALLER}
    assert event["operation"] == {"system": "braze", "dlq_moved": 2}  # a number, not "2"
    # ... and a redrive that moved nothing records nothing
    again = ok(call(pipe, "POST", "/v1/admin/systems/braze/redrive", params={"system": "braze"}))
    assert (again["moved"], again["request_id"]) == (0, None)


def test_an_import_records_who_imported_each_row(pipe: Pipeline) -> None:
    # When an operator imports a row
    row = {"external_id": "who-1", "received_at": "2026-03-02T10:00:00Z", "email": EMAIL}
    assert import_rows(pipe, [row])["stored"] == 1
    # Then its request's evidence names the signer beside the other tool's id
    (event,) = [i for i in pipe.items("REQ#") if i["sk"] == "EVENT"]
    imported = detail(pipe, event["request_id"])["event"]["evidence"]["imported"]
    assert (imported["external_id"], imported["imported_by"]) == ("who-1", LOCAL_IAM_CALLER)


def test_a_deny_and_the_admin_detail_read_the_request_strongly_consistent(
    pipe: Pipeline,
) -> None:
    # Given a captured opt-out, and every Query a fresh admin function makes, watched
    request_id = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    reads: list[Any] = []
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query" and params.get("TableName") == pipe.aws.table_name:
            reads.append(params.get("ConsistentRead"))

    events.register("before-parameter-build.dynamodb", note, unique_id="consistent-admin")
    try:
        pipe.admin = load_function("admin_api")
        # When an operator reads its detail and denies it
        ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}", params={"request_id": request_id}))
        assert deny(pipe, request_id)["statusCode"] == 200
    finally:
        events.unregister("before-parameter-build.dynamodb", unique_id="consistent-admin")
    # Then both read the request's partition strongly consistent: a receipt written a moment
    # ago is seen (moto always sees it; DynamoDB's default read may not); the deny twice, the
    # second after its write, for the jobs already under way (session 36)
    assert reads == [True, True, True]


def test_an_import_run_again_after_dying_between_its_writes_leaves_the_watch_its_reminders(
    pipe: Pipeline,
) -> None:
    # Given an import whose events were stored but whose reminders for the watch were refused
    rows = [{"external_id": f"again-{n}", "received_at": "2026-03-02T10:00:00Z",
             "email": f"again{n}@example.com"} for n in range(2)]  # fmt: skip

    def refuse_reminders(params: dict[str, Any], **_: Any) -> None:
        if any(r["PutRequest"]["Item"]["pk"] == {"S": "WATCH"}
               for r in params["RequestItems"][pipe.aws.table_name]):  # fmt: skip
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}},
                              "BatchWriteItem")  # fmt: skip

    with session_hooks("import-dies", lambda: None) as register:
        register("before-parameter-build.dynamodb.BatchWriteItem", refuse_reminders)
        pipe.admin = load_function("admin_api")
        with pytest.raises(ClientError):  # the function fails: API Gateway answers 500
            call(pipe, "POST", "/v1/admin/imports", {"rows": rows})
    assert not [i for i in pipe.items("WATCH") if str(i["sk"]).startswith("DUE#")]
    # When the operator runs the import again, as the README says (a new container)
    pipe.admin = load_function("admin_api")
    again = import_rows(pipe, rows)
    # Then both rows are duplicates, and the watch has a reminder for each request
    assert (again["stored"], again["duplicates"]) == (0, 2)
    reminded = {i["request_id"] for i in pipe.items("WATCH") if str(i["sk"]).startswith("DUE#")}
    events = {i["request_id"] for i in pipe.items("REQ#") if i["sk"] == "EVENT"}
    assert len(events) == 2 and reminded == events
