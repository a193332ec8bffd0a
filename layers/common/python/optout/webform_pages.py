"""HTML answers for people, not scripts: the no-JavaScript webform's confirmation and error
pages, and the readable status page a person gets when they open their status link.

A browser that posted the plain form, or clicked the status link, expects a page, not JSON
(CCPA §7026: the method must be easy to use; a way to confirm the opt-out was processed).
Every value shown is escaped; identifier values are never shown back. Every page carries
`HTML_HEADERS`: a strict Content-Security-Policy (no script at all, only this module's own
stylesheet, never framed), `nosniff` and no referrer (the status URL holds the request id).
"""

import base64
import hashlib
from datetime import datetime
from html import escape
from typing import Any, Final
from urllib.parse import urlunsplit

from optout.deadlines import PLACE_NAMES, STANDARD_OFFSET_HOURS, received_on
from optout.evidence import split_url
from optout.identifier_text import holds_identifier

STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
    "color:#1f2937}h1{font-size:1.5rem}a{color:#1d4ed8}.error{color:#b91c1c}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}"
    "dd{margin:0}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

HTML_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# On every completed page, whatever happened, so it tells nothing about the details given: a
# vendor may hold no record of a detail or refuse it, and a plain "Completed" may be such a
# request (review s28 L3; the public page must not say which: review s27 stranger F2).
DETAILS_NOTE: Final = (
    "A system may not hold, or may not accept, every detail you gave us; we keep a record of "
    "what each one did."
)
# What each request status means to the person who made the request.
STATUS_TEXT: Final[dict[str, str]] = {
    "received": "Received: we have your request and are starting on it.",
    # Also what a repeat reads while the earlier answers it relies on are held back (status.
    # replayed_until): "telling" would be untrue there, "making sure" is true of both (review
    # s22 proof R1); the two must read alike.
    "processing": "In progress: we are making sure every system that holds your data has it.",
    # The public status leaves out systems reached only through details linked to the ones
    # given (status.aggregate): the sentence claims no more than it covers. Nor does it say
    # each detail was processed: a vendor may have refused one (a UID2 opt-out), which the
    # public page must not tell (status.SystemProof.unformed; review s27 stranger F2). "Or an
    # earlier one": a system the quiet period or an earlier request's receipt settles was not
    # asked again (review s28 L3). The last sentence is on every completed page alike.
    "completed": (
        "Completed: we have finished with your request. Every system that uses the details "
        "you gave us has answered, for this request or an earlier one. " + DETAILS_NOTE
    ),
    "failed": (
        "Not complete: at least one system could not process your request yet. We keep a "
        "record of it and follow it up."
    ),
    # True of a denial before any system was asked: the resolver then asks none (review s22
    # diff B1); one that lands after some were asked reads DENIED_AFTER_SYSTEMS.
    "denied": "Denied: we could not act on this request, for the reason shown below.",
}
# A request done everywhere, where at least one system has no form of one of the details given
# it can match (a Gmail address of "+news" alone for Google), so it was never sent (review s26
# counsel F2, F3): what the details' text alone decides. A detail a vendor refused (Braze
# refusing the email it took the customer number with, the UID2 operator answering that an
# email opted out of UID2) reads plain "Completed": the vendor's answer tells of data it holds,
# and anyone may file a request naming someone's email beside their own phone (review s27
# stranger F2). Operators, the exports and the §7102 figures count both. Names no detail.
COMPLETED_IN_PART: Final = (
    "Completed in part: we have finished with your request, but at least one system that uses "
    "the details you gave us has no way to match one of them, so it was never sent there and "
    "your opt-out does not reach that system through that detail. Every other system has "
    "answered, for this request or an earlier one. " + DETAILS_NOTE
)
# A request that needed no system (a choice that opts out of nothing, such as an opt-in):
# "every system has processed it" would claim work that was never asked of any.
# (Like every public status, it speaks for the systems that use the details given.)
NOTHING_TO_DO: Final = (
    "Completed: we recorded your choice. No system that uses the details you gave us needed "
    "to act on it."
)
# A request every system of which was retired (`optout retire`: no longer used) before it
# confirmed: those systems did need to act, so not NOTHING_TO_DO (review s22 diff B7). The JSON
# answer reads as a request that needed none (total 0); the page is told apart
# (RequestStatusOut.page_fields).
ALL_RETIRED: Final = (
    "Completed as far as we can: we stopped using the systems that held the details you gave "
    "us before they confirmed your request, so none is left to ask."
)
# A settled request some (not all) of whose systems were retired before they confirmed it: the
# counts and "every system ... has answered" leave them out, so the page says so plainly
# (review s31 counsel F7; s30 operator F3). No system named, as on the page's other texts.
SOME_RETIRED: Final = (
    "We also stopped using {n} that held details you gave us before {they} confirmed your "
    "request: we no longer send your details there, so nothing is left to ask."
)


def _retired_note(systems: int) -> str:
    one = systems == 1
    return SOME_RETIRED.format(n="1 system" if one else f"{systems} systems",
                               they="it" if one else "they")  # fmt: skip


# A denied request some systems processed opts no one back in: saying "we could not act"
# would be false for those systems. A deny is refused once any system confirmed, so they
# mostly processed it after the denial (jobs already sent complete): "had already processed
# it" would be false in time, so the text names no order (review s16 drill F11). Nor does it
# promise no further action: a replay re-sends a denied request's failed jobs (docs/decisions.md,
# review s26 counsel F6: "decided not to act further", then the replay acted).
DENIED_AFTER_SYSTEMS: Final = (
    "Denied: we declined this request, for the reason shown below. "
    "Systems that processed it keep your opt-out."
)
# A denial's reason code (api_models.DenialCode), in words: the page shows it, as the JSON
# answer does (CCPA §7026(e): tell the requester why). It said "we will tell you why", and
# nothing ever did: the product has no channel to the requester but this answer (review s22
# proof P3). The operator's own text stays in the operators' record.
DENIAL_REASONS: Final[dict[str, str]] = {
    "suspected_fraud": "we believe in good faith that the request is fraudulent",
    "not_a_consumer": "the request was not made by or for a consumer",
    "outside_jurisdiction": "the request is not covered by the privacy laws we follow",
    # "a reason other than these: fraud, ..." named options the person never saw (review s22
    # diff B2). The code alone may not be the explanation §7026(e) asks for: docs/operations.md
    # has the operator reach the person.
    "other": "another reason",
}


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8>"
        f'<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style><main>{body}</main></html>"
    )


GPC_HONORED: Final = (
    "<p><strong>Opt-Out Request Honored</strong>: your browser's Global Privacy Control "
    "signal also opts you out of sale, sharing and targeted advertising.</p>"
)


# A request only to limit the use of sensitive data (CCPA §7027) is not an opt-out of sale or
# sharing: "your opt-out request" named what the person did not ask for (review s22 proof R4).
LIMIT_ONLY_HEADING: Final = (
    "We received your request to limit the use of your sensitive personal information"
)


def confirmation_page(answer: dict[str, Any], limit_only: bool = False) -> str:
    rid = escape(answer["request_id"])
    deadline = escape(_dated(answer["deadline"], answer))
    return _page(
        "Request received" if limit_only else "Opt-out received",
        f"<h1>{LIMIT_ONLY_HEADING if limit_only else 'We received your opt-out request'}</h1>"
        f"<p>Request ID: <strong>{rid}</strong></p>"
        f"<p>We will complete it by <strong>{deadline}</strong>.</p>"
        # A request that carried Sec-GPC: 1 says the signal was honoured (CCPA §7025), as the
        # banner does (web/banner.js): the page is where a no-JavaScript webform learns it.
        + (GPC_HONORED if answer.get("gpc_honored") else "")
        # Relative to the page's own URL (<base>/v1/opt-out), so the link keeps an execute-api
        # stage prefix (/prod/v1/...) as well as working behind the edge's own domain.
        + f'<p><a href="requests/{rid}">Check the status of your request</a></p>',
    )


NAME_SOMEONE: Final = (
    "Give at least one of: email address, phone number (with country code) or customer number."
)
RELOAD: Final = "Reload the page you came from and send the form again."
# A field sent twice (a form repeating `email`, say): the person did give it; an empty copy is
# not counted (review s30 stranger N1: NAME_SOMEONE was the advice).
ONCE: Final = (
    "Fill in that field once, leaving any second copy of it empty, and send the form again."
)
# The refusals NAME_SOMEONE answers: an identifier the form asks for, wrong or missing (a
# request naming no one is refused on `email`). Any other (a busy store's 503, a reused
# Idempotency-Key, a body too large, a purpose the form never offers) named the person: telling
# them to give an email they gave is untrue advice (review s22 proof P2).
IDENTIFIER_FIELDS: Final = frozenset({"email", "phone", "customer_id"})


def back_link(referer: str | None, origins: tuple[str, ...], privacy_page: str) -> str:
    """Where "Go back to the form" points: the configured privacy page; without one, the page
    that posted the form when it is on one of the sites allowed to use the API (a cross-site
    post must not make the business's page link to the poster's; and a browser sends only
    the origin on a cross-origin post, so the Referer is often just the home page); else "".
    The Referer's page only, without query or fragment (a `?email=` would be repeated on the
    page: review s17 PII L4), and the origin alone if its path holds an email or phone."""
    if privacy_page:
        return privacy_page
    parts = split_url(referer) if referer else None  # a stranger's Referer may not parse
    if parts is not None:
        origin = f"{parts.scheme}://{parts.netloc}"
        if parts.scheme in ("http", "https") and origin in origins:
            page = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
            named = any(holds_identifier(segment) for segment in parts.path.split("/"))
            return origin + "/" if named else page
    return ""


def _links(*links: tuple[str, str]) -> str:
    """A paragraph of the (href, text) links that have an href, or "" when none has."""
    shown = [f'<a href="{escape(href, quote=True)}">{text}</a>' for href, text in links if href]
    return f"<p>{' · '.join(shown)}</p>" if shown else ""


def error_page(message: str, field: str | None, back: str, *, repeated: bool = False) -> str:
    """`back`: back_link's answer; `repeated`: the refusal is of a field sent twice. Neutral
    words: the refused form may have asked only to limit the use of sensitive data, which is
    no opt-out (review s22 diff B3)."""
    where = f" (field: {escape(field)})" if field and field != "body" else ""
    advice = ONCE if repeated else NAME_SOMEONE if field in IDENTIFIER_FIELDS else RELOAD
    return _page(
        "Request not sent",
        "<h1>We could not send your request</h1>"
        f"<p class=error role=alert>{escape(message)}{where}</p>"
        f"<p>{advice}</p>" + _links((back, "Go back to the form")),
    )


def status_page(status: dict[str, Any], privacy_page: str = "") -> str:
    """The status of one request, in words: what `GET /v1/requests/{id}` answers as JSON.
    `privacy_page`: the site's privacy choices page (PRIVACY_PAGE_URL), "" for no link."""
    rid = escape(str(status["request_id"]))
    state = str(status["status"])
    done, total = int(status["systems_done"]), int(status["systems_total"])
    failed = int(status["systems_failed"])
    # A denied request is not acted on further (an operator's replay may still re-send its
    # failed jobs, which other requests may rely on): "not done", not "not yet".
    left = "not done" if state == "denied" else "not yet"
    # Systems still to answer: the public answer counts none of them (status.aggregate). Its
    # total may hold systems this request never asked (quiet ones, or ones held by an earlier
    # request's jobs), processing or denied alike: "asked" was untrue of those, and a first and
    # a repeat request must read alike (review s22 diff B5).
    unsettled = done + failed < total
    retired = int(status.get("systems_retired") or 0)
    if unsettled:
        systems = f"{total} to confirm"
    else:
        systems = f"{done} of {total} done" + (f", {failed} {left}" if failed else "")
        # retired ones are in neither count (status.aggregate): else "5 of 5" where 6 were sent
        systems += f", {retired} no longer in use" if retired and state != "denied" else ""
    # A request no system needed to act on (an opt-in, or a choice that opts out of nothing)
    # is a recorded choice, with no deadline to meet; one whose systems were all retired is not.
    choice_only = state == "completed" and not total and not retired
    # A denied request will not be completed: no date it is "to be completed by"
    dated = not choice_only and state != "denied"
    rows = [
        ("Request ID", rid),
        ("Status", escape(state)),
        ("Received", escape(_received(status))),
        *([("To be completed by", escape(_deadline(status)))] if dated else []),
        ("Systems", escape(systems) if total else _no_systems(state, choice_only, retired)),
    ]
    if status.get("completed_at"):
        rows.append(("Completed", escape(_when(status["completed_at"]))))
    if state == "denied":
        code = str(status.get("denial_reason") or "other")
        rows.append(("Reason", escape(DENIAL_REASONS.get(code, code))))
    details = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    if choice_only:
        text = NOTHING_TO_DO
    elif state == "completed" and not total:
        text = ALL_RETIRED
    elif state == "completed" and int(status.get("systems_in_part") or 0):
        text = COMPLETED_IN_PART
    else:
        # Denied with systems still to answer, or retired since they were sent it: jobs
        # already sent may yet act on it, so not "we could not act" (review s23 diff B3).
        denied_after = state == "denied" and (bool(done) or unsettled or retired > 0)
        text = DENIED_AFTER_SYSTEMS if denied_after else STATUS_TEXT.get(state, state)
    if retired and total and not unsettled and state in ("completed", "failed"):
        text += " " + _retired_note(retired)
    # The public answer does not name the purposes, and a request may only limit the use of
    # sensitive data, which is no opt-out: a neutral title (review s22 diff B3).
    title = "Your privacy choice" if choice_only else "Your request"
    return _page(
        title,
        f"<h1>{title}</h1>"
        f"<p>{escape(text)}</p>"
        f"<dl>{details}</dl>"
        # Relative: the page is <base>/v1/requests/{id}; <base> may hold an execute-api stage.
        + _links(
            (str(status["request_id"]), "Refresh this page"),
            (privacy_page, "Back to your privacy choices"),
        ),
    )


def _no_systems(state: str, choice_only: bool, retired: int) -> str:
    """The Systems row of a request that counts none: a denial found before the resolution
    asks none for good (the resolver honours it, review s22 diff B1), not "yet"; a settled
    request whose systems were all retired names them (review s22 diff B7)."""
    if choice_only:
        return "none needed"
    if retired and state in ("completed", "denied"):
        return f"{retired} no longer in use"
    return "none" if state == "denied" else "none yet"


def status_error_page(message: str, privacy_page: str = "", unavailable: bool = False) -> str:
    """`unavailable`: the service was busy (503), the link is fine: say to try again."""
    if unavailable:
        title, advice = "Try again in a moment", "<p>Your link is fine: open it again shortly.</p>"
    else:
        title = "Request not found"
        advice = "<p>Check the link you were given when you sent your request.</p>"
    return _page(
        title,
        "<h1>We could not show this request</h1>"
        f"<p class=error role=alert>{escape(message)}</p>"
        + advice
        + _links((privacy_page, "Back to your privacy choices")),
    )


# A deadline the requester did not state (geolocated, unknown) or whose code has no offset of
# its own (DE, US-UM: read at UTC-10) names no zone: a page shows no located state and no
# zone the date was not read in (review s18 diff C2, C3).
NEUTRAL_DATE: Final = "a US state's date"


def _zone(status: dict[str, Any]) -> str | None:
    """The stated jurisdiction whose own calendar the dates were read in, else None."""
    calendar = status.get("deadline_jurisdiction")
    if calendar and status.get("jurisdiction_stated") and calendar in STANDARD_OFFSET_HOURS:
        return str(calendar)
    return None


def _dated(day: Any, status: dict[str, Any]) -> str:
    """A date with the calendar it counts in: '2026-12-21 (California time)' when stated,
    '2026-12-21 (a US state's date)' when not. A request stored before the calendar was kept
    shows the date alone."""
    if not status.get("deadline_jurisdiction"):
        return str(day)
    zone = _zone(status)
    return f"{day} ({PLACE_NAMES[zone]} time)" if zone else f"{day} ({NEUTRAL_DATE})"


def _deadline(status: dict[str, Any]) -> str:
    return _dated(status["deadline"], status)


def _received(status: dict[str, Any]) -> str:
    """The date the deadline counts from, in its stated calendar (an evening request in
    California is already the next day in UTC), and the time in UTC beside it; the UTC time
    alone when no zone may be named."""
    zone = _zone(status)
    stamp = str(status["received_at"])
    if zone is None:
        return _when(stamp)
    day = received_on(datetime.fromisoformat(stamp.replace("Z", "+00:00")), zone)
    return f"{_dated(day.isoformat(), status)}, at {_when(stamp)}"


def _when(stamp: Any) -> str:
    """'2026-11-29T03:20:00.123Z' -> '2026-11-29 03:20 UTC' (the stored format is fixed)."""
    text = str(stamp)
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 and text[10] == "T" else text
