"""The consumer's status page says, in words, what happened to the request."""

from typing import Any

from optout.webform_pages import status_page

RID = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"


def denied(done: int, total: int) -> dict[str, Any]:
    return {"request_id": RID, "status": "denied", "received_at": "2026-11-30T09:00:00Z",
            "deadline": "2026-12-21", "systems_done": done, "systems_total": total,
            "systems_failed": 0}  # fmt: skip


def test_a_denial_after_every_system_confirmed_does_not_say_nothing_was_done() -> None:
    # Given a request denied after its six systems had confirmed it
    # When its status page is rendered
    page = status_page(denied(6, 6))
    # Then it says the systems that processed it keep the opt-out, never "could not act"
    assert "could not act" not in page
    assert "already processed it keep your opt-out" in page
    assert "6 of 6 done" in page


def test_a_denial_before_any_system_acted_says_we_could_not_act() -> None:
    # Given a request denied before any system confirmed it
    # When its status page is rendered
    page = status_page(denied(0, 6))
    # Then it says we could not act on it
    assert "Denied: we could not act on this request" in page
