"""The later-delivery rule (ops/later.py `covered_by`): a failed job counts as delivered only
when, for every flight it held, the identity's mark names, for each purpose, another job that
ended done and took that identity."""

from typing import Any

from optout.ops.later import covered_by
from optout.store import keys

EMAIL = {"type": "email", "key": "e1"}
PHONE = {"type": "phone", "key": "p1"}
EMAIL_PK = keys.identity_pk("email", "e1")
PHONE_PK = keys.identity_pk("phone", "p1")


def failed(*identifiers: dict[str, str], purposes: tuple[str, ...] = ("sale",)) -> dict[str, Any]:
    return {"job_id": "r1:braze", "status": "failed", "purposes": list(purposes),
            "identifiers": list(identifiers), "flights": [{} for _ in identifiers]}  # fmt: skip


def taker(job_id: str, *identifiers: dict[str, str], **receipt: Any) -> dict[str, Any]:
    return {"job_id": job_id, "status": "done", "completed_at": f"2026-12-04T10:00:0{job_id[1]}Z",
            "identifiers": list(identifiers), "receipt": receipt}  # fmt: skip


def test_every_flight_taken_by_done_jobs_is_delivered_at_each_of_them() -> None:
    marks = {EMAIL_PK: {"job_sale": "r3:braze"}, PHONE_PK: {"job_sale": "r4:braze"}}
    named = {"r3:braze": taker("r3:braze", EMAIL), "r4:braze": taker("r4:braze", PHONE)}
    found = covered_by(failed(EMAIL, PHONE), marks, named)
    assert found == [
        {"request_id": "r3", "job_id": "r3:braze", "completed_at": "2026-12-04T10:00:03Z",
         "purposes": ["sale"]},
        {"request_id": "r4", "job_id": "r4:braze", "completed_at": "2026-12-04T10:00:04Z",
         "purposes": ["sale"]},
    ]  # fmt: skip


def test_a_flight_the_mark_still_names_the_failed_job_for_is_not_delivered() -> None:
    marks = {EMAIL_PK: {"job_sale": "r3:braze"}, PHONE_PK: {"job_sale": "r1:braze"}}
    named = {"r3:braze": taker("r3:braze", EMAIL)}
    assert covered_by(failed(EMAIL, PHONE), marks, named) is None


def test_one_purpose_of_a_flight_not_taken_over_is_not_delivered() -> None:
    marks = {EMAIL_PK: {"job_sale": "r3:braze", "job_share": "r1:braze"}}
    named = {"r3:braze": taker("r3:braze", EMAIL)}
    assert covered_by(failed(EMAIL, purposes=("sale", "share")), marks, named) is None


def test_a_taker_not_done_or_that_did_not_take_the_identity_delivers_nothing() -> None:
    marks = {EMAIL_PK: {"job_sale": "r3:braze"}}
    pending = taker("r3:braze", EMAIL) | {"status": "pending"}
    refused = taker("r3:braze", EMAIL, identifier_types_rejected=["email"])
    other_type = taker("r3:braze", EMAIL, PHONE, identifier_types_sent=["phone"])
    unsent = taker("r3:braze", EMAIL, identities_not_sent=[EMAIL_PK])
    for job in (pending, refused, other_type, unsent):
        assert covered_by(failed(EMAIL), marks, {"r3:braze": job}) is None


def test_a_job_that_held_no_flight_is_not_delivered() -> None:
    assert covered_by(failed(), {}, {}) is None
