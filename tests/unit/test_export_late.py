"""Whether an exported request is `late` (optout.ops.export.is_late): answered after its
deadline's day, or not answered and that day has passed; days in UTC, as the watch counts."""

from datetime import date
from typing import Any

import pytest

from optout.api_models import RequestStatusOut
from optout.ops.export import is_late

DEADLINE = "2026-12-21"


def status(state: str, **times: Any) -> RequestStatusOut:
    return RequestStatusOut(request_id="r", status=state, received_at="2026-11-30T18:00:00Z",  # type: ignore[arg-type]
                            deadline=DEADLINE, systems_total=1, systems_done=1,
                            systems_failed=0, **times)  # fmt: skip


@pytest.mark.parametrize(
    ("state", "times", "today", "late"),
    [
        # completed on its deadline day (UTC), or before it: not late, whenever exported
        ("completed", {"completed_at": "2026-12-21T23:59:59.999Z"}, date(2027, 6, 1), False),
        ("completed", {"completed_at": "2026-12-02T10:00:00Z"}, date(2026, 12, 3), False),
        # completed the day after: late, also when exported before its deadline passed
        ("completed", {"completed_at": "2026-12-22T00:00:00Z"}, date(2026, 12, 22), True),
        # an offset is read in UTC: 16:30 PST on the deadline day is the 22nd in UTC
        ("completed", {"completed_at": "2026-12-21T16:30:00-08:00"}, date(2027, 1, 5), True),
        # a denial is the answer: late when given after the deadline's day
        ("denied", {"denied_at": "2026-12-23T09:00:00Z"}, date(2027, 1, 5), True),
        ("denied", {"denied_at": "2026-12-10T09:00:00Z"}, date(2027, 1, 5), False),
        # not answered (received, processing, failed): late once its deadline's day has passed
        ("processing", {}, date(2026, 12, 21), False),
        ("processing", {}, date(2026, 12, 22), True),
        ("failed", {}, date(2026, 12, 22), True),
        ("received", {}, date(2026, 12, 1), False),
    ],
)
def test_a_request_is_late_when_answered_after_its_deadline_or_still_open_past_it(
    state: str, times: dict[str, str], today: date, late: bool
) -> None:
    assert is_late(status(state, **times), today) is late
