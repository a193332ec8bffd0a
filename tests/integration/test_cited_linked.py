"""Where `RESOLUTION.cited_linked` is recorded (review s29 cite R1): the identities a request did
not name whose marks it cited a job through. A job reached only through a link proves the
request only by those (review s28 p1 F1), so a missed one leaves the request re-opened with
nothing to free, citing the same job again. Each place that records them is tested here: a
mark lost to another resolver (`_replan`), an event of two clusters (`JobPlan.absorb`), a
re-open citing a new job through a link (`_reopen`); and a missing entry is repaired by the
next re-open that cites through it (`cite_more`). End to end, on test_shared_job_receipts'
pipeline and stand-in Google (`GoogleLike`)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from optout.store import delivery, keys
from optout.store.requests import cite_more, put_resolution
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_backfill import DEVICE, EMAIL, NO_FORM, resolution
from tests.integration.test_covering_proof import sweep_and_resolve
from tests.integration.test_shared_job_receipts import (
    GoogleLike,
    banner_citing_through_a_link,
    email_pk,
    google_proof,
    send,
)
from tests.support import iam
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

OPT_OUT = {"sale": True, "share": True, "targeted_advertising": True}


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def link(pipe: Pipeline, device: str, **identity: Any) -> None:
    """A logged-in visitor's banner: `device` linked to the token's identity, nothing chosen."""
    token = token_for(device_id=device, **identity)
    pipe.post("/v1/consent", {"device_id": device, "identity_token": token})


def backend_link(pipe: Pipeline, device: str, id_type: str, value: str) -> None:
    """The backend links `device` to a second identifier of its person (a second login with
    another account's token would be held: docs/decisions.md, "A second account on one
    browser is held")."""
    pair = {"a": {"type": "device_id", "value": device}, "b": {"type": id_type, "value": value}}
    pipe.post("/v1/identity-links", {"links": [pair]}, iam=True)


def banner_losing_the_mark_race(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> str:
    """A device linked to EMAIL opts out on the banner. Just before its resolver marks the email
    in flight for its own Google job, the person's webform opt-out naming the email resolves,
    and its job takes the mark: the banner request cites that job through the link (`_replan`).
    The banner request's id."""
    link(pipe, DEVICE, email=EMAIL)
    pipe.resolve()
    pipe.drain_all()
    banner = str(pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": OPT_OUT})["request_id"])
    records = pipe.event_records()
    original = delivery.mark_flight
    webform: list[str] = []

    def webform_first(table: Any, system: str, flight: Any, *args: Any, **kw: Any) -> bool:
        if system == "google_ads" and flight["pk"] == email_pk(EMAIL) and not webform:
            outside = iam.current_function.set(None)  # the stream read is not the resolver's
            webform.append(str(pipe.post("/v1/opt-out", {"email": EMAIL})["request_id"]))
            theirs = pipe.event_records()
            iam.current_function.reset(outside)
            assert pipe.resolve(theirs) == {"batchItemFailures": []}
        return bool(original(table, system, flight, *args, **kw))

    monkeypatch.setattr(delivery, "mark_flight", webform_first)
    assert pipe.resolve(records) == {"batchItemFailures": []}
    monkeypatch.setattr(delivery, "mark_flight", original)
    assert webform
    assert resolution(pipe, banner)["covered"]["google_ads"] == [f"{webform[0]}:google_ads"]
    return banner


def test_a_banner_request_losing_the_mark_to_another_job_records_the_linked_email(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a banner request that lost the race for the linked email's Google mark
    banner = banner_losing_the_mark_race(pipe, monkeypatch)
    # Then it recorded the email it cites the webform's job through
    assert resolution(pipe, banner)["cited_linked"] == [email_pk(EMAIL)]
    # ... so once that job sends the email, Google reads done for it, never re-opened
    send(pipe, GoogleLike(), pipe.drain("googleads"))
    google = google_proof(pipe, banner)
    assert (google.state, google.reopen) == ("done", False)
    assert sweep_and_resolve(pipe).reopened == []


def test_a_reopen_citing_the_same_job_again_records_a_linked_email_missed_first(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the same, its RESOLUTION without the linked email (a recording that broke: the
    # request is proven by the device alone, which the job does not carry)
    banner = banner_losing_the_mark_race(pipe, monkeypatch)
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name, UpdateExpression="REMOVE cited_linked",
        Key={"pk": {"S": keys.request_pk(banner)}, "sk": {"S": keys.RESOLUTION_SK}},
    )  # fmt: skip
    send(pipe, GoogleLike(), pipe.drain("googleads"))
    assert google_proof(pipe, banner).reopen
    # When the sweep re-opens it: it frees nothing (no identity it relied on was carried) and
    # cites the same job again, through the email
    assert sweep_and_resolve(pipe).reopened == [banner]
    # Then the email is recorded by that re-open (it wrote it only with a new job), the job is
    # its proof, and it is not re-opened at every checkpoint for good
    assert resolution(pipe, banner)["cited_linked"] == [email_pk(EMAIL)]
    google = google_proof(pipe, banner)
    assert (google.state, google.reopen) == ("done", False)
    assert sweep_and_resolve(pipe).reopened == []


def test_a_webform_naming_two_unlinked_people_records_the_linked_emails_of_both(
    pipe: Pipeline,
) -> None:
    # Given two people, each an email and a phone (or a second email) behind one device, and
    # each one's other email opted out, its Google job still in flight
    mine, yours, my_other, your_other = ("a.one@example.com", "+14155550123",
                                         "a.two@example.com", "b.two@example.com")  # fmt: skip
    link(pipe, "dev-cite-aaaaaaaaaa", email=mine)
    backend_link(pipe, "dev-cite-aaaaaaaaaa", "email", my_other)
    link(pipe, "dev-cite-bbbbbbbbbb", phone=yours)
    backend_link(pipe, "dev-cite-bbbbbbbbbb", "email", your_other)
    pipe.resolve()
    for other in (my_other, your_other):
        pipe.post("/v1/opt-out", {"email": other})
    pipe.resolve()
    pipe.drain_all()
    # When one webform names the first one's email and the second one's phone (two clusters
    # in one event: one plan per system, the second absorbed into the first)
    both = str(pipe.post("/v1/opt-out", {"email": mine, "phone": yours})["request_id"])
    pipe.resolve()
    # Then the other email of each is recorded as an identity its citations relied on
    assert {email_pk(my_other), email_pk(your_other)} <= set(resolution(pipe, both)["cited_linked"])


def test_a_reopen_citing_a_new_job_through_a_new_link_records_it(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a banner request citing a backfill Google job through the visitor's email, which
    # Google has no form of: the job sends another person's email only, so it is no proof
    _, message, again = banner_citing_through_a_link(pipe, monkeypatch, tmp_path,
                                                     NO_FORM, EMAIL)  # fmt: skip
    send(pipe, GoogleLike(), [message])
    assert google_proof(pipe, again).reopen
    # ... and the backend then links the visitor's second email to the device: the link's
    # event makes a Google job for it, still in flight
    second = "cite.second@example.com"
    backend_link(pipe, DEVICE, "email", second)
    pipe.resolve()
    (job,) = pipe.drain("googleads")
    pipe.drain_all()
    # When the sweep re-opens the request: it cites that new job, through the second email
    assert sweep_and_resolve(pipe).reopened == [again]
    assert job["job_id"] in resolution(pipe, again)["covered"]["google_ads"]
    # Then the second email is added to what its citations relied on
    assert email_pk(second) in resolution(pipe, again)["cited_linked"]
    # ... so once that job sends it, the request is proven and never re-opened again
    send(pipe, GoogleLike(), [job])
    assert not google_proof(pipe, again).reopen
    assert sweep_and_resolve(pipe).reopened == []


def test_two_reopens_at_once_each_keep_the_linked_identities_they_add(aws: Aws) -> None:
    """review s29 cite R2: `cite_more` appends to `cited_linked`, never SETs what it read."""
    table = Table(aws.dynamodb, aws.table_name)
    first = {"pk": "REQ#r2", "sk": keys.RESOLUTION_SK, "proof_rule": 3,
             "covered": {"crm": ["e1:crm"]}, "cited_linked": ["ID#email#a"]}  # fmt: skip
    put_resolution(table, first)
    # When two re-opens both read the record above, then each writes what it reached
    cite_more(table, first, {"crm": ["e2:crm"]}, linked={"ID#email#b"})
    cite_more(table, first, {"crm": ["e3:crm"]}, linked={"ID#email#c"})
    (stored,) = [i for i in aws.items() if i["sk"] == keys.RESOLUTION_SK]
    # Then the list holds both (the second no longer overwrote the first's)
    assert set(stored["cited_linked"]) == {"ID#email#a", "ID#email#b", "ID#email#c"}


def test_a_reopen_citing_jobs_for_a_request_whose_first_resolution_cited_none(aws: Aws) -> None:
    """A first resolution that cited no job stores no `covered` map; `SET covered.#s` on a
    missing map is refused by DynamoDB ("document path invalid"), as by moto: a re-open
    (after a quiet period's `not_asked`, say) citing jobs now must still write them."""
    table = Table(aws.dynamodb, aws.table_name)
    quiet = {"crm": [{"job_id": "q:crm", "at": "2026-12-03T00:00:00.000Z"}]}
    first = {"pk": "REQ#r3", "sk": keys.RESOLUTION_SK, "proof_rule": 3, "not_asked": quiet}
    put_resolution(table, first)
    # When its re-open cites a job through a linked email
    cite_more(table, first, {"crm": ["e1:crm"]}, linked={"ID#email#a"})
    # Then the citation and what it relied on are stored
    (stored,) = [i for i in aws.items() if i["sk"] == keys.RESOLUTION_SK]
    assert stored["covered"] == {"crm": ["e1:crm"]}
    assert stored["cited_linked"] == ["ID#email#a"]


def test_two_reopens_both_writing_a_missing_covered_map_keep_each_others_systems(aws: Aws) -> None:
    """Two re-opens of one request read a RESOLUTION with no `covered` map; the first writes
    it whole, the second must not replace it (review s29 final F2): its write is conditional on
    the map's absence and, refused, goes by path into the map the first wrote."""
    table = Table(aws.dynamodb, aws.table_name)
    quiet = {"crm": [{"job_id": "q:crm", "at": "2026-12-03T00:00:00.000Z"}]}
    first = {"pk": "REQ#r4", "sk": keys.RESOLUTION_SK, "proof_rule": 3, "not_asked": quiet}
    put_resolution(table, first)
    # When both write what they cite, from the same read
    cite_more(table, first, {"crm": ["e1:crm"]})
    cite_more(table, first, {"braze": ["e2:braze"]})
    # Then the stored map holds both systems' citations
    (stored,) = [i for i in aws.items() if i["sk"] == keys.RESOLUTION_SK]
    assert stored["covered"] == {"crm": ["e1:crm"], "braze": ["e2:braze"]}
