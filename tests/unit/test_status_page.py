"""The consumer's status page says, in words, what happened to the request."""

import re
from html import escape
from pathlib import Path
from typing import Any, get_args

import pytest

from optout.api_models import DenialCode
from optout.deadlines import PLACE_NAMES, STANDARD_OFFSET_HOURS, STATE_NAMES
from optout.webform_pages import (
    ALL_RETIRED,
    COMPLETED_IN_PART,
    DENIAL_REASONS,
    DENIED_AFTER_SYSTEMS,
    RELOAD,
    back_link,
    confirmation_page,
    error_page,
    status_page,
)

RID = "6b1f0c3e-2d4a-4b5c-9e8f-7a6b5c4d3e2f"


def denied(done: int, total: int) -> dict[str, Any]:
    return {"request_id": RID, "status": "denied", "received_at": "2026-11-30T09:00:00Z",
            "deadline": "2026-12-21", "systems_done": done, "systems_total": total,
            "systems_failed": 0}  # fmt: skip


def test_a_denied_request_its_systems_then_processed_does_not_say_nothing_was_done() -> None:
    # Given a denied request whose six jobs, already sent, then all completed (a deny is
    # refused once any system confirmed, so they processed it after the denial)
    # When its status page is rendered
    page = status_page(denied(6, 6))
    # Then it says the systems that processed it keep the opt-out, never "could not act",
    # and nothing that puts their processing before the denial (review s16 drill F11)
    assert "could not act" not in page
    assert "Systems that processed it keep your opt-out." in page
    assert "already" not in page and "had " not in page
    assert "6 of 6 done" in page
    # ... nor that nothing more will be done: a replay re-sends its failed jobs (s26 counsel F6)
    assert "further" not in page


def test_a_denial_no_system_acted_on_says_we_could_not_act() -> None:
    # Given a request denied whose every system has failed for good
    # When its status page is rendered
    page = status_page({**denied(0, 6), "systems_failed": 6})
    # Then it says we could not act on it
    assert "Denied: we could not act on this request" in page


@pytest.mark.parametrize(("done", "failed"), [(0, 6), (6, 0), (0, 0)])
def test_a_denied_page_shows_the_reason_it_says_it_gives(done: int, failed: int) -> None:
    # Given a request denied as suspected fraud (the JSON answer carries the code)
    status = {**denied(done, 6), "systems_failed": failed, "denial_reason": "suspected_fraud"}
    # When its status page is rendered
    page = status_page(status)
    # Then the reason is on the page, and the page promises no later explanation that nothing
    # sends (review s22 proof P3)
    assert "<dt>Reason</dt><dd>we believe in good faith that the request is fraudulent</dd>" in page
    assert "will tell you why" not in page and "for the reason shown below" in page
    # ... nor a date it is "to be completed by": it will not be (review s22 proof P3)
    assert "To be completed by" not in page


def test_a_denial_with_systems_still_to_answer_claims_neither_way() -> None:
    # Given a request denied while its jobs were in flight: the public answer counts no
    # progress (review s20 diff D1), and those jobs may still act on it
    page = status_page(denied(0, 6))
    # Then it neither says we could not act nor shows a count of systems done
    assert "could not act" not in page
    assert "Systems that processed it keep your opt-out." in page
    assert "6 to confirm" in page and "of 6 done" not in page


@pytest.mark.parametrize("state", ["processing", "denied"])
def test_systems_still_to_answer_read_alike_processing_or_denied(state: str) -> None:
    # Given a request with six systems still to answer: its total may hold systems this
    # request never asked (quiet ones, or ones an earlier request's jobs hold), so "6 asked"
    # was untrue of a denied repeat, and a first and a repeat request must read alike
    # (review s22 diff B5)
    page = status_page({**denied(0, 6), "status": state})
    # Then both say how many are to confirm it, neither how many were asked
    assert "<dt>Systems</dt><dd>6 to confirm</dd>" in page and "asked" not in page


@pytest.mark.parametrize(
    ("state", "done", "failed"),
    [("received", 0, 0), ("processing", 0, 0), ("completed", 6, 0), ("failed", 5, 1)],
)
def test_only_a_denied_page_has_a_reason_row(state: str, done: int, failed: int) -> None:
    # Given a request that is not denied, even one whose answer carried a reason code
    status = {**denied(done, 6), "status": state, "systems_failed": failed,
              "denial_reason": "other", "completed_at": "2026-12-01T09:00:00Z"}  # fmt: skip
    # When its status page is rendered
    page = status_page(status)
    # Then it shows no Reason row and no reason words (review s22 diff B10)
    assert "<dt>Reason</dt>" not in page and "another reason" not in page


def test_a_reason_code_the_page_has_no_words_for_is_shown_escaped() -> None:
    # A code with no words is shown as it is, as text, never as markup (review s22 diff B10)
    page = status_page({**denied(0, 6), "systems_failed": 6, "denial_reason": "<b>x</b>&"})
    assert "<dt>Reason</dt><dd>&lt;b&gt;x&lt;/b&gt;&amp;</dd>" in page and "<b>x" not in page


def test_every_denial_code_has_words_and_other_names_no_list_the_person_never_saw() -> None:
    # A new DenialCode without words would show raw on the page (review s22 diff B10)
    assert set(get_args(DenialCode)) == set(DENIAL_REASONS)
    # "a reason other than these: fraud, ..." named options the person never saw (B2)
    page = status_page({**denied(0, 6), "systems_failed": 6, "denial_reason": "other"})
    assert "<dt>Reason</dt><dd>another reason</dd>" in page and "these" not in page


def test_the_webforms_copy_of_the_denial_reasons_reads_as_the_page() -> None:
    # "Check now" (web/privacy.js) shows the reason in the page's words (review s22 diff B6)
    script = (Path(__file__).parents[2] / "web" / "privacy.js").read_text()
    copy = dict(re.findall(r'^  (\w+): "([^"]*)",$', script, re.MULTILINE))
    assert copy == DENIAL_REASONS


@pytest.mark.parametrize("state", ["received", "processing", "completed", "failed", "denied"])
def test_a_status_page_title_does_not_call_every_request_an_opt_out(state: str) -> None:
    # A request may only limit the use of sensitive data (no opt-out), and the public answer
    # does not name the purposes: the title is neutral (review s22 diff B3)
    page = status_page({**denied(6, 6), "status": state, "completed_at": "2026-12-01T09:00:00Z"})
    assert "<title>Your request</title>" in page and "<h1>Your request</h1>" in page
    assert "opt-out request" not in page


def test_a_refused_form_is_not_called_an_opt_out() -> None:
    # The refused form may have asked only to limit the use of sensitive data (B3)
    page = error_page("email is not valid", "email", "")
    assert "<title>Request not sent</title>" in page
    assert "<h1>We could not send your request</h1>" in page and "opt-out" not in page


def test_the_refresh_link_is_relative_and_the_privacy_link_is_the_configured_page() -> None:
    # A page under an execute-api stage (/prod/v1/requests/{id}) must refresh to itself
    page = status_page(denied(0, 6), "https://shop.example.com/privacy")
    assert f'<a href="{RID}">Refresh this page</a>' in page
    assert 'href="/v1/requests/' not in page
    assert '<a href="https://shop.example.com/privacy">Back to your privacy choices</a>' in page
    # ... and with no privacy page configured, no link to a page the API does not serve
    assert "Back to your privacy choices" not in status_page(denied(0, 6))


def test_a_request_no_system_needed_to_act_on_does_not_claim_every_system_processed_it() -> None:
    # Given a completed request with no system (an opt-in, or a choice that opts out of nothing)
    nothing = {**denied(0, 0), "status": "completed", "completed_at": "2026-11-30T09:00:01Z"}
    # When its status page is rendered
    page = status_page(nothing)
    # Then it says the choice was recorded and no system needed to act
    assert "every system" not in page
    assert "No system that uses the details you gave us needed to act on it" in page
    assert "none yet" not in page
    # ... is not called an opt-out request, and has no deadline to meet
    assert "Your privacy choice" in page and "opt-out request" not in page
    assert "To be completed by" not in page


@pytest.mark.parametrize("state", ["completed", "denied"])
def test_a_request_whose_systems_were_all_retired_does_not_say_none_was_needed(state: str) -> None:
    # Given a settled request none of whose systems confirmed before an operator retired them
    # (no longer used): the answer counts none of them, as for a request that needed none
    retired = {**denied(0, 0), "status": state, "systems_retired": 2}
    # When its status page is rendered
    page = status_page(retired)
    # Then it says they are no longer in use, not that none needed to act (review s22 diff B7)
    assert "<dt>Systems</dt><dd>2 no longer in use</dd>" in page
    assert "needed" not in page and "Your privacy choice" not in page
    assert (ALL_RETIRED in page) is (state == "completed")
    # ... and a denied one does not say nothing was done: its jobs were sent (review s23 B3)
    assert (DENIED_AFTER_SYSTEMS in page) is (state == "denied")
    # ... while one still to be resolved reads none yet
    assert "<dd>none yet</dd>" in status_page({**retired, "status": "received"})


def test_a_completed_request_claims_only_the_systems_that_use_the_details_given() -> None:
    # The public status leaves out systems reached only through linked details
    done = {**denied(4, 4), "status": "completed", "completed_at": "2026-11-30T09:00:01Z"}
    assert "Every system that uses the details you gave us" in status_page(done)


def test_a_completed_request_a_system_did_not_take_a_detail_of_does_not_say_every_one_did() -> None:
    # Given a completed request one of whose systems refused a detail given, or could not
    # match it so it was never sent (review s26 counsel F2, F3)
    done = {**denied(4, 4), "status": "completed", "completed_at": "2026-11-30T09:00:01Z"}
    # When its page is rendered
    page = status_page(done | {"systems_in_part": 1})
    # Then it says in part, and not that every system has processed the request
    assert escape(COMPLETED_IN_PART) in page
    assert "every system that uses the details you gave us has processed" not in page
    assert "4 of 4 done" in page  # the counts stay: each system is done with what it took
    # ... while a request every system took every detail of reads as before
    assert escape(COMPLETED_IN_PART) not in status_page(done | {"systems_in_part": 0})


def test_a_completed_page_claims_no_detail_was_processed_nor_that_a_vendor_refused_one() -> None:
    # Given a completed request: the public page says "in part" only for a detail never sent
    # for lack of a form, so a plain "Completed" may be one a vendor refused a detail of (the
    # UID2 operator's "opted out"), which the page must not tell (review s27 stranger F2)
    done = {**denied(4, 4), "status": "completed", "completed_at": "2026-11-30T09:00:01Z"}
    whole, part = status_page(done), status_page(done | {"systems_in_part": 1})
    # Then neither says every system processed the request (counsel: no page may claim every
    # detail was processed when it was not), and "in part" names no refusal
    for page in (whole, part):
        assert "processed your request" not in page and "processed it" not in page
    assert "has answered, for this request or an earlier one" in whole and "refused" not in part
    assert "has no way to match one of them" in part


def test_every_completed_page_says_a_system_may_not_take_every_detail() -> None:
    # Given completed requests, in whole and in part (review s28 L3): a system the quiet period
    # or an earlier request's receipt settled was not asked this time, and a vendor may have
    # refused a detail (which the page must not tell: review s27 stranger F2)
    done = {**denied(4, 4), "status": "completed", "completed_at": "2026-11-30T09:00:01Z"}
    whole, part = status_page(done), status_page(done | {"systems_in_part": 1})
    note = (
        "A system may not hold, or may not accept, every detail you gave us; we keep a record "
        "of what each one did."
    )
    # Then both carry the same general sentence, and neither says every system answered it
    for page in (whole, part):
        assert escape(note) in page
        assert "has answered it" not in page and "answered your request" not in page
        assert "for this request or an earlier one" in page
    # ... which pages that are not completed do not carry
    for state in ("received", "processing", "failed"):
        assert escape(note) not in status_page({**done, "status": state, "completed_at": None})


def test_a_denied_requests_failed_system_is_not_done_not_not_yet() -> None:
    page = status_page({**denied(5, 6), "systems_failed": 1})
    assert "5 of 6 done, 1 not done" in page and "not yet" not in page


def test_a_request_denied_before_any_system_was_asked_says_none_will_be() -> None:
    # Given a request denied before it was resolved: the resolver asks no system (review s22
    # diff B1), so it has none, now or later
    page = status_page(denied(0, 0))
    # Then the page says we could not act, with no system, and none "yet"
    assert "Denied: we could not act on this request" in page
    assert "<dt>Systems</dt><dd>none</dd>" in page and "none yet" not in page
    # ... while a request still received reads "none yet"
    received = status_page({**denied(0, 0), "status": "received"})
    assert "<dt>Systems</dt><dd>none yet</dd>" in received


def test_a_refused_token_asks_to_reload_the_page_not_to_give_an_identifier() -> None:
    page = error_page("identity_token has expired", "identity_token", "")
    assert RELOAD in page and "Give at least one of" not in page


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("the request could not be recorded just now: send it again", None),  # a busy store
        ("Idempotency-Key was already used for a different request", "Idempotency-Key"),
        ("the body exceeds 16384 bytes", "body"),
        ("purposes[0] must be one of: sale, share", "purposes[0]"),
    ],
)
def test_a_refusal_that_is_not_about_who_is_named_does_not_ask_for_an_identifier(
    message: str, field: str | None
) -> None:
    # review s22 proof P2: a person who gave their email read "Give at least one of: email
    # address…" under a busy store's 503
    page = error_page(message, field, "")
    assert RELOAD in page and "Give at least one of" not in page


@pytest.mark.parametrize("field", ["email", "phone", "customer_id"])
def test_a_refused_or_missing_identifier_asks_for_one(field: str) -> None:
    page = error_page(f"{field} is not valid", field, "")
    assert "Give at least one of" in page and RELOAD not in page


def test_the_dates_name_the_calendar_the_deadline_counts_in() -> None:
    # review s18 time T5: received at 23:30 PST on 30 November (07:30 UTC on 1 December);
    # its deadline counts from 30 November in California, which the requester stated
    status = denied(0, 1) | {
        "status": "processing", "received_at": "2026-12-01T07:30:00.000Z",
        "deadline": "2026-12-21", "deadline_jurisdiction": "US-CA", "jurisdiction_stated": True,
    }  # fmt: skip
    page = status_page(status)
    assert "<dt>To be completed by</dt><dd>2026-12-21 (California time)</dd>" in page
    assert "<dt>Received</dt><dd>2026-11-30 (California time), at 2026-12-01 07:30 UTC</dd>" in page
    # a stated state without a rule of its own is named in full (review s19 law L3)
    page = status_page(status | {"deadline_jurisdiction": "US-NY"})
    assert "2026-12-21 (New York time)" in page and "2026-12-01 (New York time)" in page
    assert "US-NY" not in page
    # a request stored before the calendar was kept: the dates alone, as before
    page = status_page({k: v for k, v in status.items() if k != "deadline_jurisdiction"})
    assert "<dd>2026-12-21</dd>" in page and "<dd>2026-12-01 07:30 UTC</dd>" in page


def test_the_place_names_cover_every_code_with_an_offset_and_agree_with_the_laws() -> None:
    # A place is not a law: the zone names are every code the deadlines read a date in
    assert set(PLACE_NAMES) == set(STANDARD_OFFSET_HOURS)
    assert all(PLACE_NAMES[code] == name for code, name in STATE_NAMES.items())


@pytest.mark.parametrize("code", sorted(STANDARD_OFFSET_HOURS))
def test_every_stated_code_with_an_offset_is_named_in_full(code: str) -> None:
    answer = {"request_id": RID, "deadline": "2026-12-21", "deadline_jurisdiction": code,
              "jurisdiction_stated": True}  # fmt: skip
    page = confirmation_page(answer)
    assert f"({code} time)" not in page
    assert f"by <strong>2026-12-21 ({escape(PLACE_NAMES[code])} time)</strong>" in page


def test_a_page_never_names_a_geolocated_state() -> None:
    # review s18 diff C3: a Hawaiian request at 08:30 UTC on a weekday was counted in
    # Hawaii's calendar; the page tells a holder of the request id no location
    status = denied(0, 1) | {
        "status": "processing", "received_at": "2026-12-01T08:30:00.000Z",
        "deadline": "2026-12-21", "deadline_jurisdiction": "US-HI", "jurisdiction_stated": False,
    }  # fmt: skip
    page = status_page(status)
    assert "Hawaii" not in page and "US-HI" not in page
    assert "<dt>To be completed by</dt><dd>2026-12-21 (a US state&#x27;s date)</dd>" in page
    assert "<dt>Received</dt><dd>2026-12-01 08:30 UTC</dd>" in page


def test_a_code_with_no_offset_of_its_own_names_no_zone() -> None:
    # review s18 diff C2: DE is read at UTC-10, so "(DE time)" named a zone it was not read in
    for code in ("DE", "US-UM", "XX"):
        status = denied(0, 1) | {
            "status": "processing", "received_at": "2026-11-29T09:00:00.000Z",
            "deadline": "2026-12-18", "deadline_jurisdiction": code, "jurisdiction_stated": True,
        }  # fmt: skip
        page = status_page(status)
        assert f"{code} time" not in page
        assert "<dd>2026-12-18 (a US state&#x27;s date)</dd>" in page
        assert "<dt>Received</dt><dd>2026-11-29 09:00 UTC</dd>" in page


def test_the_confirmation_page_names_the_deadlines_calendar_only_when_stated() -> None:
    answer = {"request_id": RID, "deadline": "2026-12-21", "deadline_jurisdiction": "US-TX"}
    stated = answer | {"jurisdiction_stated": True}
    assert "by <strong>2026-12-21 (Texas time)</strong>" in confirmation_page(stated)
    assert "by <strong>2026-12-21 (a US state&#x27;s date)</strong>" in confirmation_page(answer)
    before = {"request_id": RID, "deadline": "2026-12-21"}  # stored before the calendar was
    assert "by <strong>2026-12-21</strong>" in confirmation_page(before)


@pytest.mark.parametrize("referer", ["https://[::1/", "https://shop.example]/", "https://[x]/"])
def test_a_referer_urlsplit_refuses_gets_no_back_link_and_raises_nothing(referer: str) -> None:
    # review s21 py313: a stranger's Referer raised ValueError out of the capture handler
    assert back_link(referer, ("https://shop.example",), privacy_page="") == ""


def test_a_processing_request_claims_no_sending_a_repeat_never_needed() -> None:
    # review s22 proof R1: a repeat held back while the earlier answers it relies on are
    # replayed (status.replayed_until) reads exactly as a first request; "we are telling every
    # system" and "6 to reach" were untrue of it, so the words claim what is true of both
    status = denied(0, 6) | {"status": "processing", "received_at": "2026-12-01T08:30:00.000Z",
                             "deadline": "2026-12-21"}  # fmt: skip
    page = status_page(status)
    assert "<dt>Systems</dt><dd>6 to confirm</dd>" in page
    assert "making sure every system that holds your data has it" in page
    assert "telling" not in page and "to reach" not in page
