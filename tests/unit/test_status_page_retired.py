"""A request settled after one of its systems was retired says so on its page: its counts
leave the retired system out, and "every system ... has answered" was all it read (review s31
counsel F7; s30 operator F3). Plain words, no system named."""

from html import unescape
from typing import Any

import pytest

from optout.webform_pages import STATUS_TEXT, status_page

RID = "5f0c8b7e-2a41-4c3e-9d6b-0123456789ab"


def settled(state: str, done: int, total: int, failed: int = 0, retired: int = 0) -> dict[str, Any]:
    return {"request_id": RID, "status": state, "received_at": "2026-11-30T09:00:00Z",
            "deadline": "2026-12-21", "completed_at": "2026-11-30T10:00:00Z",
            "systems_done": done, "systems_total": total, "systems_failed": failed,
            "systems_retired": retired}  # fmt: skip


def test_a_completed_request_one_of_whose_systems_was_retired_says_so() -> None:
    # Given a request sent to six systems, five done, the sixth retired before it confirmed
    page = unescape(status_page(settled("completed", 5, 5, retired=1)))
    # Then the page says a system was no longer used before it confirmed, and counts it
    assert (
        "We also stopped using 1 system that held details you gave us before it confirmed" in page
    )
    assert "nothing is left to ask" in page
    assert "<dt>Systems</dt><dd>5 of 5 done, 1 no longer in use</dd>" in page


@pytest.mark.parametrize(("retired", "words"), [(2, "2 systems"), (3, "3 systems")])
def test_several_retired_systems_are_counted_in_words(retired: int, words: str) -> None:
    page = unescape(status_page(settled("completed", 3, 3, retired=retired)))
    assert f"We also stopped using {words} that held details you gave us before they" in page


def test_a_request_with_no_retired_system_reads_as_before() -> None:
    page = unescape(status_page(settled("completed", 6, 6)))
    assert STATUS_TEXT["completed"] in page and "stopped using" not in page
    assert "<dd>6 of 6 done</dd>" in page


def test_a_failed_request_with_a_retired_system_says_so_too() -> None:
    page = unescape(status_page(settled("failed", 4, 5, failed=1, retired=1)))
    assert STATUS_TEXT["failed"] in page and "We also stopped using 1 system" in page
