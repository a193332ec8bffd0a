"""A backfill step's job carrying several people, one left unsent (review s28 p1, after the
P1 merge): the views of one request list no other person's keyed identity (F2), a re-open
frees only its own person's marks again (F3), a request reaching the job only through a link
is proven by its own person's identity alone (F1: `RESOLUTION.cited_linked`), and its re-open
frees the linked identity's mark too (review s28 last L4). End to end on test_backfill.py's
pipeline and stand-in vendor (`NoFormBeside`: Google sends EMAIL, has no form of NO_FORM)."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient

from optout import identifiers as ids
from optout.admin import AdminService
from optout.connectors.base import Outcome
from optout.delivery import service as worker_module
from optout.delivery.service import DeliveryService, Received
from optout.delivery.settings import WorkerSettings
from optout.ops.export import ExportService, request_records
from optout.settings import LOCAL_HASH_KEY
from optout.status import covering_keys, proofs, quiet_keys
from optout.store import keys
from optout.store.batch import batch_get
from optout.store.requests import cite_more, put_resolution
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws
from tests.integration.test_backfill import (
    DEVICE,
    EMAIL,
    FULL,
    NO_FORM,
    NoFormBeside,
    backfill,
    deploy,
    left_out,
    opted_out_before,
    resolution,
    run_chain,
)
from tests.integration.test_covering_proof import sweep_and_resolve
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


class GoogleLike(NoFormBeside):
    """A job carrying NO_FORM alone: what Connector.deliver answers (no vendor call)."""

    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        alone = [j for j in jobs if {i.value for i in j.identifiers} == {NO_FORM}]
        rest = [j for j in jobs if j not in alone]
        self.received.extend(alone)
        return [Outcome(j.job_id, "no_record", note="email not sent: no Google form",
                        identifier_types_rejected=("email",),
                        identifier_types_unformed=("email",)) for j in alone
                ] + super().deliver(rest)  # fmt: skip


def worker(pipe: Pipeline, vendor: Any) -> DeliveryService:
    return DeliveryService(
        Table(pipe.aws.dynamodb, pipe.aws.table_name), load_systems(FULL),
        WorkerSettings(table_name=pipe.aws.table_name), lambda _system: vendor,
    )  # fmt: skip


def send(pipe: Pipeline, vendor: Any, bodies: list[dict[str, Any]]) -> None:
    received = [Received(f"m{n}", json.dumps(b), 1) for n, b in enumerate(bodies)]
    worker(pipe, vendor).deliver(received, lambda message, delay: None)


def google_job(pipe: Pipeline, request_id: str) -> dict[str, Any]:
    (job,) = [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == "JOB#google_ads"]
    return job


def loaded(pipe: Pipeline, request_id: str) -> tuple[list[Any], dict[Any, Any]]:
    """A request's items and the jobs it cites, as the views read them."""
    items = pipe.items(keys.request_pk(request_id))
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    return items, batch_get(table, covering_keys(items) + quiet_keys(items), consistent=True)


def backfilled(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Any, Any]:
    opted_out_before(pipe, monkeypatch, tmp_path, "google_ads", (NO_FORM, EMAIL), True)
    started = backfill(pipe, "google_ads")
    (record,) = run_chain(pipe, started["request_id"])
    (message,) = pipe.drain("googleads")
    return record, message


def test_a_request_citing_the_backfill_job_shows_no_other_persons_keyed_identity(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    record, message = backfilled(pipe, monkeypatch, tmp_path)
    (stranger,) = [str(i["key"]) for i in google_job(pipe, record["job_request_id"])["identifiers"]
                   if i.get("value") == NO_FORM]  # fmt: skip
    send(pipe, GoogleLike(), [message])
    job = google_job(pipe, record["job_request_id"])
    assert job["receipt"]["identities_unformed"] == [keys.identity_pk("email", stranger)]
    # When the person Google was sent opts out again: their request cites the backfill job
    again = pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]
    pipe.resolve()
    pipe.drain_all()
    assert (resolution(pipe, again).get("covered") or {}).get("google_ads")
    items, covering = loaded(pipe, again)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    secret = LOCAL_HASH_KEY.encode()
    # Then this request's export, its operator record and the person's §7101 identity export
    # name no other person's identity (review s28 p1 F2): a job record gives the types it
    # carried only, and so does the receipt beside it
    exported = json.dumps(request_records(again, items, covering), default=str)
    detail = json.dumps(AdminService(table, secret).request_detail(again), default=str)
    identity = json.dumps(ExportService(table, secret).identity("email", EMAIL, None), default=str)
    assert stranger in json.dumps(job)  # (the stored receipt keeps it: the frees read it)
    assert "earlier_receipt" in exported and "satisfied_by" in detail
    for view in (exported, detail, identity):
        assert stranger not in view
    assert '"identities_not_shown": 1' in exported  # counted, not named
    # ... while the backfill step's own record keeps the whole list
    step = AdminService(table, secret).request_detail(record["job_request_id"])
    assert stranger in json.dumps(step, default=str)


MANY = tuple(f"+n{n}@gmail.com" for n in range(20))  # 20 people Google has no form of


class ManyUnformed(NoFormBeside):
    def deliver(self, jobs: list[Any]) -> list[Outcome]:
        self.received.extend(jobs)
        return [Outcome(j.job_id, "done", 200, None, ("email",),
                        unformed_at=tuple(n for n, i in enumerate(j.identifiers)
                                          if i.value.startswith("+"))) for j in jobs]  # fmt: skip


def test_a_reopen_citing_a_backfill_job_frees_only_this_persons_marks(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # Given a backfill job carrying 20 people Google has no form of and one it takes
    opted_out_before(pipe, monkeypatch, tmp_path, "google_ads", (*MANY, EMAIL), True)
    started = backfill(pipe, "google_ads")
    run_chain(pipe, started["request_id"])
    (message,) = pipe.drain("googleads")
    later: list[str] = []
    original = worker_module.record_delivered  # type: ignore[attr-defined]

    def receipt_written_then(*args: Any, **kw: Any) -> Any:
        if not later:  # one of them opts out again between the receipt and the frees
            later.append(pipe.post("/v1/opt-out", {"email": MANY[0]})["request_id"])
            pipe.resolve()
        return original(*args, **kw)

    monkeypatch.setattr(worker_module, "record_delivered", receipt_written_then)
    send(pipe, ManyUnformed(), [message])
    monkeypatch.setattr(worker_module, "record_delivered", original)
    (request_id,) = later
    assert (resolution(pipe, request_id).get("covered") or {}).get("google_ads")
    # When the sweep re-opens it, count the mark writes its re-open makes
    real = BaseClient._make_api_call  # type: ignore[attr-defined]
    calls: list[str] = []

    def counted(self: Any, name: str, params: dict[str, Any]) -> Any:
        if name == "UpdateItem" and str(params["Key"]["sk"]["S"]).startswith("DELIVERY#"):
            calls.append(str(params["Key"]["pk"]["S"]))
        return real(self, name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counted)
    assert sweep_and_resolve(pipe).reopened == [request_id]
    # Then it writes this person's mark only, not the 19 others' again (review s28 p1 F3:
    # their worker freed them), and the request relies on the backfill job's answer for it
    # (the quiet period, review s28 p1 F4: a job of its own could only answer the same)
    (email,) = [i for i in pipe.items(keys.request_pk(request_id)) if i["sk"] == keys.EVENT_SK]
    assert set(calls) <= {keys.identity_pk("email", email["identifiers"][0]["key"])}, calls
    assert (resolution(pipe, request_id).get("not_asked") or {}).get("google_ads")
    assert google_proof(pipe, request_id).settled


def banner_citing_through_a_link(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mine: str, other: str
) -> tuple[Any, Any, str]:
    """A device linked to the email `mine` (a logged-in visitor), a backfill Google job carrying
    `mine` and another person's `other`, and, while that job is in flight, a banner request of
    the device citing it through the link: (the backfill's record, its message, request id)."""
    left_out(pipe, monkeypatch, tmp_path, "google_ads")
    pipe.post("/v1/opt-out", {"email": mine})
    pipe.post("/v1/opt-out", {"email": other})
    linked = token_for(email=mine, device_id=DEVICE)
    pipe.post("/v1/consent", {"device_id": DEVICE, "identity_token": linked})
    pipe.resolve()
    pipe.drain_all()
    deploy(pipe, monkeypatch, FULL)
    (record,) = run_chain(pipe, backfill(pipe, "google_ads")["request_id"])
    (message,) = pipe.drain("googleads")
    opt_out = {"sale": True, "share": True, "targeted_advertising": True}
    again = str(pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": opt_out})["request_id"])
    pipe.resolve()
    pipe.drain_all()
    assert (resolution(pipe, again).get("covered") or {}).get("google_ads")
    return record, message, again


def key_of(pipe: Pipeline, request_id: str, value: str) -> str:
    """The keyed identity (`ID#email#<key>`) a request's Google job carries for `value`."""
    (key,) = [str(i["key"]) for i in google_job(pipe, request_id)["identifiers"]
              if i.get("value") == value]  # fmt: skip
    return keys.identity_pk("email", key)


def email_pk(value: str) -> str:
    """The keyed identity of an email (a job's values are gone once it is answered)."""
    key = ids.lookup_key(LOCAL_HASH_KEY.encode(), ids.normalise("email", value))
    return keys.identity_pk("email", key)


def google_proof(pipe: Pipeline, request_id: str) -> Any:
    items, covering = loaded(pipe, request_id)
    return next(p for p in proofs(items, covering) if p.system == "google_ads")


def test_a_banner_request_reaching_the_job_through_a_link_is_not_proven_by_the_strangers_email(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a logged-in visitor's banner request citing a backfill Google job through the link
    # to the visitor's email (which Google has no form of); the job also carries a stranger's
    record, message, again = banner_citing_through_a_link(pipe, monkeypatch, tmp_path,
                                                          NO_FORM, EMAIL)  # fmt: skip
    visitor = key_of(pipe, record["job_request_id"], NO_FORM)
    # (the RESOLUTION records which identity the citation relied on, in its one write)
    assert resolution(pipe, again)["cited_linked"] == [visitor]
    # When Google sends the stranger's email and not the visitor's
    send(pipe, GoogleLike(), [message])
    # Then the job is no proof for this request (review s28 p1 F1: it read Google done, and
    # §7102 and the export counted it complied with): Google reads processing until the
    # sweep re-opens the request, which then relies on that job's answer for the visitor's
    # email, never sent (the quiet period: review s28 p1 F4), as the operator views say
    google = google_proof(pipe, again)
    assert (google.state, google.reopen) == ("processing", True)
    assert sweep_and_resolve(pipe).reopened == [again]
    (quiet,) = resolution(pipe, again)["not_asked"]["google_ads"]
    assert quiet["job_id"] == f"{record['job_request_id']}:google_ads"
    assert google_proof(pipe, again).settled
    assert sweep_and_resolve(pipe).reopened == []
    # And no view of the request shows the recorded identities (a derivation can reach the
    # identities of someone the requester named)
    items, covering = loaded(pipe, again)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    detail = AdminService(table, LOCAL_HASH_KEY.encode()).request_detail(again)
    (exported,) = [r for r in request_records(again, items, covering)
                   if r["record"] == "resolution"]  # fmt: skip
    for view in (detail["resolution"], exported):
        assert "cited_linked" not in view and visitor not in json.dumps(view, default=str)


def test_a_banner_request_reaching_the_job_through_a_link_is_proven_by_its_persons_email(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given the same, the visitor's email one Google takes and the stranger's one it has not
    _, message, again = banner_citing_through_a_link(pipe, monkeypatch, tmp_path, EMAIL, NO_FORM)
    # When Google sends the visitor's email and not the stranger's
    send(pipe, GoogleLike(), [message])
    # Then the job is this request's proof: done, never re-opened (p1fix28's interim rule, "no
    # proof when anything was left unsent", held such requests processing for good)
    google = google_proof(pipe, again)
    assert (google.state, google.reopen) == ("done", False)
    assert sweep_and_resolve(pipe).reopened == []


def test_a_reopen_frees_the_mark_of_a_linked_identity_the_citation_relied_on(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given one person with two emails Google has no form of (a device linked to both), and a
    # stranger; a backfill Google job carried all three and sent the stranger's only
    first, second = "+l4first@gmail.com", "+l4second@gmail.com"
    left_out(pipe, monkeypatch, tmp_path, "google_ads")
    for email in (first, second, EMAIL):
        pipe.post("/v1/opt-out", {"email": email})
    linked = token_for(email=first, device_id=DEVICE)
    pipe.post("/v1/consent", {"device_id": DEVICE, "identity_token": linked})
    # the second by the backend (a second login with another email would be held as a second
    # account: docs/decisions.md, "A second account on one browser is held")
    pair = {"a": {"type": "device_id", "value": DEVICE}, "b": {"type": "email", "value": second}}
    pipe.post("/v1/identity-links", {"links": [pair]}, iam=True)
    pipe.resolve()
    pipe.drain_all()
    deploy(pipe, monkeypatch, FULL)
    (record,) = run_chain(pipe, backfill(pipe, "google_ads")["request_id"])
    (message,) = pipe.drain("googleads")
    job_id = f"{record['job_request_id']}:google_ads"
    # ... and its worker's frees never ran (it died after the receipt)
    original = worker_module.record_delivered  # type: ignore[attr-defined]
    monkeypatch.setattr(worker_module, "record_delivered", lambda *args, **kw: False)
    send(pipe, ManyUnformed(), [message])
    monkeypatch.setattr(worker_module, "record_delivered", original)
    # When the person opts out naming the first email: the request cites that job for both
    again = str(pipe.post("/v1/opt-out", {"email": first})["request_id"])
    pipe.resolve()
    pipe.drain_all()
    named_pk, linked_pk = (email_pk(first), email_pk(second))
    assert linked_pk in resolution(pipe, again)["cited_linked"]
    assert sweep_and_resolve(pipe).reopened == [again]
    # Then the re-open freed the linked email's mark as well as the named one's (review s28
    # last L4: it kept naming the job in flight, was cited again and never re-sent), each
    # stamped with that job's answer (review s28 p1 F4), which the request now relies on
    for pk in (named_pk, linked_pk):
        (mark,) = [i for i in pipe.items(pk) if i["sk"] == "DELIVERY#google_ads"]
        assert not mark.get("inflight") and mark["no_record_job"] == job_id, pk
    assert [e["job_id"] for e in resolution(pipe, again)["not_asked"]["google_ads"]] == [job_id]
    assert google_proof(pipe, again).settled


def test_a_link_only_request_still_sees_that_the_cited_job_left_values_unsent(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a device linked to an email Google has no form of, and a backfill job carrying that
    # email beside another person's, which a banner request of the device cites through the link
    record, message, again = banner_citing_through_a_link(pipe, monkeypatch, tmp_path,
                                                          NO_FORM, EMAIL)  # fmt: skip
    # When Google sends the other person's email only
    send(pipe, GoogleLike(), [message])
    assert len(google_job(pipe, record["job_request_id"])["receipt"]["identities_unformed"]) == 1
    # Then the request's export and operator record still say a value went unsent (review s28
    # last L1: the person's own, reached through a link, was hidden with the others'), by count
    items, covering = loaded(pipe, again)
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    exported = json.dumps(request_records(again, items, covering), default=str)
    detail = json.dumps(AdminService(table, LOCAL_HASH_KEY.encode()).request_detail(again),
                        default=str)  # fmt: skip
    assert '"identities_not_shown": 1' in exported
    assert '"identities_not_shown": 1' in detail


def test_a_reopen_adds_the_linked_identities_its_citations_relied_on(aws: Aws) -> None:
    # Given a RESOLUTION that cited one job through a linked identity
    table = Table(aws.dynamodb, aws.table_name)
    first = {"pk": "REQ#r1", "sk": keys.RESOLUTION_SK, "proof_rule": 3,
             "covered": {"crm": ["e1:crm"]}, "cited_linked": ["ID#email#a"]}  # fmt: skip
    put_resolution(table, first)
    writes: list[str] = []

    def stored() -> dict[str, Any]:
        (found,) = [i for i in aws.items() if i["sk"] == keys.RESOLUTION_SK]
        return found

    def cite(covered: dict[str, list[str]], linked: set[str]) -> None:
        before = stored()
        cite_more(table, before, covered, linked=linked)
        writes.append("same" if stored() == before else "written")

    # When a re-open cites nothing new and reaches nothing new: nothing is written
    cite({"crm": ["e1:crm"]}, {"ID#email#a"})
    # When it cites the same job again through an identity the first write missed: appended
    # (review s29 cite R1: else the request is re-opened at every checkpoint for good)
    cite({"crm": ["e1:crm"]}, {"ID#email#a", "ID#email#b"})
    assert (stored()["covered"]["crm"], stored()["cited_linked"]) == (
        ["e1:crm"], ["ID#email#a", "ID#email#b"])  # fmt: skip
    # When it cites a new job through another one: appended, the first ones kept
    cite({"crm": ["e2:crm"]}, {"ID#email#a", "ID#email#c"})
    assert stored()["covered"]["crm"] == ["e1:crm", "e2:crm"]
    assert stored()["cited_linked"] == ["ID#email#a", "ID#email#b", "ID#email#c"]
    assert writes == ["same", "written", "written"]
    assert stored()["proof_rule"] == 3  # never raised or lowered by a re-open
