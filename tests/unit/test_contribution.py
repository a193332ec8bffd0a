"""What one request adds to the §7102 figures (optout.ops.contribution.contribution_of)."""

from typing import Any

from optout.ops.contribution import contribution_of

RID = "2d5f8922-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
EARLIER = "9cba3332-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
PK = f"REQ#{RID}"
EVENT = {
    "pk": PK, "sk": "EVENT", "request_id": RID, "event_type": "opt_out", "source": "webform",
    "received_at": "2026-11-30T15:44:46.317Z", "deadline": "2026-12-21",
    "opt_out": {"sale": True, "share": True},
}  # fmt: skip
RESOLUTION = {
    "pk": PK, "sk": "RESOLUTION", "resolved_at": "2026-11-30T15:44:46.500Z", "jobs_total": 1,
    "covered": {"meta": [f"{EARLIER}:meta"]}, "proof_rule": 2,
}  # fmt: skip


def _job(request_id: str, system: str, status: str, completed_at: str) -> dict[str, Any]:
    return {"pk": f"REQ#{request_id}", "sk": f"JOB#{system}", "job_id": f"{request_id}:{system}",
            "request_id": request_id, "system": system, "status": status,
            "completed_at": completed_at}  # fmt: skip


def test_a_partial_compliance_proven_by_an_earlier_receipt_responds_after_its_own_receipt() -> None:
    # Given a request whose own Braze job failed for good, and whose only done system (Meta)
    # is proven by an earlier request's receipt, written before this request arrived
    braze = _job(RID, "braze", "failed", "2026-11-30T15:44:47.000Z")
    meta = _job(EARLIER, "meta", "done", "2026-11-30T15:44:38.052Z")
    covering = {(f"REQ#{EARLIER}", "JOB#meta"): meta}
    # When its §7102 contribution is computed
    found = contribution_of([EVENT, RESOLUTION, braze], covering)
    # Then it complied in part when the resolver found that receipt (after its arrival: one
    # hour, rounded up), not at the earlier receipt's time (0 h, before it existed)
    assert found is not None
    assert (found.outcome, found.hours) == ("complied_part", 1)


def test_a_request_that_needed_no_job_of_its_own_counts_only_as_a_repeat() -> None:
    # Given a request whose resolution made no job and cites an earlier request's receipt
    resolution = {**RESOLUTION, "jobs_total": 0}
    meta = _job(EARLIER, "meta", "done", "2026-11-30T15:44:38.052Z")
    covering = {(f"REQ#{EARLIER}", "JOB#meta"): meta}
    # When its contribution is computed
    found = contribution_of([EVENT, resolution], covering)
    # Then it adds one repeat and nothing else: no receipt, outcome, hours or system
    assert found is not None and found.repeat
    assert found.counters() == {"n.webform.repeat": 1}


def test_a_request_whose_one_vendor_just_found_no_such_person_counts_only_as_a_repeat() -> None:
    # Given a request that made no job and cites no receipt: its one system (Braze) was not
    # asked, because Braze answered an earlier request "no such person" an hour before (the
    # quiet period; a logged-in GPC visitor's next page view)
    resolution = {**RESOLUTION, "jobs_total": 0, "covered": {}, "not_asked": {"braze": [
        {"job_id": f"{EARLIER}:braze", "answered_at": "2026-11-30T14:44:46.000Z"}]}}  # fmt: skip
    # When its contribution is computed
    found = contribution_of([EVENT, resolution], {})
    # Then it adds one repeat and nothing else (not a request received and complied with at
    # no system, once per page view)
    assert found is not None and found.repeat
    assert found.counters() == {"n.webform.repeat": 1}


def test_a_request_reopened_for_a_job_of_its_own_is_no_repeat() -> None:
    # Given a request whose resolution made no job and cited an earlier request's Meta job,
    # which then found no such person, so the sweep's re-open gave it a Meta job of its own
    resolution = {**RESOLUTION, "jobs_total": 0}
    cited = _job(EARLIER, "meta", "no_record", "2026-11-30T15:44:48.000Z")
    own = _job(RID, "meta", "done", "2026-11-30T16:05:00.000Z")
    # When its contribution is computed
    found = contribution_of([EVENT, resolution, own], {(f"REQ#{EARLIER}", "JOB#meta"): cited})
    # Then it counts as a request complied with on its own receipt, not as a repeat
    assert found is not None and not found.repeat
    assert (found.outcome, found.hours) == ("complied_whole", 1)


def test_a_denied_request_is_no_repeat_even_without_a_job_of_its_own() -> None:
    resolution = {**RESOLUTION, "jobs_total": 0}
    meta = _job(EARLIER, "meta", "processing", "")
    denial = {"pk": PK, "sk": "DENIAL", "denied_at": "2026-11-30T16:00:00.000Z"}
    found = contribution_of([EVENT, resolution, denial], {(f"REQ#{EARLIER}", "JOB#meta"): meta})
    assert found is not None and not found.repeat
    assert found.counters()["n.webform.denied"] == 1
