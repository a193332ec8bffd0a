"""Generic signed webhook, for in-house systems and the third parties data was sold/shared to.

POST {base_url}{path} with JSON {request_id, job_id, purposes, jurisdictions, identifiers:
[{type, value, hashed}], notice}; signed as webhook_signature.py describes (timestamp + key id
+ HMAC), so the receiver can check origin, reject replays and rotate the secret.
`jurisdictions` says where the request(s) the job was made for came from (sorted ISO 3166-2
codes such as "US-CA"; empty when none is known). `notice` tells the receiver what the law
asks of it, built from the job's purposes and jurisdictions (`notice()`): for sale/share
(named as the job carries them: sale, sharing, or both) from California, CCPA regulations
§7026(f) make a business notify the third parties it sold or shared the consumer's personal
information to, and direct them to comply and to forward the request to anyone they
disclosed or shared that information with; for a limit, §7027(g) asks the same of those it
disclosed sensitive personal information to; the states' targeted-ads and profiling opt-outs
are named as such. A request from another state cites that state's law by name, and one from
nowhere known "U.S. state consumer privacy laws": never a California rule.
One job per call: receivers treat each call as one request. What the answer means (the
contract in docs/connectors.md; `answer_result`): a 2xx with an empty body, JSON `null`, a JSON
string or short plain text ("OK"), or a JSON object whose `result` is absent, null or a success
word (applied, ok, success, done; any case) says the opt-out was applied, and is "done"
(but an object with no `result` carrying a non-empty `error`/`errors`/`errorMessage`,
`"success": false`, `"ok": false`, a failure `status` or a `statusCode` of 400-599 is the
receiver's failure, final; one whose `status` says queued or pending is retried as a 202 is:
`_refuse_unapplied`);
`"result": "no_record"` (any case) says the receiver holds no such person ("no_record"); any
other `result` is the receiver's failure, final, with the value as a short code ("200 with
errors" is not done); an HTML page (a catch-all, a parked host), long text or another JSON
value is not understood: retried, never done. 202
Accepted says it was only queued, which is not done: retried like a 5xx, after its
Retry-After when it sends one (the worker's retry honours long waits: delivery/retry.py), and
the receiver, which knows the job_id, answers 200 once applied. `reference` (or
X-Request-Id) becomes the receipt's vendor reference when it looks like one (base.reference:
short, `[A-Za-z0-9._:-]`, no identifier value of the job in it); otherwise it is dropped and
the note says so.
"""

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from optout.connectors.base import (
    DROPPED_REFERENCE,
    Connector,
    Job,
    Outcome,
    reason_code,
    reference,
)
from optout.connectors.errors import DeliveryError, SecretRefused
from optout.connectors.hashing import sha256_hex
from optout.connectors.http import asked_wait, json_body
from optout.connectors.models import Model, parse_config
from optout.connectors.webhook_signature import KEY_ID, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from optout.deadlines import STATE_NAMES, STATE_OPT_OUTS, law_in_force, received_on
from optout.purposes import Purpose

ACCEPTED = 202  # queued by the receiver, not applied: not "done"
NO_RECORD = "no_record"  # {"result": "no_record"}: the receiver holds no such person
APPLIED = "applied"  # {"result": "applied"}: the same as no `result`
# `result` words read as applied, compared lower-cased (as NO_RECORD is): what partners answered
# before the contract named "applied" (docs/connectors.md "What the receiver's answer means").
SUCCESS_RESULTS = frozenset({APPLIED, "ok", "success", "done"})
# A plain-text 2xx up to this long is an acknowledgement ("OK", "Accepted, thanks"); longer
# text is a page of some kind, not an answer: retried.
SHORT_TEXT_BYTES = 200
# ... unless it says it failed ("ERROR: invalid signature", "Unauthorized", "Not Found"): the
# receiver's own failure in words, final as an unknown `result` is (review s30 final F3).
_FAILED_TEXT = re.compile(
    r"error|fail|invalid|unauthori[sz]ed|forbidden|denied|not found|refused|reject", re.I
)
# A JSON object with no `result` that still says the receiver failed (review s36 vendor W1,
# "200 with errors": was done): a non-empty `error` or `errors` (GraphQL and many frameworks),
# `errorMessage`/`errorType` (a Lambda error, which API Gateway answers "as 200 OK responses by
# default" behind a custom integration: AWS, "Handle Lambda errors in API Gateway"),
# `"success": false` or `"ok": false` (Slack-style), a `status` in failure words, or a
# `status`/`statusCode` number of 400 or more (a proxy-shaped answer passed through whole).
# Failed for good, as a failure in text is; the field is named, its words never kept.
ERROR_FIELDS = ("error", "errors", "errorMessage", "errorType")
FLAG_FIELDS = ("success", "ok")
CODE_FIELDS = ("status", "statusCode")
# ... and one whose `status` says it was only queued, as a 202 does: retried, never done.
_QUEUED_STATUS = re.compile(r"queued|pending|processing|in[ _-]?progress|scheduled", re.I)
# A `result` outside the contract goes onto the receipt and the log as a code only: partner
# text, so ASCII code characters, bounded, and no identifier shape (base.reason_code).
_RESULT_CODE = re.compile(r"[A-Za-z0-9_.-]{1,40}")

# What each right asks of the receiver, paraphrasing the rule it comes from. A job names the
# purposes the consumer opted out of (or limited); the notice states those rights and no other,
# so a limit-only or profiling-only request does not tell a partner to stop selling.
SALE_SHARE_RULE = "Cal. Code Regs. tit. 11, § 7026(f)"
# §7026(f)(2) has the third party forward the request to whoever it disclosed or shared the
# data with: a partner that only disclosed it (no sale) must read that duty too.
SALE_SHARE_FORWARD = (
    "Comply with this opt-out, and forward it to every other person to whom you have "
    "disclosed or shared this consumer's personal information, directing them to comply."
)
LIMIT_RULE = "Cal. Code Regs. tit. 11, § 7027(g)"
LIMIT_TEXT = (
    "The consumer has asked to limit the use and disclosure of their sensitive personal "
    "information. Stop using and disclosing it for purposes other than those allowed by "
    "§ 7027(m), and forward this request to every person to whom you have disclosed or made "
    "available this consumer's sensitive personal information, directing them to comply."
)
STATE_RULE = "U.S. state consumer privacy laws"
# A request from another state, or from nowhere known, is not under the California rules:
# its notice names that state's law in plain words for each opt-out that law grants
# (deadlines.STATE_OPT_OUTS; no section is cited: only the rights and the deadlines of these
# laws were checked, docs/connectors.md), or STATE_RULE for one it does not grant and when no
# jurisdiction is known. The limit of sensitive personal information is California's right;
# for anyone else it is stated without §7027(m).
CALIFORNIA = "US-CA"
# California's "sharing" is sharing for cross-context behavioural advertising: the other
# states' laws grant that as their opt-out of targeted advertising (the same choice GPC
# carries there), so a state granting targeted advertising is named for a sharing opt-out.
STATE_TERMS: dict[Purpose, Purpose] = {"share": "targeted_advertising"}
NEUTRAL_LIMIT_TEXT = (
    "The consumer has asked to limit the use and disclosure of their sensitive personal "
    "information. Stop using and disclosing it beyond what the applicable law allows, and "
    "forward this request to every person to whom you have disclosed or made available this "
    "consumer's sensitive personal information, directing them to comply."
)
STATE_RIGHTS: dict[Purpose, str] = {
    "targeted_advertising": "targeted advertising",
    "profiling": "profiling in furtherance of decisions that produce legal or similarly "
    "significant effects",
}


def state_law(code: str, purpose: Purpose, chosen: datetime) -> str:
    """The law a state's opt-out of `purpose` comes from, in plain words (no citation): the
    state's, if in force on the day the consumer chose (there: `received_on`, as its deadline
    counts) and granting that opt-out (STATE_OPT_OUTS); else STATE_RULE, the neutral wording
    (the consumer's choice is still stated and carried out). A code outside the table
    (US-NY: no such law) or a state whose law is not yet in force names no law of its own."""
    granted = STATE_TERMS.get(purpose, purpose) in STATE_OPT_OUTS.get(code, frozenset())
    if granted and law_in_force(code, received_on(chosen, code)):
        return f"{STATE_NAMES[code]} consumer privacy law"
    return STATE_RULE


def notice(
    purposes: Iterable[Purpose], jurisdictions: Iterable[str] = (), chosen: datetime | None = None
) -> dict[str, Any]:
    """The notice for a job's purposes and the jurisdictions of its request(s): each
    applicable rule and sentence once, in a fixed order. The California rules (§7026(f),
    §7027(g)) are cited only for a request from California (US-CA); another state's request
    names that state's law for the opt-outs it grants (`state_law`); with no jurisdiction
    known, STATE_RULE, citing no California rule.
    `forward_to_third_parties` is true for sale, share and the limit, wherever the request came
    from (§7026(f), §7027(g); asking the partner to pass it on is never wrong elsewhere); the
    states' targeted-ads and profiling opt-outs are stated without that instruction.
    `chosen`: when the consumer made the choice (`Job.chosen_at`; None: now), which says
    whether a state's law was in force."""
    wanted = set(purposes)
    where = sorted(set(jurisdictions))
    california = CALIFORNIA in where
    when = chosen or datetime.now(UTC)
    others = [code for code in where if code != CALIFORNIA]

    def elsewhere(*block: Purpose) -> list[str]:
        """Other than California's: each other state's law for those of these purposes the
        job carries, or the neutral name when no state is known."""
        if not others:
            return [] if california else [STATE_RULE]
        carried = [purpose for purpose in block if purpose in wanted]
        return [state_law(code, purpose, when) for code in others for purpose in carried]

    rules: list[str] = []
    texts: list[str] = []
    sale_share = [name for purpose, name in (("sale", "sale"), ("share", "sharing"))
                  if purpose in wanted]  # fmt: skip
    if sale_share:
        # Only what the consumer chose: a sale-only job (the webform offers sale and sharing
        # apart, §7026(h)) must not tell the partner the consumer opted out of sharing.
        rules += [SALE_SHARE_RULE] * california + elsewhere("sale", "share")
        texts.append(
            f"The consumer has opted out of the {' and '.join(sale_share)} of their personal "
            f"information. {SALE_SHARE_FORWARD}"
        )
    if "limit_sensitive" in wanted:
        rules += [LIMIT_RULE] * california + elsewhere("limit_sensitive")
        texts.append(LIMIT_TEXT if california else NEUTRAL_LIMIT_TEXT)
    state = [right for purpose, right in STATE_RIGHTS.items() if purpose in wanted]
    if state:
        rules += [STATE_RULE] * california + elsewhere(*STATE_RIGHTS)
        texts.append(
            "The consumer has opted out of the processing of their personal data for "
            + " and for ".join(state)
            + ". Stop processing it for "
            + ("that purpose." if len(state) == 1 else "those purposes.")
        )
    return {
        "regulation": "; ".join(dict.fromkeys(rules)),
        "instruction": " ".join(texts),
        "forward_to_third_parties": bool(wanted & {"sale", "share", "limit_sensitive"}),
    }


@dataclass(frozen=True, kw_only=True)
class WebhookOptions(Model):
    base_url: str
    path: str = ""


@dataclass(frozen=True, kw_only=True)
class WebhookSecret(Model):
    """Refused (`check_secret`) unless `key_id` is 1-64 of `A-Za-z0-9._-` (what the reference
    receiver reads from the signature header: any other is a 401 on every call) and the
    signing secret has at least MIN_SECRET_CHARS characters (an empty or short one lets
    anyone forge the HMAC)."""

    signing_secret: str
    key_id: str = "1"  # names the secret in the signature header, so it can rotate


MIN_SECRET_CHARS = 32
_KEY_ID = re.compile(KEY_ID)


class WebhookConnector(Connector[WebhookSecret]):
    max_batch = 1
    # The partner's endpoint already takes concurrent calls (one per running worker); a
    # batch's ten jobs sent together wait on it once, not ten times.
    parallel_calls = 10
    secret_model = WebhookSecret
    clock: Callable[[], float] = staticmethod(time.time)

    def configure(self) -> None:
        self.opts = parse_config(WebhookOptions, self.system.options, "options", self.system.name)

    def check_secret(self, secret: WebhookSecret) -> None:
        name = self.system.name
        if not _KEY_ID.fullmatch(secret.key_id):
            raise SecretRefused(
                f"system {name}: credentials key_id must be 1-64 characters of A-Z a-z 0-9 . _ - "
                f"(the receiver's signature header allows no other)"
            )
        if len(secret.signing_secret) < MIN_SECRET_CHARS:
            raise SecretRefused(
                f"system {name}: credentials signing_secret is shorter than "
                f"{MIN_SECRET_CHARS} characters"
            )

    def chosen(self, job: Job) -> datetime:
        """When the consumer chose (a job stored before it was kept: now)."""
        try:
            chosen = datetime.fromisoformat(job.chosen_at)
        except ValueError:  # none kept (or unreadable): the notice is still owed
            return datetime.fromtimestamp(self.clock(), UTC)
        return chosen if chosen.tzinfo else chosen.replace(tzinfo=UTC)

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        (job,) = jobs
        hashed = self.system.hashing == "sha256"
        body = json_body(
            {
                "request_id": job.request_id,
                "job_id": job.job_id,
                "purposes": sorted(job.purposes),
                "jurisdictions": sorted(job.jurisdictions),
                "identifiers": [
                    {
                        "type": i.type,
                        "value": sha256_hex(i.value) if hashed else i.value,
                        "hashed": hashed,
                    }
                    for i in self.identifiers(job)
                ],
                "notice": notice(job.purposes, job.jurisdictions, self.chosen(job)),
            }
        )
        timestamp = str(int(self.clock()))
        creds = self.creds
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(creds.key_id, creds.signing_secret, timestamp, body),
        }
        url = self.opts.base_url.rstrip("/") + self.opts.path
        answer = self.http.send("POST", url, step="webhook", headers=headers, body=body)
        if answer.status == ACCEPTED:
            raise DeliveryError(
                "webhook: 202 Accepted (queued, not applied)",
                retryable=True,
                http_status=ACCEPTED,
                retry_after=asked_wait(answer),  # when the receiver expects to be done
            )
        result, payload = answer_result(answer.status, answer.headers, answer.body, job)
        given = payload.get("reference") if isinstance(payload, dict) else None
        given = given or answer.headers.get("x-request-id")
        # The receiver chooses its reference: one that echoes what it was sent (an email, a
        # customer id) would keep the person's values on the receipt for the whole retention.
        ref = reference(given, job.identifiers)
        dropped = DROPPED_REFERENCE if given and ref is None else None
        types = self.types_sent(job)
        if result == NO_RECORD:
            note = "; ".join(n for n in ("no such person (receiver)", dropped) if n)
            return [Outcome(job.job_id, "no_record", answer.status, ref, types, note=note)]
        return [Outcome(job.job_id, "done", answer.status, ref, types, note=dropped)]


def answer_result(
    status: int, headers: dict[str, str], body: bytes, job: Job
) -> tuple[str, dict[str, Any] | None]:
    """What a 2xx (not 202) answer says: APPLIED or NO_RECORD, and the JSON object if it is
    one (for its `reference`). Raises the receiver's explicit failure (final) or an answer
    that is not one (an HTML page: retried). Partners that answered `OK`, `"OK"`, `null` or
    `{"result": "success"}` before 2026-12-03 stay done (review s30 receipts F1)."""
    text = body.strip()
    if not text:
        return APPLIED, None
    html = "text/html" in headers.get("content-type", "").lower() or text.startswith(b"<")
    if html:  # a catch-all page, a parked host, a login wall: not the receiver's answer
        raise _not_understood("an HTML page", status)
    try:
        payload = json.loads(text)
    except ValueError:  # plain text: short is an acknowledgement ("OK"), long is not an answer
        if len(text) <= SHORT_TEXT_BYTES:
            return _acknowledged(text.decode("utf-8", "replace"), status)
        raise _not_understood("long text, not JSON", status) from None
    if payload is None:
        return APPLIED, None
    if isinstance(payload, str):
        return _acknowledged(payload, status)
    if not isinstance(payload, dict):  # a number, a list, true/false: says nothing we know
        raise _not_understood("not a JSON object", status)
    result = payload.get("result")
    if result is None:
        _refuse_unapplied(payload, status)
        return APPLIED, payload
    word = result.lower() if isinstance(result, str) else None
    if word in SUCCESS_RESULTS:
        return APPLIED, payload
    if word == NO_RECORD:
        return NO_RECORD, payload
    raise DeliveryError(
        f"webhook: receiver result: {result_code(result, job)}",
        retryable=False,
        http_status=status,
    )


def _refuse_unapplied(payload: dict[str, Any], status: int) -> None:
    """Raise when a JSON object with no `result` says it failed (final) or was only queued
    (retried, as a 202): ERROR_FIELDS, FLAG_FIELDS, `status`. An empty or null `error`,
    `errors: []` and `"success": true` say nothing of a failure."""
    said = payload.get("status")
    failed = [name for name in ERROR_FIELDS if payload.get(name) not in (None, False, "", [], {})]
    failed += [name for name in FLAG_FIELDS if payload.get(name) is False]
    failed += [name for name in CODE_FIELDS if _failure_code(payload.get(name))]
    if isinstance(said, str) and _FAILED_TEXT.search(said):
        failed.append("status")
    if failed:
        raise DeliveryError(
            f"webhook: receiver answered a failure ({', '.join(failed)})",
            retryable=False,
            http_status=status,
        )
    if isinstance(said, str) and _QUEUED_STATUS.fullmatch(said.strip()):
        raise DeliveryError(
            "webhook: receiver answered queued (not applied)", retryable=True, http_status=status
        )


def _failure_code(value: object) -> bool:
    """An HTTP status number of 400 or more (599 at most) inside a 2xx answer's body."""
    return isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599


def _not_understood(why: str, status: int) -> DeliveryError:
    """A 2xx that is no answer of the receiver's: retried like a 5xx, never done."""
    return DeliveryError(f"webhook: answer not understood ({why})", retryable=True,
                         http_status=status)  # fmt: skip


def _acknowledged(text: str, status: int) -> tuple[str, None]:
    """A short text answer ("OK", "Accepted, thanks") is applied; one that says it failed is
    the receiver's failure, final (its words are not kept: partner text)."""
    if _FAILED_TEXT.search(text):
        raise DeliveryError(
            "webhook: receiver answered a failure in text", retryable=False, http_status=status
        )
    return APPLIED, None


def result_code(result: object, job: Job) -> str:
    """A receiver's unknown `result` as a receipt may show it, else "unrecognised"."""
    if not isinstance(result, str) or not _RESULT_CODE.fullmatch(result):
        return "unrecognised"
    return result if reason_code(result, job.identifiers) else "unrecognised"
