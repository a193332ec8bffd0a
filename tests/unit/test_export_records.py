"""An exported request's records build its systems' proofs and its status once (review s26
diff B F3: `contribution_of` built both again, ~3x the CPU per request), and say what the
helpers each give on their own: the same records as before."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from optout import status as status_module
from optout.ops import contribution as contribution_module
from optout.ops import export as export_module
from optout.ops.contribution import contribution_of
from optout.ops.export import answered_at, request_records
from optout.status import aggregate, not_taken, proofs

RID = "7c2e1d4f-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
EARLIER = "0a1b2c3d-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
NOW = datetime(2026, 12, 3, tzinfo=UTC)
EMAIL = {"type": "email", "key": "e1", "value": "x@example.com"}
CUSTOMER = {"type": "customer_id", "key": "c1", "value": "c-1"}
EVENT = {"pk": f"REQ#{RID}", "sk": "EVENT", "request_id": RID, "event_type": "opt_out",
         "source": "webform", "received_at": "2026-11-29T03:12:00.000Z", "deadline": "2026-12-18",
         "opt_out": {"sale": True, "share": True}, "identifiers": [EMAIL, CUSTOMER],
         "evidence": {"jurisdiction": "US-CA"}}  # fmt: skip
RESOLUTION = {"pk": f"REQ#{RID}", "sk": "RESOLUTION", "resolved_at": "2026-11-29T03:12:01.000Z",
              "proof_rule": 2, "jobs_total": 2}  # fmt: skip
NO_FORM = {"identifier_types_sent": [], "identifier_types_rejected": ["email"],
           "note": "email not sent: no Google form"}  # fmt: skip


def _job(
    system: str, status: str, receipt: dict[str, Any], request_id: str = RID
) -> dict[str, Any]:
    return {"pk": f"REQ#{request_id}", "sk": f"JOB#{system}", "job_id": f"{request_id}:{system}",
            "request_id": request_id, "system": system, "status": status,
            "created_at": "2026-11-29T03:12:01.000Z", "completed_at": "2026-11-29T03:12:05.000Z",
            "identifiers": [EMAIL, CUSTOMER] if request_id == RID else [EMAIL],
            "receipt": receipt}  # fmt: skip


def _cases() -> dict[str, tuple[list[dict[str, Any]], dict[tuple[str, str], dict[str, Any]]]]:
    both = {"identifier_types_sent": ["customer_id", "email"]}
    refused = {"identifier_types_sent": ["customer_id"], "identifier_types_rejected": ["email"]}
    quiet_job = _job("google_ads", "no_record", NO_FORM, EARLIER)
    entry = {"job_id": f"{EARLIER}:google_ads", "answered_at": "2026-11-29T03:12:06.000Z"}
    quiet = RESOLUTION | {"not_asked": {"google_ads": [entry]}}
    cited = _job("meta", "done", {"identifier_types_sent": ["email"]}, EARLIER)
    return {
        "whole": ([EVENT, RESOLUTION, _job("braze", "done", both), _job("segment", "done", both)],
                  {}),
        "refused": ([EVENT, RESOLUTION, _job("braze", "done", refused)], {}),
        "quiet, sent nothing": ([EVENT, quiet, _job("braze", "done", both)],
                                {(quiet_job["pk"], quiet_job["sk"]): quiet_job}),
        "cited": ([EVENT, RESOLUTION | {"covered": {"meta": [f"{EARLIER}:meta"]}},
                   _job("braze", "done", both)], {(cited["pk"], cited["sk"]): cited}),
        "failed in part": ([EVENT, RESOLUTION, _job("braze", "done", both),
                            _job("segment", "failed", {"error": "400"})], {}),
        "processing": ([EVENT, RESOLUTION, _job("braze", "pending", {})], {}),
        "received": ([EVENT], {}),
    }  # fmt: skip


@pytest.mark.parametrize("case", list(_cases()))
def test_an_exported_request_says_what_each_helper_gives_on_its_own(case: str) -> None:
    items, covering = _cases()[case]
    (request, *_) = request_records(RID, items, covering, NOW)
    # the status, the §7102 outcome and the parts not taken, each as its helper alone gives it
    status = aggregate(RID, items, covering)
    counted = contribution_of(items, covering)
    assert status is not None and counted is not None
    dumped = status.model_dump(exclude={"request_id", "received_at", "deadline"})
    assert {k: request[k] for k in dumped} == dumped, case
    assert request["outcome"] == counted.outcome, case
    assert request["answered_at"] == answered_at(status, None, counted.responded_at), case
    assert request["not_taken"] == not_taken(proofs(items, covering)), case
    # and the contribution given the export's status and proofs is the one it builds itself
    every = proofs(items, covering)
    assert contribution_of(items, covering, status, every) == counted, case
    shared = aggregate(RID, items, covering, every=every)
    assert shared is not None
    assert shared.model_dump() == status.model_dump()
    assert shared.page_fields() == status.page_fields()


def _counting(calls: list[str], name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real(*args, **kwargs)

    return counted


def test_an_exported_request_builds_its_proofs_and_its_status_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a completed request, and every module's way to its proofs and status counted
    items, covering = _cases()["quiet, sent nothing"]
    calls: list[str] = []
    counted_proofs = _counting(calls, "proofs", proofs)
    for module in (status_module, export_module, contribution_module):
        monkeypatch.setattr(module, "proofs", counted_proofs)
    for module in (export_module, contribution_module):
        monkeypatch.setattr(module, "aggregate", _counting(calls, "aggregate", aggregate))
    # When it is exported
    request_records(RID, items, covering, NOW)
    # Then each is built once (it was proofs 4 times and the status twice: review s26 diff B F3)
    assert sorted(calls) == ["aggregate", "proofs"]
