"""A request's aggregate status (optout.status.aggregate)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.status import (
    REPLAY_CAP,
    aggregate,
    covering_keys,
    failures_for,
    needs_reopen,
    not_asked,
    own_identities,
    own_retirement_keys,
    proofs,
    quiet_keys,
    receipt_for,
)
from optout.store import delivery
from optout.store.keys import retired_key
from optout.store.retired import last_retired_at, made_at_or_before, retired_at_for
from optout.timestamps import iso

RID = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
EVENT = {
    "pk": f"REQ#{RID}",
    "sk": "EVENT",
    "received_at": "2026-11-29T03:12:00.000Z",
    "deadline": "2026-12-18",
}
RESOLUTION = {"pk": f"REQ#{RID}", "sk": "RESOLUTION", "resolved_at": "2026-11-29T03:12:01.000Z",
              "proof_rule": 2}  # fmt: skip


def _job(system: str, status: str, completed_at: str | None = None) -> dict[str, Any]:
    job: dict[str, Any] = {"pk": f"REQ#{RID}", "sk": f"JOB#{system}", "status": status}
    if completed_at:
        job["completed_at"] = completed_at
    return job


def test_no_event_means_no_request() -> None:
    assert aggregate(RID, []) is None
    assert aggregate(RID, [RESOLUTION, _job("crm", "done")]) is None


def test_event_without_resolution_is_received() -> None:
    status = aggregate(RID, [EVENT])
    assert status is not None
    assert status.model_dump() == {
        "request_id": RID,
        "status": "received",
        "received_at": "2026-11-29T03:12:00.000Z",
        "deadline": "2026-12-18",
        "completed_at": None,
        "systems_total": 0,
        "systems_done": 0,
        "systems_failed": 0,
    }


def test_the_deadlines_calendar_is_read_as_stored_and_never_dumped() -> None:
    # review s18 diff C1, C3: a geolocated request's stored calendar (Hawaii's, 08:30 UTC on
    # a weekday) reaches the page's reader only, not the answer; an old request has none
    geolocated = {"jurisdiction": "US-HI", "jurisdiction_from": "geolocation"}
    new = EVENT | {"event_type": "opt_out", "evidence": geolocated,
                   "response": {"deadline_jurisdiction": "US-HI"}}  # fmt: skip
    status = aggregate(RID, [new])
    assert status is not None and "deadline_jurisdiction" not in status.model_dump()
    assert status.page_calendar() == {
        "deadline_jurisdiction": "US-HI",
        "jurisdiction_stated": False,
    }
    # stored before 2026-12-01, geolocated in New York: counted in no calendar we can name
    ny = {"jurisdiction": "US-NY", "jurisdiction_from": "geolocation"}
    old = aggregate(RID, [EVENT | {"event_type": "opt_out", "evidence": ny, "response": {}}])
    assert old is not None and "deadline_jurisdiction" not in old.model_dump()
    assert old.page_calendar()["deadline_jurisdiction"] is None


def test_resolved_with_pending_jobs_is_processing() -> None:
    items = [EVENT, RESOLUTION, _job("crm", "done", "2026-11-29T04:00:00.000Z"),
             _job("ads", "pending"), _job("cdp", "failed")]  # fmt: skip
    status = aggregate(RID, items)
    assert status is not None
    assert (status.status, status.systems_total, status.systems_done, status.systems_failed) == (
        "processing", 3, 1, 1,
    )  # fmt: skip
    assert status.completed_at is None


def test_all_jobs_done_or_no_record_is_completed_at_the_latest_receipt() -> None:
    items = [EVENT, RESOLUTION, _job("crm", "done", "2026-11-29T05:00:00.000Z"),
             _job("ads", "no_record", "2026-11-29T06:00:00.000Z")]  # fmt: skip
    status = aggregate(RID, items)
    assert status is not None
    assert (status.status, status.systems_done, status.systems_failed) == ("completed", 2, 0)
    assert status.completed_at == "2026-11-29T06:00:00.000Z"


def test_any_failed_job_once_all_are_final_is_failed() -> None:
    items = [EVENT, RESOLUTION, _job("crm", "done", "2026-11-29T05:00:00.000Z"),
             _job("ads", "failed")]  # fmt: skip
    status = aggregate(RID, items)
    assert status is not None
    assert (status.status, status.systems_total, status.systems_done, status.systems_failed) == (
        "failed", 2, 1, 1,
    )  # fmt: skip
    assert status.completed_at is None


def test_resolved_with_no_systems_to_notify_is_completed_at_resolution() -> None:
    status = aggregate(RID, [EVENT, RESOLUTION])
    assert status is not None
    assert status.status == "completed"
    assert status.completed_at == "2026-11-29T03:12:01.000Z"
    assert status.systems_total == 0


EARLIER = "0c1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
CITED = (f"REQ#{EARLIER}", "JOB#crm")


def _cited(status: str, sent: tuple[str, ...] = ()) -> dict[str, Any]:
    """An earlier request's CRM job for an email and a customer id."""
    return {"pk": CITED[0], "sk": CITED[1], "job_id": f"{EARLIER}:crm", "request_id": EARLIER,
            "system": "crm", "status": status, "completed_at": "2026-11-29T03:13:00.000Z",
            "identifiers": [{"type": "email", "key": "e1"}, {"type": "customer_id", "key": "c1"}],
            "receipt": {"identifier_types_sent": list(sent)}}  # fmt: skip


def _naming_customer_id(*own: dict[str, Any]) -> list[dict[str, Any]]:
    event = {**EVENT, "identifiers": [{"type": "customer_id", "key": "c1", "value": "x"}]}
    resolution = {**RESOLUTION, "covered": {"crm": [f"{EARLIER}:crm"]}}
    return [event, resolution, *own]


def test_a_cited_job_proves_only_a_type_the_request_relied_on_that_it_sent() -> None:
    # Given a request naming a customer id, citing a CRM job that carried it and an email
    cases = {
        ("done", ("email", "customer_id")): "done",  # sent the customer id: proof
        ("done", ()): "done",  # a receipt that does not say: taken at its word
        ("done", ("email",)): "processing",  # no record of the customer id: no proof
        ("no_record", ()): "processing",  # a receipt for its own request only
        ("pending", ()): "processing",
        ("failed", ()): "failed",  # the replay of that job re-sends it
    }
    for (status, sent), expected in cases.items():
        # When its systems are read
        (crm,) = proofs(_naming_customer_id(), {CITED: _cited(status, sent)})
        # Then the cited job decides the state only as proof for the customer id
        assert crm.state == expected, (status, sent)
        assert crm.reopen == (expected == "processing" and status != "pending")


def test_a_cited_job_that_proved_nothing_leaves_the_requests_own_job_to_decide() -> None:
    # Given a request with its own CRM job, also citing a job that ended no_record
    for own, expected in (("done", "completed"), ("pending", "processing")):
        items = _naming_customer_id(_job("crm", own, "2026-11-29T04:00:00.000Z"))
        # When its status is read
        status = aggregate(RID, items, {CITED: _cited("no_record")})
        # Then its own job decides, and the cited one neither completes nor holds it back
        assert status is not None and status.status == expected
        (crm,) = proofs(items, {CITED: _cited("no_record")})
        assert not crm.reopen


@pytest.mark.parametrize("named", ["identities_unformed", "identities_not_sent"])
def test_a_shared_job_that_never_sent_this_persons_email_is_no_proof_of_it(named: str) -> None:
    # Given a request naming an email, that cited a backfill step's job carrying it and another
    # person's email (review s28 P1); the job sent the other one (no form of this one, or the
    # vendor's answer left it out): the email type reads sent, and the receipt names the
    # identity never sent, by its keyed hash
    event = {**EVENT, "identifiers": [{"type": "email", "key": "e1", "value": "x"}]}
    resolution = {**RESOLUTION, "covered": {"crm": [f"{EARLIER}:crm"]}}
    shared = {
        **_cited("done", ("email",)),
        "identifiers": [{"type": "email", "key": "e1"}, {"type": "email", "key": "e2"}],
    }
    unsent = {**shared, "receipt": {**shared["receipt"], named: ["ID#email#e1"]}}
    # When its status is read
    (proof,) = proofs([event, resolution], {CITED: shared})
    (fixed,) = proofs([event, resolution], {CITED: unsent})
    # Then a receipt that does not name it (written before) is proof, as before; one that
    # does is none: the system needs a job of this request's own (re-opened)
    assert (proof.state, proof.reopen) == ("done", False)
    assert (fixed.state, fixed.reopen, fixed.not_taken) == ("processing", True, frozenset())
    # And a request naming the email that was sent still reads that job as its proof
    other = {**event, "identifiers": [{"type": "email", "key": "e2", "value": "y"}]}
    (sent,) = proofs([other, resolution], {CITED: unsent})
    assert (sent.state, sent.reopen, sent.not_taken) == ("done", False, frozenset())


@pytest.mark.parametrize("named", ["identities_unformed", "identities_not_sent"])
def test_a_request_reaching_a_shared_job_through_a_link_is_proven_by_its_persons_identity_only(
    named: str,
) -> None:
    # Given a request naming a phone (a type the CRM does not take), linked to its person's
    # email e1; a backfill step's CRM job carried e1 and a stranger's e2, and the request cited
    # it through e1's mark (`cited_linked`, proof rule 3; review s28 p1 F1)
    event = {**EVENT, "identifiers": [{"type": "phone", "key": "p1", "value": "x"}]}
    resolution = {**RESOLUTION, "covered": {"crm": [f"{EARLIER}:crm"]}, "proof_rule": 3,
                  "cited_linked": ["ID#email#e1"]}  # fmt: skip
    both = [{"type": "email", "key": "e1"}, {"type": "email", "key": "e2"}]
    shared = {**_cited("done", ("email",)), "identifiers": both}

    def left(pk: str) -> dict[str, Any]:
        return {**shared, "receipt": {**shared["receipt"], named: [pk]}}

    # When the vendor left the person's e1 unsent and sent the stranger's e2
    (proof,) = proofs([event, resolution], {CITED: left("ID#email#e1")})
    # Then the job proves nothing for this person: the request needs a job of its own
    assert (proof.state, proof.reopen) == ("processing", True)
    # And when it sent e1 and left the stranger's e2 unsent, it is this person's proof (not
    # held open for another person's answer: the interim rule of p1fix28, reverted)
    (sent,) = proofs([event, resolution], {CITED: left("ID#email#e2")})
    assert (sent.state, sent.reopen) == ("done", False)
    # And a RESOLUTION made before the field (proof rule 2) reads as it was answered: any
    # identity the job carried proves it (docs/decisions.md)
    before = {k: v for k, v in resolution.items() if k != "cited_linked"} | {"proof_rule": 2}
    (old,) = proofs([event, before], {CITED: left("ID#email#e1")})
    assert (old.state, old.reopen) == ("done", False)
    # And under rule 3 a job carrying none of the identities relied on proves nothing
    (none,) = proofs([event, {**resolution, "cited_linked": ["ID#email#e9"]}], {CITED: shared})
    assert (none.state, none.reopen) == ("processing", True)


def test_a_receipt_shown_for_one_request_lists_only_its_own_identities() -> None:
    # Given a backfill step's receipt naming three people's emails never sent (review s28 p1 F2)
    receipt = {"http_status": 200, "identifier_types_sent": ["email"],
               "identities_unformed": ["ID#email#e1", "ID#email#e2"],
               "identities_not_sent": ["ID#email#e3"]}  # fmt: skip
    job = {**_cited("done", ("email",)), "receipt": receipt,
           "failures": [{"receipt": receipt, "failed_at": "2026-11-29T03:00:00.000Z"}]}  # fmt: skip
    event = {**EVENT, "identifiers": [{"type": "email", "key": "e2", "value": "x"}]}
    own = own_identities([event, RESOLUTION, _job("crm", "done", "2026-11-29T04:00:00.000Z")])
    # When a view of the request whose event named e2 shows it
    shown = receipt_for(receipt, own)
    # Then it keeps e2's entry alone, leaves out a list with none of its own, and counts the
    # entries it left out (review s28 last L1)
    assert shown == {"http_status": 200, "identifier_types_sent": ["email"],
                     "identities_unformed": ["ID#email#e2"], "identities_not_shown": 2}  # fmt: skip
    assert failures_for(job, own)[0]["receipt"] == shown
    assert receipt_for(receipt, set()) == {"http_status": 200, "identifier_types_sent": ["email"],
                                           "identities_not_shown": 3}  # fmt: skip
    assert receipt_for({"http_status": 200}, own) == {"http_status": 200}


# -- a retired system (optout retire; review s13 config 3) -----------------------------------

RETIRED_AT = "2026-11-30T10:00:00.000Z"


def _retirement(system: str) -> dict[tuple[str, str], dict[str, Any]]:
    item = {"pk": "RETIRED", "sk": system, "retired_at": RETIRED_AT, "reason": "contract ended"}
    return {("RETIRED", system): item}


def _made(job: dict[str, Any], created_at: str) -> dict[str, Any]:
    return job | {"created_at": created_at}


def test_a_retired_systems_open_jobs_count_neither_done_nor_failed() -> None:
    items = [EVENT, RESOLUTION, _job("crm", "done", "2026-11-29T04:00:00.000Z"),
             _made(_job("ads", "pending"), "2026-11-29T03:12:01.000Z"),
             _made(_job("cdp", "failed"), "2026-11-29T03:12:01.000Z")]  # fmt: skip
    covering = _retirement("ads") | _retirement("cdp")
    status = aggregate(RID, items, covering)
    assert status is not None
    assert (status.status, status.systems_total, status.systems_done, status.systems_failed) == (
        "completed", 1, 1, 0,
    )  # fmt: skip
    assert status.completed_at == RETIRED_AT  # settled by the later retirement
    states = {p.system: (p.state, p.counted, p.retired) for p in proofs(items, covering)}
    assert states["ads"] == states["cdp"] == ("retired", False, True)
    assert states["crm"] == ("done", True, False)


def test_a_linked_only_systems_retirement_does_not_date_the_public_completion() -> None:
    # Given crm (named) done at 04:00 and ads, reached only through a linked identifier, whose
    # pending job was retired the next day
    items = [EVENT, RESOLUTION | {"linked_only": ["ads"]},
             _job("crm", "done", "2026-11-29T04:00:00.000Z"),
             _made(_job("ads", "pending"), "2026-11-29T03:12:01.000Z")]  # fmt: skip
    covering = _retirement("ads")
    # Then the public answer, which shows crm only, completed when crm answered (review s22
    # proof P6: it read the retirement's time, a day after anything it shows)
    public = aggregate(RID, items, covering, public=True)
    assert public is not None
    assert (public.status, public.systems_total, public.completed_at) == (
        "completed", 1, "2026-11-29T04:00:00.000Z",
    )  # fmt: skip
    # ... while the operator's record, which counts ads, is settled by its retirement
    operator = aggregate(RID, items, covering)
    assert operator is not None and operator.completed_at == RETIRED_AT


def test_a_request_whose_systems_were_all_retired_tells_the_page_so() -> None:
    # Given a request whose two systems' jobs were retired before they answered, one of them
    # reached only through a linked identifier
    items = [EVENT, RESOLUTION | {"linked_only": ["cdp"]},
             _made(_job("ads", "pending"), "2026-11-29T03:12:01.000Z"),
             _made(_job("cdp", "failed"), "2026-11-29T03:12:01.000Z")]  # fmt: skip
    covering = _retirement("ads") | _retirement("cdp")
    # Then both views read completed with no system counted, as a request that needed none,
    # and the page is told how many were retired: the public view's only (review s22 diff B7)
    public = aggregate(RID, items, covering, public=True)
    operator = aggregate(RID, items, covering)
    assert public is not None and operator is not None
    assert (public.status, public.systems_total) == (operator.status, operator.systems_total)
    assert (public.status, public.systems_total) == ("completed", 0)
    assert (public.page_fields()["systems_retired"], operator.page_fields()["systems_retired"]) == (
        1, 2,
    )  # fmt: skip
    assert "systems_retired" not in public.model_dump()
    # ... and a request not resolved yet counts none in the public view
    received = aggregate(RID, [EVENT, items[2]], covering, public=True)
    assert received is not None and received.page_fields()["systems_retired"] == 0


def test_a_job_made_after_the_retirement_or_done_is_not_retired() -> None:
    items = [EVENT, RESOLUTION, _made(_job("ads", "pending"), "2026-11-30T11:00:00.000Z"),
             _made(_job("cdp", "done", "2026-11-29T04:00:00.000Z"),
                   "2026-11-29T03:12:01.000Z")]  # fmt: skip
    covering = _retirement("ads") | _retirement("cdp")
    status = aggregate(RID, items, covering)
    assert status is not None
    assert (status.status, status.systems_total, status.systems_done) == ("processing", 2, 1)
    assert {p.system: p.state for p in proofs(items, covering)} == {
        "ads": "processing", "cdp": "done"
    }  # fmt: skip


def test_a_job_made_once_a_retired_name_was_added_back_is_retired_by_its_second_retire() -> None:
    # Given ads retired on 30 November, added back, a request resolved on 1 December (its job
    # made then, left pending), and ads retired again on 2 December (review s24 diff C C1)
    later = "2026-12-02T10:00:00.000Z"
    covering = _retirement("ads")
    covering[("RETIRED", "ads")]["retired_again"] = [{"retired_at": later, "event_id": "r2"}]
    resolved = RESOLUTION | {"resolved_at": "2026-12-01T09:00:00.000Z"}
    items = [EVENT, resolved, _job("crm", "done", "2026-12-01T10:00:00.000Z"),
             _made(_job("ads", "pending"), "2026-12-01T09:00:00.000Z")]  # fmt: skip
    # Then the job is no longer owed, and the request was settled by the second retirement
    status = aggregate(RID, items, covering)
    assert status is not None
    assert (status.status, status.systems_total, status.completed_at) == ("completed", 1, later)
    # ... while one made before the first is settled by the first, as it was
    items[1], items[3] = RESOLUTION, _made(_job("ads", "pending"), "2026-11-29T03:12:01.000Z")
    items[2] = _job("crm", "done", "2026-11-29T04:00:00.000Z")
    first = aggregate(RID, items, covering)
    assert first is not None and (first.status, first.completed_at) == ("completed", RETIRED_AT)


def test_a_job_is_closed_by_the_first_retirement_at_or_after_it_was_made() -> None:
    later = "2026-12-02T10:00:00.000Z"
    once = _retirement("ads")[("RETIRED", "ads")]
    twice = once | {"retired_again": [{"retired_at": later, "event_id": "r2"}]}
    assert (last_retired_at(once), last_retired_at(twice)) == (RETIRED_AT, later)
    for made, by_once, by_twice in (
        ("2026-11-29T03:12:01.000Z", RETIRED_AT, RETIRED_AT),
        (RETIRED_AT, RETIRED_AT, RETIRED_AT),
        ("2026-12-01T09:00:00.000Z", None, later),
        (later, None, later),
        ("2026-12-03T00:00:00.000Z", None, None),
    ):
        job = {"created_at": made}
        assert (retired_at_for(job, once), retired_at_for(job, twice)) == (by_once, by_twice), made
    assert retired_at_for({"created_at": RETIRED_AT}, None) is None


def test_the_sweep_replay_and_marks_comparison_is_at_or_before_the_last_retirement() -> None:
    # made_at_or_before: what the sweep, a replay and an identity's marks ask of a job with
    # its system's last retirement; made in its millisecond counts, no made-at reads as made
    # before, no retirement closes nothing
    before, after = "2026-11-29T03:12:01.000Z", "2026-12-03T00:00:00.000Z"
    made = [made_at_or_before({"created_at": at}, RETIRED_AT) for at in (before, RETIRED_AT, after)]
    assert made == [True, True, False]
    assert made_at_or_before({}, RETIRED_AT) and made_at_or_before({"created_at": None}, RETIRED_AT)
    assert not made_at_or_before({"created_at": before}, None)


def test_a_job_made_before_the_retirement_is_no_proof_for_a_request_resolved_after_it() -> None:
    # Given crm retired, configured again, and a request resolved after that which cites a
    # pre-retirement crm job (a mark merged before review s18 diff B1's fix) and has its own
    after = RESOLUTION | {"resolved_at": "2026-12-01T10:00:00.000Z"}
    before = _made(_cited("pending"), "2026-11-29T03:13:00.000Z")
    own = _made(_job("crm", "done", "2026-12-01T10:05:00.000Z"), "2026-12-01T10:00:00.000Z")
    covering = {CITED: before} | _retirement("crm")
    for status, sent in (("pending", ()), ("done", ("email", "customer_id")), ("failed", ())):
        cited = before | {"status": status, "receipt": {"identifier_types_sent": list(sent)}}
        covering[CITED] = cited
        items = _naming_customer_id(own)
        items[1] = items[1] | {"resolved_at": after["resolved_at"]}
        # When its status is read
        answer = aggregate(RID, items, covering)
        # Then the cited job is not proof (nor "not owed"): crm is not done on the request's
        # own job alone, whatever the old job's status, and the request is not completed
        (crm,) = proofs(items, covering)
        assert (crm.state, crm.retired, crm.counted) == ("processing", False, True), status
        assert crm.stale(cited)
        assert answer is not None and answer.status == "processing", status
        # ... and with no job of its own, the request is re-opened for crm
        (alone,) = proofs(items[:2], covering)
        assert alone.reopen and not alone.settled, status
    # A request resolved before the retirement keeps the old rule: its open job is not owed
    covering[CITED] = before
    (old,) = proofs(_naming_customer_id(), covering)
    assert not old.stale(before) and old.state == "retired"


def test_covering_keys_ask_for_retirements_only_of_open_or_cited_systems() -> None:
    resolution = RESOLUTION | {"covered": {"crm": [f"{RID[:-1]}0:crm"]}}
    items = [EVENT, resolution, _job("ads", "pending"), _job("cdp", "done")]
    assert covering_keys(items) == [
        (f"REQ#{RID[:-1]}0", "JOB#crm"), ("RETIRED", "ads"), ("RETIRED", "crm"),
    ]  # fmt: skip
    assert covering_keys([EVENT, RESOLUTION, _job("cdp", "no_record")]) == []


def test_public_view_counts_no_system_before_the_resolution_says_which_are_linked_only() -> None:
    # The resolver writes the jobs, then the RESOLUTION naming the linked-only systems: in
    # between, a system reached only through a linked customer id must not show in the count
    # (review s17 contract F1). The operator's view counts every job at once.
    jobs = [_job("crm", "pending"), _job("cdp", "done", "2026-11-29T03:12:01.000Z")]
    public = aggregate(RID, [EVENT, *jobs], public=True)
    assert public is not None
    assert (public.status, public.systems_total, public.systems_done) == ("received", 0, 0)
    operator = aggregate(RID, [EVENT, *jobs])
    assert operator is not None
    assert (operator.systems_total, operator.systems_done) == (2, 1)
    resolved = aggregate(RID, [EVENT, RESOLUTION | {"linked_only": ["cdp"]}, *jobs], public=True)
    assert resolved is not None
    assert (resolved.status, resolved.systems_total, resolved.systems_done) == ("processing", 1, 0)


# -- the quiet period (RESOLUTION.not_asked) and a re-open's not_planned ---------------------

ANSWERED_AT = "2026-11-20T08:00:00.000Z"


def _quiet(**extra: Any) -> dict[str, Any]:
    """A resolution citing the earlier CRM job, which the quiet period relied on."""
    entry = {"job_id": f"{EARLIER}:crm", "answered_at": ANSWERED_AT}
    return RESOLUTION | {"covered": {"crm": [f"{EARLIER}:crm"]},
                         "not_asked": {"crm": [entry]}} | extra  # fmt: skip


def _event_naming_customer_id() -> dict[str, Any]:
    return EVENT | {"identifiers": [{"type": "customer_id", "key": "c1", "value": "x"}]}


def test_a_system_the_quiet_period_settled_is_done_publicly_and_uncounted_for_operators() -> None:
    # Given a request whose only CRM proof is a cited no_record answer the quiet period relied on
    items = [_event_naming_customer_id(), _quiet()]
    covering = {CITED: _cited("no_record")}
    # Then nothing is owed there: no re-open; operators do not count it, the public counts it done
    (crm,) = proofs(items, covering)
    assert crm.settled and not crm.reopen and not crm.counted
    assert not needs_reopen(items, covering)
    operator = aggregate(RID, items, covering)
    public = aggregate(RID, items, covering, public=True)
    assert operator is not None and public is not None
    assert (operator.status, operator.systems_total) == ("completed", 0)
    assert (public.status, public.systems_total, public.systems_done) == ("completed", 1, 1)
    # ... and the operator views say why crm was not asked (the job, its receipt gone)
    assert not_asked(items, {}) == [{
        "system": "crm", "job_id": f"{EARLIER}:crm", "answered_at": ANSWERED_AT,
        "note": f"not asked: job {EARLIER}:crm ended no_record at {ANSWERED_AT} "
                "(its receipt is no longer kept)",
    }]  # fmt: skip


def test_a_quiet_system_with_a_job_of_its_own_still_pending_is_processing() -> None:
    items = [_event_naming_customer_id(), _quiet(), _job("crm", "pending")]
    covering = {CITED: _cited("no_record")}
    (crm,) = proofs(items, covering)
    assert not crm.settled and crm.counted
    for public in (False, True):
        status = aggregate(RID, items, covering, public=public)
        assert status is not None
        assert (status.status, status.systems_total, status.systems_done) == ("processing", 1, 0)


def test_a_cited_job_the_quiet_period_did_not_rely_on_re_opens_the_request() -> None:
    # The quiet period names another job: the no_record citation is unexplained
    other = {"crm": [{"job_id": f"{RID}:other", "answered_at": ANSWERED_AT}]}
    items = [_event_naming_customer_id(), _quiet(not_asked=other)]
    covering = {CITED: _cited("no_record")}
    (crm,) = proofs(items, covering)
    assert crm.reopen and not crm.settled
    assert needs_reopen(items, covering)
    # Not resolved yet: nothing to re-open
    assert not needs_reopen([_event_naming_customer_id()], covering)


def test_a_re_open_that_found_nothing_to_plan_settles_the_system() -> None:
    # A re-open found the person no longer opted out of crm's purposes (`not_planned`)
    items = [
        _event_naming_customer_id(),
        RESOLUTION | {"covered": {"crm": [f"{EARLIER}:crm"]}, "not_planned": ["crm"]},
    ]
    covering = {CITED: _cited("no_record")}
    (crm,) = proofs(items, covering)
    assert crm.settled and not crm.reopen and not needs_reopen(items, covering)
    status = aggregate(RID, items, covering, public=True)
    assert status is not None and (status.status, status.systems_total) == ("completed", 0)


def test_a_stale_citation_is_never_settled_by_the_quiet_period() -> None:
    # crm retired and configured again; the request, resolved after, cites a pending
    # pre-retirement job the quiet period also names: it needs a job of its own
    items = [_event_naming_customer_id(), _quiet(resolved_at="2026-12-01T10:00:00.000Z")]
    cited = _made(_cited("pending"), "2026-11-29T03:13:00.000Z")
    covering = {CITED: cited} | _retirement("crm")
    (crm,) = proofs(items, covering)
    assert crm.stale(cited) and not crm.settled and crm.reopen


def test_a_cited_job_naming_no_identifiers_proves_by_its_status() -> None:
    bare = {k: v for k, v in _cited("done").items() if k != "identifiers"}
    (crm,) = proofs(_naming_customer_id(), {CITED: bare})
    assert crm.proves(bare) and crm.state == "done"
    (crm,) = proofs(_naming_customer_id(), {CITED: bare | {"status": "no_record"}})
    assert not crm.proves(bare | {"status": "no_record"})


def test_a_denial_decides_the_status_whatever_the_jobs_say() -> None:
    # §7026(e): an operator denied the request (suspected fraud); its job had finished
    denial = {"pk": f"REQ#{RID}", "sk": "DENIAL", "denied_at": "2026-11-30T09:00:00.000Z",
              "reason_code": "suspected_fraud", "reason": "a bot burst"}  # fmt: skip
    items = [EVENT, RESOLUTION, _job("crm", "done", "2026-11-29T04:00:00.000Z"), denial]
    status = aggregate(RID, items)
    assert status is not None
    assert (status.status, status.completed_at) == ("denied", None)
    assert (status.denied_at, status.denial_reason) == (
        "2026-11-30T09:00:00.000Z",
        "suspected_fraud",
    )


def test_a_job_made_at_the_instant_of_the_retirement_counts_as_made_before_it() -> None:
    items = [EVENT, RESOLUTION, _made(_job("ads", "pending"), RETIRED_AT)]
    (ads,) = proofs(items, _retirement("ads"))
    assert ads.state == "retired" and not ads.counted


def test_a_request_resolved_at_the_instant_of_the_retirement_keeps_the_old_rule() -> None:
    # Resolved at the retirement, not after it: its cited pre-retirement job is not stale
    items = _naming_customer_id()
    items[1] = items[1] | {"resolved_at": RETIRED_AT}
    cited = _made(_cited("pending"), "2026-11-29T03:13:00.000Z")
    (crm,) = proofs(items, {CITED: cited} | _retirement("crm"))
    assert not crm.stale(cited) and crm.state == "retired"


def test_a_system_reached_only_for_carried_purposes_is_left_out_of_the_public_view() -> None:
    # review s24 stranger Q1, Q2: the jobs made only for purposes carried to a named email
    # (`carried_only`) would count what the person chose and whether a vendor holds them. The
    # public view counts the rest, with the linked-only ones left out too; the operator's, all.
    jobs = [_job("crm", "done", "2026-11-29T03:12:05.000Z"), _job("ads", "failed"),
            _job("cdp", "pending")]  # fmt: skip
    resolution = RESOLUTION | {"carried_only": ["ads"], "linked_only": ["cdp"]}
    public = aggregate(RID, [EVENT, resolution, *jobs], public=True)
    assert public is not None
    assert (public.status, public.systems_total, public.systems_done) == ("completed", 1, 1)
    assert public.completed_at == "2026-11-29T03:12:05.000Z"
    operator = aggregate(RID, [EVENT, resolution, *jobs])
    assert operator is not None
    counts = (operator.status, operator.systems_total, operator.systems_failed)
    assert counts == ("processing", 3, 1)


def test_a_quiet_system_with_no_job_nor_citation_is_done_publicly_unless_linked_only() -> None:
    entry = {"job_id": f"{EARLIER}:ads", "answered_at": ANSWERED_AT}
    resolution = RESOLUTION | {"not_asked": {"ads": [entry]}}
    items = [EVENT, resolution, _job("crm", "pending")]
    public = aggregate(RID, items, public=True)
    assert public is not None
    # Not done while the system it asked has not answered: a request for a person the vendor
    # holds reads 0 of 2 here too (review s20 outside O1: 1 of 2 told a stranger which)
    assert (public.status, public.systems_total, public.systems_done) == ("processing", 2, 0)
    answered = aggregate(RID, [EVENT, resolution, _job("crm", "done")], public=True)
    assert answered is not None
    assert (answered.status, answered.systems_total, answered.systems_done) == ("completed", 2, 2)
    failed = aggregate(RID, [EVENT, resolution, _job("crm", "failed")], public=True)
    assert failed is not None
    assert (failed.status, failed.systems_done, failed.systems_failed) == ("failed", 1, 1)
    # Reached only through a linked identifier: not the requester's to read at all
    hidden = aggregate(RID, [EVENT, resolution | {"linked_only": ["ads"]}], public=True)
    assert hidden is not None
    assert (hidden.status, hidden.systems_total, hidden.systems_done) == ("completed", 0, 0)


def test_the_public_reads_are_the_same_whether_or_not_the_vendors_hold_the_person() -> None:
    # Given two repeats with a new purpose: one for a person two vendors hold (six systems
    # asked), one for a person they answered "no such person" for (four asked, two quiet)
    systems = ["ads", "cdp", "crm", "email", "partner", "webhook"]
    quiet = {s: [{"job_id": f"{EARLIER}:{s}", "answered_at": ANSWERED_AT}] for s in systems[:2]}

    denial = {"pk": f"REQ#{RID}", "sk": "DENIAL", "denied_at": "2026-11-29T03:13:00.000Z",
              "reason_code": "suspected_fraud"}  # fmt: skip

    def reads(asked: list[str], resolution: dict[str, Any]) -> set[tuple[Any, ...]]:
        """Every public read as the systems asked answer in turn (the rest pending): all
        done, or the first failed for good and the others done; and the same once denied
        (jobs already sent still answer, review s20 diff D1)."""
        seen = set()
        for denied in ([], [denial]):
            for first in ("done", "failed"):
                for answered in range(len(asked) + 1):
                    jobs = [_job(s, (first if n == 0 else "done") if n < answered else "pending")
                            for n, s in enumerate(asked)]  # fmt: skip
                    status = aggregate(RID, [EVENT, resolution, *jobs, *denied], public=True)
                    assert status is not None
                    seen.add((status.status, status.systems_total, status.systems_done,
                              status.systems_failed))  # fmt: skip
        return seen

    held = reads(systems, RESOLUTION)
    not_held = reads(systems[2:], RESOLUTION | {"not_asked": quiet})
    # Then a stranger reading either sees the same answers: no progress while processing
    # (review s20 diff C1: 3 of 6 done at most against 5 of 6), and the same ends
    assert not_held == held == {("processing", 6, 0, 0), ("completed", 6, 6, 0),
                                ("failed", 6, 5, 1), ("denied", 6, 0, 0), ("denied", 6, 6, 0),
                                ("denied", 6, 5, 1)}  # fmt: skip
    # while operators see each system that answered
    jobs = [_job(s, "done" if n < 3 else "pending") for n, s in enumerate(systems)]
    operator = aggregate(RID, [EVENT, RESOLUTION, *jobs])
    assert operator is not None and (operator.systems_done, operator.systems_total) == (3, 6)


def test_a_resolution_made_before_the_cited_proof_rule_keeps_its_meaning() -> None:
    # No `proof_rule` (resolved before 2026-11-30): a cited job that ended no_record counts
    items = _naming_customer_id()
    items[1] = {k: v for k, v in items[1].items() if k != "proof_rule"}
    (crm,) = proofs(items, {CITED: _cited("no_record")})
    assert not crm.strict and crm.state == "done" and not crm.reopen
    status = aggregate(RID, items, {CITED: _cited("no_record")})
    assert status is not None and status.status == "completed"


def test_a_retirement_after_a_system_was_done_does_not_move_the_completion() -> None:
    done = _made(_job("cdp", "done", "2026-11-29T04:00:00.000Z"), "2026-11-29T03:12:01.000Z")
    status = aggregate(RID, [EVENT, RESOLUTION, done], _retirement("cdp"))
    assert status is not None
    assert (status.status, status.completed_at) == ("completed", "2026-11-29T04:00:00.000Z")


def test_a_re_open_says_why_nothing_was_planned() -> None:
    # The operator views print why: the system left the config, or the person opted back in
    resolution = RESOLUTION | {"covered": {"crm": [f"{EARLIER}:crm"]}, "not_planned": ["crm"]}
    (crm,) = proofs([_event_naming_customer_id(), resolution], {CITED: _cited("no_record")})
    assert crm.unplanned_why == "not_opted_out"
    removed = resolution | {"not_configured": ["crm"]}
    (crm,) = proofs([_event_naming_customer_id(), removed], {CITED: _cited("no_record")})
    assert crm.unplanned_why == "system_removed"


# -- the public view replays the earlier answers a repeat relies on ------------------------------

RESOLVED = datetime(2026, 11, 29, 3, 12, 1, tzinfo=UTC)  # RESOLUTION's resolved_at
FIRST_ASKED = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)  # when the earlier request's jobs were made
TOOK = {"crm": timedelta(seconds=90), "email": timedelta(seconds=40)}


def _customer_job(pk: str, system: str, status: str, made: datetime, took: timedelta | None
                  ) -> dict[str, Any]:  # fmt: skip
    """A job for the customer id c1, made at `made`, answered `took` later (None: not yet)."""
    job = {"pk": pk, "sk": f"JOB#{system}", "job_id": f"{pk[4:]}:{system}", "system": system,
           "status": status if took is not None else "pending", "created_at": iso(made),
           "identifiers": [{"type": "customer_id", "key": "c1"}],
           "receipt": {"identifier_types_sent": ["customer_id"]}}  # fmt: skip
    if took is not None:
        job["completed_at"] = iso(made + took)
    return job


def _first_request(now: datetime) -> tuple[list[dict[str, Any]], dict[Any, Any]]:
    """No one had opted c1 out: the request's own jobs, each answered when its vendor took."""
    jobs = [_customer_job(f"REQ#{RID}", s, "done", RESOLVED,
                          took if RESOLVED + took <= now else None)
            for s, took in TOOK.items()]  # fmt: skip
    return [_event_naming_customer_id(), RESOLUTION, *jobs], {}


def _repeat_cited() -> tuple[list[dict[str, Any]], dict[Any, Any]]:
    """c1 had opted out: the earlier request's done jobs are cited, no job of its own."""
    covered = {s: [f"{EARLIER}:{s}"] for s in TOOK}
    cited = {(f"REQ#{EARLIER}", f"JOB#{s}"): _customer_job(f"REQ#{EARLIER}", s, "done",
                                                          FIRST_ASKED, took)
             for s, took in TOOK.items()}  # fmt: skip
    return [_event_naming_customer_id(), RESOLUTION | {"covered": covered}], cited


def _repeat_quiet() -> tuple[list[dict[str, Any]], dict[Any, Any]]:
    """The vendors answered "no such person" for c1 days ago: quiet, no job, no citation."""
    heard = {s: [{"job_id": f"{EARLIER}:{s}", "answered_at": iso(FIRST_ASKED + took)}]
             for s, took in TOOK.items()}  # fmt: skip
    answers = {(f"REQ#{EARLIER}", f"JOB#{s}"): _customer_job(f"REQ#{EARLIER}", s, "no_record",
                                                            FIRST_ASKED, took)
               for s, took in TOOK.items()}  # fmt: skip
    return [_event_naming_customer_id(), RESOLUTION | {"not_asked": heard}], answers


def _public(
    items: list[dict[str, Any]], covering: dict[Any, Any], now: datetime
) -> tuple[Any, ...]:
    status = aggregate(RID, items, covering, public=True, now=now)
    assert status is not None
    return (status.status, status.systems_total, status.systems_done, status.systems_failed,
            status.completed_at)  # fmt: skip


def test_a_repeat_reads_as_a_first_request_whose_vendors_took_as_long() -> None:
    # Given three requests naming c1: a first one (its vendors answer in 40 s and 90 s), a
    # repeat satisfied by that earlier request's receipts, and a repeat for a person the
    # vendors answered "no such person" for (the quiet period), those answers as quick
    moments = [RESOLVED + timedelta(seconds=s) for s in (0, 1, 39, 40, 41, 89, 90, 91, 3600)]
    seen = []
    for now in moments:
        # When a stranger reads each at the same moment after its resolution
        first = _public(*_first_request(now), now)
        cited = _public(*_repeat_cited(), now)
        quiet = _public(*_repeat_quiet(), now)
        # Then the three reads are the same: the earlier answers' times are replayed
        assert cited == first == quiet, now
        seen.append(first)
    done_at = iso(RESOLVED + timedelta(seconds=90))
    assert seen[0] == ("processing", 2, 0, 0, None)
    assert seen[-1] == ("completed", 2, 2, 0, done_at)
    assert seen[6] == seen[-1]  # answered at the slower vendor's time, not a moment later
    # while operators see the repeats completed at their resolution
    operator = aggregate(RID, *_repeat_cited())
    assert operator is not None and operator.completed_at == RESOLUTION["resolved_at"]


def test_an_earlier_answer_is_replayed_for_at_most_a_day() -> None:
    # Given a cited job made three days before it was done (it failed, then was replayed)
    items, cited = _repeat_cited()
    key = (f"REQ#{EARLIER}", "JOB#crm")
    cited[key] = _customer_job(f"REQ#{EARLIER}", "crm", "done", FIRST_ASKED, timedelta(days=3))
    # Then the repeat reads processing for REPLAY_CAP, not three days
    assert _public(items, cited, RESOLVED + REPLAY_CAP - timedelta(seconds=1))[0] == "processing"
    assert _public(items, cited, RESOLVED + REPLAY_CAP)[4] == iso(RESOLVED + REPLAY_CAP)
    # and an answer stamped before its job was made (a clock step) replays nothing
    cited[key] = _customer_job(f"REQ#{EARLIER}", "crm", "done", FIRST_ASKED, timedelta(hours=-1))
    cited.pop((f"REQ#{EARLIER}", "JOB#email"))
    items[1] = items[1] | {"covered": {"crm": [f"{EARLIER}:crm"]}}
    assert _public(items, cited, RESOLVED)[0] == "completed"


def test_a_repeat_denied_shows_no_count_while_its_earlier_answers_are_replayed() -> None:
    denial = {"pk": f"REQ#{RID}", "sk": "DENIAL", "denied_at": iso(RESOLVED),
              "reason_code": "suspected_fraud"}  # fmt: skip
    items, cited = _repeat_cited()
    early = aggregate(RID, [*items, denial], cited, public=True, now=RESOLVED)
    late = aggregate(RID, [*items, denial], cited, public=True, now=RESOLVED + timedelta(hours=1))
    assert early is not None and late is not None
    assert (early.status, early.systems_done) == ("denied", 0)
    assert (late.status, late.systems_done) == ("denied", 2)


def test_the_public_read_asks_for_the_quiet_periods_answers_too() -> None:
    items, answers = _repeat_quiet()
    assert quiet_keys(items) == sorted(answers)
    # an expired answer (not found) replays nothing: the repeat reads completed
    assert _public(items, {}, RESOLVED)[0] == "completed"


def test_a_job_replayed_by_an_operator_is_timed_from_its_replay() -> None:
    # Given a cited job that failed in an outage and was sent again by an operator's replay a
    # day later, answered a minute after that (review s21 diff B F1)
    items, cited = _repeat_cited()
    key = (f"REQ#{EARLIER}", "JOB#crm")
    replayed = FIRST_ASKED + timedelta(days=1)
    cited[key] = cited[key] | {"replayed_at": iso(replayed),
                               "completed_at": iso(replayed + timedelta(minutes=1))}  # fmt: skip
    # Then a repeat reads processing for that minute (the slower of its answers), not a day
    assert _public(items, cited, RESOLVED + timedelta(seconds=59))[0] == "processing"
    assert _public(items, cited, RESOLVED + timedelta(seconds=60))[0] == "completed"


def test_a_failed_cited_job_is_replayed_before_the_repeat_reads_failed() -> None:
    # Given a repeat citing a job that failed for good 90 s after it was made
    items, cited = _repeat_cited()
    key = (f"REQ#{EARLIER}", "JOB#crm")
    cited[key] = cited[key] | {"status": "failed"}
    # Then it reads processing, with no count, for those 90 s, then failed (review s21 B F6)
    assert _public(items, cited, RESOLVED + timedelta(seconds=89)) == ("processing", 2, 0, 0, None)
    assert _public(items, cited, RESOLVED + timedelta(seconds=90))[:4] == ("failed", 2, 1, 1)


def test_a_linked_only_systems_earlier_answer_is_not_replayed() -> None:
    # Given a repeat whose CDP, reached only through a linked identifier, cites a job that took
    # an hour: the public view leaves that system out, so its time must not hold the answer
    # either (review s21 diff B F3: an hour's hold would tell a stranger of the link)
    items, cited = _repeat_cited()
    items[1] = items[1] | {"covered": items[1]["covered"] | {"cdp": [f"{EARLIER}:cdp"]},
                           "linked_only": ["cdp"]}  # fmt: skip
    cited[(f"REQ#{EARLIER}", "JOB#cdp")] = _customer_job(
        f"REQ#{EARLIER}", "cdp", "done", FIRST_ASKED, timedelta(hours=1)
    )
    assert _public(items, cited, RESOLVED + timedelta(seconds=90))[:2] == ("completed", 2)


def test_the_public_read_asks_for_something_whatever_the_request_relied_on() -> None:
    # A first request whose own jobs are done reads its systems' retirements: the same round
    # trips as a repeat's read of the jobs it cites (review s21 diff B F2)
    items, _ = _first_request(RESOLVED + timedelta(hours=1))
    assert covering_keys(items) == []
    assert own_retirement_keys(items) == [retired_key("crm"), retired_key("email")]


# -- what a quiet period's no_record recorded, and a system done with part (review s26 counsel) -

GMAIL = {"type": "email", "key": "g1", "value": "+news@gmail.com"}
NO_FORM = {  # Google's gmail rule leaves "+news@gmail.com" no local part: never sent
    "http_status": None, "identifier_types_sent": [], "identifier_types_rejected": ["email"],
    "note": "email not sent: no Google form",
}  # fmt: skip


def _google_job(request_id: str, receipt: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"pk": f"REQ#{request_id}", "sk": "JOB#google_ads", "job_id": f"{request_id}:google_ads",
            "request_id": request_id, "system": "google_ads", "status": "no_record",
            "created_at": "2026-12-02T18:43:42.900Z", "completed_at": "2026-12-02T18:43:43.743Z",
            "identifiers": [GMAIL], "receipt": receipt} | extra  # fmt: skip


def _quiet_google() -> list[dict[str, Any]]:
    """A repeat naming the email, not asked at Google (the quiet period) for the earlier
    request's job, whose answer the resolution stored cut to the second (before F9)."""
    entry = {"job_id": f"{EARLIER}:google_ads", "answered_at": "2026-12-02T18:43:43.000Z"}
    return [EVENT | {"identifiers": [GMAIL]}, RESOLUTION | {"not_asked": {"google_ads": [entry]}}]


def test_a_quiet_period_note_says_the_vendor_answered_only_when_it_was_asked() -> None:
    # Given a repeat not asked at Google for an earlier no_record job
    items = _quiet_google()
    key = (f"REQ#{EARLIER}", "JOB#google_ads")
    # When the job sent nothing (no form of the email): its note says so, never "the vendor
    # answered no such person" (review s26 counsel F2), and its time is the job's own, to the
    # millisecond: never before it ended (F9: it read 18:43:43.000 for an end at .743)
    (quiet,) = not_asked(items, {key: _google_job(EARLIER, NO_FORM)})
    assert quiet["note"] == (
        f"not asked: job {EARLIER}:google_ads sent the vendor nothing at 2026-12-02T18:43:43.743Z"
        " (email not sent: no Google form)"
    )
    assert "answered" not in quiet["note"] and quiet["answered_at"] == "2026-12-02T18:43:43.743Z"
    # When the vendor was asked and held no such person: that is what it says
    asked = {"identifier_types_sent": ["email"], "note": "no such person"}
    (quiet,) = not_asked(items, {key: _google_job(EARLIER, asked)})
    assert quiet["note"] == (
        "not asked: the vendor answered no such person at 2026-12-02T18:43:43.743Z "
        f"(job {EARLIER}:google_ads)"
    )


def test_a_no_record_answer_is_stamped_for_the_quiet_period_never_before_it(
    monkeypatch: Any,
) -> None:
    # Given a no_record job that ended at .743 of a second (review s26 counsel F9)
    stamped: list[int] = []
    monkeypatch.setattr(delivery, "_free_flights",
                        lambda *_, no_record_at=0, **__: stamped.append(no_record_at))  # fmt: skip
    # When the worker frees its marks, stamping when the vendor answered
    delivery.free_ended(None, _google_job(RID, NO_FORM), "no_record", "2026-12-02T18:44:00Z")  # type: ignore[arg-type]
    # Then the stamp (whole seconds: the resolution's `answered_at`) is not before the answer
    (at,) = stamped
    assert iso(datetime.fromtimestamp(at, UTC)) == "2026-12-02T18:43:44.000Z"


def _braze(receipt: dict[str, Any], status: str = "done") -> dict[str, Any]:
    """The request's own Braze job for an email and a customer id."""
    return {"pk": f"REQ#{RID}", "sk": "JOB#braze", "job_id": f"{RID}:braze", "system": "braze",
            "status": status, "completed_at": "2026-11-29T03:12:05.000Z",
            "identifiers": [{"type": "email", "key": "e1"}, {"type": "customer_id", "key": "c1"}],
            "receipt": receipt}  # fmt: skip


def test_a_system_done_without_a_type_the_request_named_is_done_in_part() -> None:
    named = [{"type": "email", "key": "e1", "value": "x"},
             {"type": "customer_id", "key": "c1", "value": "y"}]  # fmt: skip
    event = EVENT | {"identifiers": named}
    both = {"identifier_types_sent": ["customer_id", "email"]}
    refused = {"identifier_types_sent": ["customer_id"], "identifier_types_rejected": ["email"],
               "note": "email rejected"}  # fmt: skip
    nothing = NO_FORM | {"identifier_types_rejected": ["email", "customer_id"]}
    cases = {
        # Braze took the customer id and refused the email (review s26 counsel F3)
        "refused": (_braze(refused), {"email"}),
        # a job with nothing the vendor can match ended no_record without a call (F2)
        "not sent": (_braze(nothing, "no_record"), {"email", "customer_id"}),
        # the vendor took both, or answered "no such person": whole
        "taken": (_braze(both), set()),
        "no such person": (_braze(both, "no_record"), set()),
    }
    for case, (job, left) in cases.items():
        items = [event, RESOLUTION, job]
        (braze,) = proofs(items, {})
        assert (braze.state, set(braze.not_taken)) == ("done", left), case
        # Then the counts stay (done), and the page is told how many systems are in part: the
        # public one only of a type never sent (Braze's refusal tells of its data: review s27
        # stranger F2)
        for public in (False, True):
            status = aggregate(RID, items, {}, public=public, now=datetime(2027, 1, 1, tzinfo=UTC))
            assert status is not None and status.status == "completed", case
            assert status.systems_done == 1
            shown = left and (not public or case == "not sent")
            assert status.page_fields()["systems_in_part"] == (1 if shown else 0), case
    # A type the request did not name (a linked identity's) is not the request's part
    linked = [EVENT | {"identifiers": [{"type": "customer_id", "key": "c1", "value": "y"}]},
              RESOLUTION, cases["refused"][0]]  # fmt: skip
    (braze,) = proofs(linked, {})
    assert not braze.not_taken


def test_a_repeat_not_asked_after_a_job_that_sent_nothing_reads_in_part_as_the_first() -> None:
    # Given a first request whose Google job sent nothing (no form of the email), and a repeat
    # not asked at Google for it (the quiet period)
    first = [EVENT | {"identifiers": [GMAIL]}, RESOLUTION, _google_job(RID, NO_FORM)]
    key = (f"REQ#{EARLIER}", "JOB#google_ads")
    later = datetime(2027, 1, 1, tzinfo=UTC)
    # When the public reads both
    one = aggregate(RID, first, {}, public=True, now=later)
    two = aggregate(RID, _quiet_google(), {key: _google_job(EARLIER, NO_FORM)}, public=True,
                    now=later)  # fmt: skip
    # Then both read completed in part, so the page does not tell a repeat from a first request
    assert one is not None and two is not None
    assert (one.status, one.page_fields()["systems_in_part"]) == ("completed", 1)
    assert (two.status, two.page_fields()["systems_in_part"]) == ("completed", 1)


def test_a_quiet_period_job_counts_for_the_identities_the_request_named_that_it_carried() -> None:
    # Given a repeat naming the gmail address and a phone, not asked at Google for the email
    # (the earlier job sent nothing), with a job of its own for the phone that Google took
    phone = {"type": "phone", "key": "p1", "value": "+14155550100"}
    entry = {"job_id": f"{EARLIER}:google_ads", "answered_at": "2026-12-02T18:43:44.000Z"}
    own = _google_job(RID, {"identifier_types_sent": ["phone"]}, status="done",
                      identifiers=[phone])  # fmt: skip
    items = [EVENT | {"identifiers": [GMAIL, phone]},
             RESOLUTION | {"not_asked": {"google_ads": [entry]}}, own]  # fmt: skip
    key = (f"REQ#{EARLIER}", "JOB#google_ads")
    # Then the email reached Google through neither job: in part, in the status and the list
    (google,) = proofs(items, {key: _google_job(EARLIER, NO_FORM)})
    assert (google.state, set(google.not_taken), google.in_part) == ("done", {"email"}, True)
    status = aggregate(RID, items, {key: _google_job(EARLIER, NO_FORM)})
    assert status is not None and status.page_fields()["systems_in_part"] == 1
    # But a quiet job that refused another person's email (not the one this request named) is
    # not this request's part
    stranger = {"type": "email", "key": "g2", "value": "other@gmail.com"}
    (google,) = proofs(items, {key: _google_job(EARLIER, NO_FORM, identifiers=[stranger])})
    assert not google.not_taken and not google.in_part
    # And a vendor that was asked and answered "no such person" took nothing away
    asked = {"identifier_types_sent": ["email"], "http_status": 200}
    (google,) = proofs(items, {key: _google_job(EARLIER, asked)})
    assert not google.in_part


def test_a_system_the_quiet_period_did_not_ask_is_in_the_proofs_and_nowhere_counted() -> None:
    # Given a repeat whose only word on Google is the quiet period (no job, no citation)
    key = (f"REQ#{EARLIER}", "JOB#google_ads")
    (google,) = proofs(_quiet_google(), {key: _google_job(EARLIER, NO_FORM)})
    # Then it is quiet_only: settled, not counted, nothing to re-open, and in part
    assert google.quiet_only and google.settled and not google.counted and not google.reopen
    assert google.in_part
    # And without its job read, nothing says what it did not take
    (google,) = proofs(_quiet_google(), {})
    assert google.quiet_only and not google.in_part


def _trade_desk(receipt: dict[str, Any], status: str = "done") -> dict[str, Any]:
    """The request's own Trade Desk job for an email and a phone."""
    return {"pk": f"REQ#{RID}", "sk": "JOB#trade_desk", "job_id": f"{RID}:trade_desk",
            "system": "trade_desk", "status": status, "created_at": "2026-11-29T03:12:04.000Z",
            "completed_at": "2026-11-29T03:12:05.000Z",
            "identifiers": [{"type": "email", "key": "e1"}, {"type": "phone", "key": "p1"}],
            "receipt": receipt}  # fmt: skip


def test_the_public_view_says_in_part_only_for_a_type_never_sent_for_lack_of_a_form() -> None:
    # Given a request naming someone's email beside the requester's own phone (anyone may file
    # one, and its status is public by its id: review s27 stranger F2)
    named = [{"type": "email", "key": "e1", "value": "x"},
             {"type": "phone", "key": "p1", "value": "y"}]  # fmt: skip
    event = EVENT | {"identifiers": named}
    opted = {"http_status": 200, "identifier_types_sent": ["phone"],
             "identifier_types_rejected": ["email"],
             "note": "email not sent: UID2 operator optout"}  # fmt: skip
    cases = {
        # The Trade Desk took the phone; the UID2 operator answered the email opted out of UID2
        # (what the vendor holds): the operators' views say in part, the public page must not
        "refused by the vendor": (_trade_desk(opted | {"identifier_types_unformed": []}), 0),
        # the email has no UID2 form ("+news@gmail.com"): decided by the text the requester gave
        "no form": (_trade_desk(opted | {"identifier_types_unformed": ["email"],
                                         "note": "email not sent: no UID2 form"}), 1),
        # a receipt written before the field: its refused types read as the vendor's answer...
        "refused before the field": (_trade_desk(opted), 0),
        # ... unless no vendor was called at all (no_record, nothing sent, no HTTP status)
        "no call before the field": (_trade_desk(NO_FORM | {
            "identifier_types_rejected": ["email", "phone"]}, "no_record"), 1),
        # both taken: whole everywhere
        "taken": (_trade_desk({"http_status": 200, "identifier_types_sent": ["email", "phone"]}),
                  0),
    }  # fmt: skip
    later = datetime(2027, 1, 1, tzinfo=UTC)
    answers = {}
    for case, (job, public_part) in cases.items():
        items = [event, RESOLUTION, job]
        (ttd,) = proofs(items, {})
        operator = aggregate(RID, items, {}, now=later)
        public = aggregate(RID, items, {}, public=True, now=later)
        assert operator is not None and public is not None
        # Then operators (and the §7102 outcome, the exports: `in_part`) read the full rule
        assert operator.page_fields()["systems_in_part"] == int(ttd.in_part), case
        assert ttd.in_part == (case != "taken"), case
        # and the public page counts only a type never sent for lack of a form
        assert public.page_fields()["systems_in_part"] == public_part, case
        assert ttd.in_part_publicly == bool(public_part) and ttd.unformed <= ttd.not_taken, case
        answers[case] = public.model_dump()
    # And the public JSON is the same whatever the vendor answered: status, counts, times
    assert answers["refused by the vendor"] == answers["taken"]
    assert answers["refused by the vendor"]["status"] == "completed"


# -- a request's further own jobs (several unlinked people named) ----------------------------


FURTHER = f"{RID}~0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("own", "further", "expected"),
    [("done", "pending", "processing"), ("done", "done", "completed"),
     ("done", "failed", "failed"), ("pending", "no_record", "processing")],
)  # fmt: skip
def test_a_system_with_a_further_own_job_is_one_entry_done_when_each_job_is(
    own: str, further: str, expected: str
) -> None:
    resolution = RESOLUTION | {"proof_rule": 3, "split_jobs": {"crm": [f"{FURTHER}:crm"]}}
    items = [EVENT, resolution, _job("crm", own, "2026-11-29T03:13:00.000Z")]
    key = (f"REQ#{FURTHER}", "JOB#crm")
    # the further job is read with the cited ones (one BatchGetItem), with its retirement key
    assert covering_keys(items) == [key, retired_key("crm")]
    job = {
        "pk": key[0],
        "sk": key[1],
        "job_id": f"{FURTHER}:crm",
        "status": further,
        "created_at": "2026-11-29T03:12:01.000Z",
        "completed_at": "2026-11-29T03:14:00.000Z",
    }
    (proof,) = proofs(items, {key: job})
    assert proof.more == (job,) and proof.is_own(job)
    status = aggregate(RID, items, {key: job})
    assert status is not None
    assert (status.status, status.systems_total) == (expected, 1)
    # an own job: no earlier answer's time is replayed for it in the public view
    public = aggregate(
        RID, items, {key: job}, public=True, now=datetime(2026, 11, 29, 4, tzinfo=UTC)
    )
    assert public is not None and public.status == expected
