"""Meta Marketing API: remove people from custom audiences.

DELETE {base_url}/{version}/act_{ad_account_id}/usersofanyaudience (every audience of the ad
account) and DELETE .../{audience_id}/users for each of `audience_ids`: every configured
audience; form field `payload={"schema": "EMAIL_SHA256"|"PHONE_SHA256", "is_raw": false,
"data": [hash, ...]}` (the shape facebook-business's CustomAudience.format_params builds), one
call per schema, at most 10,000 hashes per call. Email: SHA-256 hex of trimmed lowercase;
phone: SHA-256 hex of its digits with country code, no '+'. The token goes in the
Authorization header and the hashes in the body, never in the URL.
With an `app_secret` in the secret, every call carries `appsecret_proof`, the HMAC-SHA256 hex
of the access token keyed with the app secret (Meta, "Secure Graph API Calls",
developers.facebook.com/docs/graph-api/guides/secure-requests, read 2026-12-03): an app set to
"Require App Secret" refuses calls without it. A removal sends it as a form field beside
`payload` (Meta's own example posts it with `-F`); the ad account's GET has no body, so there
it is a query parameter, as facebook-business sends it on every call (session.py). It is
neither personal data nor the secret, and proves nothing without the token.
Meta reports throttling (mostly as HTTP 400; at 400 or 429 the code decides, at another
status only beside a usage header) with codes 4/17/32/341/613 or a Business Use Case code
(80000-80014, e.g. 80004 "too many calls to this ad-account"), or flags an error
`is_transient`: retried like a 429, after the `estimated_time_to_regain_access` of its
`X-Business-Use-Case-Usage` header when it gives one, else after a 429's `Retry-After`; an
expired API version (code 2635) is final and says so. A version Meta no longer serves may
instead be upgraded, the answer carrying `X-Ad-Api-Version-Warning`: logged once a batch, so
the operator updates `api_version`.
"Done" means Meta accepted the removal (Meta: changes "usually take up to 24 hours", longer for
more records or audiences; no status to poll); `vendor_ref` holds Meta's session ids. Meta's
answer counts what it took: `num_received` below the hashes sent fails every job of the batch
for good, with those counts only; `num_invalid_entries` above 0 alone is `done` with a
counts-only note (Meta: "a range of users that did not match": nothing Meta could remove for
those hashes, though the person may be in an audience under another hash; retrying re-sent the
whole batch to the same count). A job every one of whose hashes Meta counted so (each call of
each of its types counting every hash it sent invalid) is `no_record`: Meta removed no one for
it, and `done` would say it acted (vendor37).
usersofanyaudience answers 2xx and may process nothing when no business portfolio owns the ad
account or its Custom Audience Terms are not accepted (Meta's guide): before its first removal,
and again after an hour, the connector reads GET act_{id}?fields=tos_accepted,business once
(`check_account`) and, while either is missing, sends the `audience_ids` removals only and fails
the batch retryably. A read Meta refuses (e.g. code 200, a token without the permission to read
the account) leaves the account unchecked: the removals go as before, the receipt says so,
and the jobs are counted (metric MetaRemovalsUnchecked: `done` receipts Meta may not have
acted on). Each removal call also counts the hashes it sent and those Meta counted invalid
(MetaHashesSent, MetaHashesUnmatched): a jump in their ratio is a hashing or normalisation
change, which the receipts would only show as `done` notes.
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from optout.connectors.base import DROPPED_REFERENCE, Connector, Job, Outcome, noted, reference
from optout.connectors.errors import ConfigError, DeliveryError
from optout.connectors.hashing import email_sha256, meta_phone_sha256
from optout.connectors.http import HttpResponse, asked_wait, status_error, whole_number
from optout.connectors.models import Model, parse_config
from optout.identifiers import IdType
from optout.systems import CONNECTOR_ID_TYPES

# Meta's own throttle codes: 4 app, 17 user, 32 page, 341 "Application limit reached", 613
# custom rate limit. Meta's Graph SDK for PHP (facebookarchive/php-graph-sdk, branch 5.x,
# FacebookResponseException) throws its ThrottleException on exactly these (read 2026-12-04).
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613})
# Business Use Case rate limits, one code per use case (80003 custom audiences, 80004 ads
# management, ...): Meta's "Rate Limiting" (Marketing API) and Custom Audience error table,
# checked 2026-12-01. Which one usersofanyaudience draws on Meta does not say: all are retried.
BUSINESS_USE_CASE_CODES = range(80000, 80015)
# Where a throttle code alone says "throttled"; at another status it needs one of Meta's usage
# headers beside it (lower-cased, as HttpResponse keeps them). Meta, "Rate Limiting" (Graph
# API), developers.facebook.com/docs/graph-api/overview/rate-limiting, read 2026-12-04.
THROTTLE_STATUSES = frozenset({400, 429})
USAGE_HEADERS = ("x-app-usage", "x-business-use-case-usage", "x-ad-account-usage")
DEPRECATED_VERSION_CODE = 2635
# Meta's refusal of an audience call while the Custom Audience Terms are not accepted: code
# 2663 (earlier 2655), "Terms of service has not been accepted", type OAuthException (answers
# quoted in facebook/facebook-nodejs-business-sdk issue 26 and facebook-php-business-sdk issue
# 43), and error_subcode 1870090, "Custom Audience Terms Not Accepted" (Meta, "Customer File
# Custom Audiences", Error Codes). Named in the reason, which an operator reads to fix it.
TERMS_CODES = frozenset({2655, 2663})
TERMS_SUBCODE = 1870090
TERMS_NOT_ACCEPTED = "Custom Audience Terms not accepted"
INVALID_TOKEN_CODE = 190  # OAuthException: expired, revoked or rotated token
DEFAULT_VERSION = "v27.0"  # released 2026-11-04; see optout.connectors.versions
# Meta's notice that it ran the call on a newer version than the one asked for (its 2024-04-16
# post on Marketing API version deprecation; checked 2026-12-01)
VERSION_WARNING = "x-ad-api-version-warning"
# The identifier type behind each schema Meta takes (a call per schema and audience)
SCHEMA_TYPES = {"EMAIL_SHA256": "email", "PHONE_SHA256": "phone"}
# The ad account's fields check_account reads, and the key of `tos_accepted` (facebook-business
# AdAccount: `map<string, int>`) that says the Custom Audience Terms are accepted
ACCOUNT_FIELDS = "tos_accepted,business"
CUSTOM_AUDIENCE_TERMS = "custom_audience_tos"
NO_BUSINESS = "business absent (no business portfolio owns it, or the token may not read it)"
ACCOUNT_CHECK_SECONDS = 3600.0  # a usable account is read again after an hour
# Meta's own gloss on `num_invalid_entries` (its guide, "Response"): our hashes are always 64
# lowercase hex, so the count can only be hashes that matched no user: nothing Meta could
# remove for them (it does not say the person is in no audience: review s29 lead D1)
UNMATCHED_IS_NOTHING_TO_REMOVE = (
    "Meta: an approximate count of hashes that matched no Meta user; nothing to remove for those"
)
# The note of a job none of whose hashes matched a Meta user (every call's counts say so)
NO_SUCH_PERSON = "no such person (meta: every hash sent for it counted unmatched)"
# What an unchecked removal's "done" cannot rule out (review s29 vendorfix2 R1)
UNCHECKED_RISK = " (Meta processes none for an account without a business portfolio or its Terms)"
# Worker metrics (Connector.counts; review s29 lead D1, vendorfix2 R1 and R2): jobs `done` with
# the account unchecked; hashes sent per removal call, and those Meta counted invalid
REMOVALS_UNCHECKED = "MetaRemovalsUnchecked"
HASHES_SENT = "MetaHashesSent"
HASHES_UNMATCHED = "MetaHashesUnmatched"
log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MetaOptions(Model):
    base_url: str
    api_version: str = DEFAULT_VERSION
    ad_account_id: str | None = None
    audience_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class MetaSecret(Model):
    access_token: str
    app_secret: str | None = None  # set: every call carries appsecret_proof


class AccountCheck(NamedTuple):
    """`check_account`'s answer: `unusable` why a usersofanyaudience removal would do nothing
    (None: it can act), `unread` why the account could not be read (None: it was, or there is
    none to read); an unread account is unchecked, not unusable."""

    unusable: str | None = None
    unread: str | None = None


class MetaConnector(Connector[MetaSecret]):
    max_batch = 10_000
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["meta"]
    secret_model = MetaSecret

    def configure(self) -> None:
        self.opts = parse_config(MetaOptions, self.system.options, "options", self.system.name)
        if not self.opts.ad_account_id and not self.opts.audience_ids:
            raise ConfigError(
                f"system {self.system.name}: options need ad_account_id or audience_ids"
            )
        root = f"{self.opts.base_url.rstrip('/')}/{self.opts.api_version}"
        account = (self.opts.ad_account_id or "").removeprefix("act_")
        self.urls = ([f"{root}/act_{account}/usersofanyaudience"] if account else []) + [
            f"{root}/{a}/users" for a in self.opts.audience_ids
        ]
        self.account_url = f"{root}/act_{account}" if account else None
        self._account_usable_at: float | None = None  # clock() of the last usable read
        self.clock = time.monotonic

    def weight(self, job: Job) -> int:
        sent = self.identifiers(job)
        return max(sum(i.type == "email" for i in sent), sum(i.type == "phone" for i in sent), 1)

    def calls_per_batch(self, jobs: int) -> int:
        # one removal per audience and hash schema (a batch's emails and phones fit one each),
        # and the ad account's read (check_account: once a container an hour, counted as
        # Google's cached token is, so the pace fits a cold container's first batch)
        schemas = {"email", "phone"} & set(self.system.identifier_types)
        return len(self.urls) * max(1, len(schemas)) + (1 if self.account_url else 0)

    def check_account(self) -> AccountCheck:
        """Whether the ad account can act on a `usersofanyaudience` removal: Meta answers that
        call 2xx and may process nothing "if the ad account is not owned by a business
        portfolio, you have not yet accepted the Custom Audience Terms" (Meta, "Customer File
        Custom Audiences", Remove Members; docs/vendors.md). One GET
        act_{id}?fields=tos_accepted,business; a usable answer is kept ACCOUNT_CHECK_SECONDS
        (this container's connector, off each opt-out's path), any other is read again next
        batch, so a fix is seen at once. A throttle, a refused token (190) or an expired version
        (2635) raises, as a removal's would; any other refusal (e.g. code 200, a token that may
        not read the account) is `unread`: the removal itself may well work, so it is sent."""
        if self.account_url is None:
            return AccountCheck()
        now, usable_at = self.clock(), self._account_usable_at
        if usable_at is not None and now - usable_at < ACCOUNT_CHECK_SECONDS:
            return AccountCheck()
        proof = self._proof()
        extra = urllib.parse.urlencode(proof)
        answer = self.http.send(
            "GET",
            f"{self.account_url}?fields={ACCOUNT_FIELDS}" + (f"&{extra}" if extra else ""),
            step="meta ad account",
            headers={"Authorization": f"Bearer {self.creds.access_token}"},
            raise_for_status=False,
        )
        if not 200 <= answer.status < 300:
            refusal = self._refusal("meta ad account", answer)
            if refusal.auth or refusal.retryable or _code(answer) == DEPRECATED_VERSION_CODE:
                raise refusal
            return AccountCheck(unread=f"meta ad account not checked: {refusal.reason}")
        payload = answer.json()
        if not isinstance(payload, dict):
            raise DeliveryError("meta ad account: malformed answer", retryable=True)
        problems = []
        business = payload.get("business")
        if not (isinstance(business, dict) and business.get("id")):
            # Meta leaves an unset field out; one the token may not read may be left out too
            problems.append(NO_BUSINESS)
        terms = payload.get("tos_accepted")  # map<string, int> (facebook-business AdAccount)
        if not (isinstance(terms, dict) and terms.get(CUSTOM_AUDIENCE_TERMS) in (1, "1")):
            problems.append("Custom Audience Terms not accepted")
        if problems:
            return AccountCheck(
                unusable="meta ad account cannot remove from its audiences: " + "; ".join(problems)
            )
        self._account_usable_at = now
        return AccountCheck()

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        account = self.check_account()
        urls = self.urls
        if account.unusable:
            # usersofanyaudience would answer 2xx and do nothing: not called, never "done".
            # The `audience_ids` removals answer with counts, so they still go (idempotent:
            # re-sent on the retry). Retried, so a fixed account (terms accepted, claimed by a
            # business) takes the jobs on their next try; the last receive fails them for good
            # (review s29 F1, vendorfix L1).
            urls = [u for u in urls if not u.endswith("/usersofanyaudience")]
        if account.unread:  # value-free: Meta's status and code numbers only
            log.warning("meta system %s: %s; removals sent unchecked", self.system.name,
                        account.unread)  # fmt: skip
        sent = [i for j in jobs for i in self.identifiers(j)]
        batches = {
            "EMAIL_SHA256": sorted({email_sha256(i.value) for i in sent if i.type == "email"}),
            "PHONE_SHA256": sorted({meta_phone_sha256(i.value) for i in sent if i.type == "phone"}),
        }
        refs: list[str] = []
        started: set[str] = set()  # identifier types whose call has been made
        dropped = False  # a session id that did not look like one (base.reference)
        tally = Tally()  # what Meta's answers counted
        status: int | None = None
        upgraded = False  # an answer carried Meta's version warning
        for url in urls:
            for schema, data in batches.items():
                if not data:
                    continue
                started.add(SCHEMA_TYPES[schema])
                try:
                    answer = self._delete(url, schema, data)
                except DeliveryError as refused:
                    # the types after it were never sent: not "attempted" on their receipts
                    refused.types_started = frozenset(started)
                    raise
                status = answer.status
                upgraded = upgraded or VERSION_WARNING in answer.headers
                payload = answer.json()
                if isinstance(payload, dict) and payload.get("session_id") is not None:
                    ref = reference(payload["session_id"], sent)
                    dropped = dropped or ref is None
                    refs.extend([ref] if ref else [])
                tally.add(schema, payload, len(data))
                self.counts[HASHES_SENT] += len(data)
                self.counts[HASHES_UNMATCHED] += _invalid_count(payload)
        if upgraded:  # the header's text is not logged: only Meta's, but not ours to vouch for
            log.warning(
                "meta system %s: Meta answered API version %s with %s (the version is "
                "expired or expiring: update options.api_version)",
                self.system.name,
                self.opts.api_version,
                VERSION_WARNING,
            )
        ref = ",".join(refs) or None
        notes = [
            DROPPED_REFERENCE if dropped else None,
            account.unread and f"{account.unread}; removal sent unchecked{UNCHECKED_RISK}",
        ]
        if tally.short:
            # Which hash Meta did not take is not known (its samples would be values): every
            # job of the batch fails for good, with counts only (a replay re-sends them all)
            note = "meta removal incomplete: " + "; ".join(tally.short + tally.unmatched)
            error = DeliveryError(note, retryable=False, http_status=status)
            return [Outcome(j.job_id, None, status, ref, error=error, note=note,
                            identifier_types_attempted=self.types_sent(j))
                    for j in jobs]  # fmt: skip
        if account.unusable:
            error = DeliveryError(f"configuration: {account.unusable}", retryable=True)
            return [Outcome(j.job_id, None, status, ref, error=error,
                            identifier_types_attempted=self.types_sent(j) if urls else (),
                            note="; ".join(n for n in [*notes, tally.note(self.types_sent(j))]
                                           if n) or None)
                    for j in jobs]  # fmt: skip
        return [self._judged(j, tally, status, ref, notes, unread=bool(account.unread))
                for j in jobs]  # fmt: skip

    def _judged(
        self, job: Job, tally: "Tally", status: int | None, ref: str | None,
        notes: list[str | None], *, unread: bool,
    ) -> Outcome:  # fmt: skip
        """A job's outcome once every removal call answered 2xx and received every hash."""
        types = self.types_sent(job)
        if tally.none_matched(types):
            # Every hash of every type this job sent matched no Meta user, by every call's
            # count: Meta removed no one for it. `done` says the vendor acted; this is its
            # "no such person" (vendor37: was done with the counts' note)
            outcome = Outcome(job.job_id, "no_record", status, ref, types)
            return noted(outcome, NO_SUCH_PERSON, *notes, tally.note(types))
        if unread:
            self.counts[REMOVALS_UNCHECKED] += 1
        return noted(Outcome(job.job_id, "done", status, ref, types), *notes, tally.note(types))

    def _delete(self, url: str, schema: str, data: list[str]) -> HttpResponse:
        body = urllib.parse.urlencode(
            {
                "payload": json.dumps({"schema": schema, "is_raw": False, "data": data}),
                **self._proof(),
            }
        )
        answer = self.http.send(
            "DELETE",
            url,
            step=f"meta remove {schema}",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"Bearer {self.creds.access_token}",
            },
            body=body.encode(),
            raise_for_status=False,
        )
        if 200 <= answer.status < 300:
            return answer
        raise self._refusal(f"meta remove {schema}", answer)

    def _proof(self) -> dict[str, str]:
        """{"appsecret_proof": ...} when the secret has an app secret, else {}."""
        secret = self.creds.app_secret
        if not secret:
            return {}
        token = self.creds.access_token.encode()
        return {"appsecret_proof": hmac.new(secret.encode(), token, hashlib.sha256).hexdigest()}

    def _refusal(self, step: str, answer: HttpResponse) -> DeliveryError:
        """A non-2xx Graph API answer, classified by Meta's error code."""
        payload = answer.json()
        error = payload.get("error") if isinstance(payload, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if _throttled(error, answer.status, answer.headers):
            # Meta's usage estimate first; else the Retry-After a 429 may carry (review s34 L1)
            return DeliveryError(
                f"{step}: throttled (code {code}, HTTP {answer.status})",
                retryable=True,
                http_status=answer.status,
                retry_after=regain_access_seconds(answer.headers) or asked_wait(answer),
            )
        if code == INVALID_TOKEN_CODE:
            return DeliveryError(
                f"{step}: access token refused (code {code})",
                retryable=False,
                http_status=answer.status,
                auth=True,
            )
        if code == DEPRECATED_VERSION_CODE:
            return DeliveryError(
                f"{step}: API version {self.opts.api_version} expired (code {code})",
                retryable=False,
                http_status=answer.status,
            )
        codes = _codes(error)
        if not codes:
            return status_error(step, answer)
        # Meta's numbers tell "fix the audience" from "our request is wrong"
        named = f": {TERMS_NOT_ACCEPTED}" if _terms_refused(error) else ""
        return status_error(step, answer, detail=f"({codes}){named}")


def _throttled(error: object, status: int, headers: dict[str, str]) -> bool:
    """Meta's throttling answer: an error Meta itself calls transient (Graph API
    `is_transient`: the same call may succeed later), or a rate-limit code. At HTTP 400 or 429
    the code decides: Meta sends its rate-limit codes with a 400 mostly, and its own PHP SDK
    reads the code alone. At any other status (code 4 has come with a 403:
    facebook/facebook-android-sdk issue 582, a login call) the code counts only beside a usage
    header: a permission refusal dressed as code 4 is possible, and read as a throttle it would
    hold every removal back until the retries ran out (review s34 L2)."""
    if not isinstance(error, dict):
        return False
    if error.get("is_transient") is True:
        return True
    code = error.get("code")
    limited = type(code) is int and (code in THROTTLE_CODES or code in BUSINESS_USE_CASE_CODES)
    return limited and (status in THROTTLE_STATUSES or any(h in headers for h in USAGE_HEADERS))


def regain_access_seconds(headers: dict[str, str]) -> float | None:
    """The longest `estimated_time_to_regain_access` (minutes) in X-Business-Use-Case-Usage
    ({business id: [{"type": ..., "estimated_time_to_regain_access": n, ...}]}), in seconds;
    None when absent or 0 (not blocked: the queue's back-off decides)."""
    try:
        usage = json.loads(headers.get("x-business-use-case-usage") or "null")
    except ValueError:
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else [])
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    ]
    longest = max((m for m in minutes if type(m) is int and m > 0), default=None)
    return None if longest is None else longest * 60.0


def _codes(error: object) -> str:
    """Meta's error `code` and `error_subcode`, numbers only: the message, title and user
    message are never kept (they may quote what was sent)."""
    if not isinstance(error, dict):
        return ""
    named = [("code", error.get("code")), ("subcode", error.get("error_subcode"))]
    return ", ".join(f"{name} {value}" for name, value in named
                     if type(value) is int)  # fmt: skip


def _terms_refused(error: object) -> bool:
    """Meta's answer that the Custom Audience Terms are not accepted (TERMS_CODES, or the
    subcode TERMS_SUBCODE): a refusal the operator fixes in Meta, named in the reason."""
    if not isinstance(error, dict):
        return False
    return error.get("code") in TERMS_CODES or error.get("error_subcode") == TERMS_SUBCODE


def _code(answer: HttpResponse) -> object:
    payload = answer.json()
    error = payload.get("error") if isinstance(payload, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _count(payload: object, name: str) -> int | None:
    """A count of Meta's answer: a JSON integer, or a string of digits (facebook-business
    26.0.3 types `num_received` and `num_invalid_entries` as strings, on CustomAudienceSession:
    read as text, "1" was no count, and the answer judged by its 2xx alone; vendor37). None
    when absent or not a count."""
    value = payload.get(name) if isinstance(payload, dict) else None
    if type(value) is int:
        return value
    return whole_number(value) if isinstance(value, str) else None


def _invalid_count(payload: object) -> int:
    """Meta's `num_invalid_entries` (0 when absent or not a count)."""
    invalid = _count(payload, "num_invalid_entries")
    return invalid if invalid is not None and invalid > 0 else 0


@dataclass
class Tally:
    """What Meta's removal answers counted, call by call: counts only, never the samples."""

    short: list[str] = field(default_factory=list)  # fewer entries received than sent
    unmatched: list[str] = field(default_factory=list)  # invalid entries (approximate)
    unmatched_of: dict[str, list[str]] = field(default_factory=dict)  # the same, per type
    # type -> whether every call of its schema received every hash and counted every one
    # invalid: no hash of that type matched a Meta user
    all_unmatched: dict[str, bool] = field(default_factory=dict)

    def add(self, schema: str, payload: object, sent: int) -> None:
        received, invalid = _shortfall(payload, sent)
        kind = SCHEMA_TYPES[schema]
        self.short.extend([f"{schema} {received}"] if received else [])
        self.unmatched.extend([f"{schema} {invalid}"] if invalid else [])
        self.unmatched_of.setdefault(kind, []).extend([f"{schema} {invalid}"] if invalid else [])
        whole = _none_matched(payload, sent)
        self.all_unmatched[kind] = self.all_unmatched.get(kind, True) and whole

    def none_matched(self, types: Sequence[str]) -> bool:
        """Whether every hash of every one of these types matched no Meta user, by every
        call's counts: Meta removed no one for a job that sent only those (vendor37)."""
        return bool(types) and all(self.all_unmatched.get(kind) for kind in types)

    def note(self, types: Sequence[str]) -> str | None:
        """The note of Meta's invalid counts for the calls of these types, or None. Meta
        received every hash and counts some as matching no one, a count it calls approximate:
        nothing Meta could remove for those, and a retry re-sent the whole batch to the same
        count until "retries exhausted" (vendorfix M1), so not retried. Which hash is not
        known: a job carries its own types' counts (vendor37: before, every call's)."""
        named = [count for kind in types for count in self.unmatched_of.get(kind, ())]
        if not named:
            return None
        return "meta: " + "; ".join(named) + f" ({UNMATCHED_IS_NOTHING_TO_REMOVE})"


def _none_matched(payload: object, sent: int) -> bool:
    """Whether Meta's answer counts every hash sent as received and as invalid: none of them
    matched a Meta user (its count is approximate; only "all of them" is read per job)."""
    received, invalid = _count(payload, "num_received"), _count(payload, "num_invalid_entries")
    return received is not None and invalid is not None and received >= sent and invalid >= sent


def _shortfall(payload: object, sent: int) -> tuple[str, str]:
    """What Meta's answer says it did not take: fewer `num_received` than sent, and any
    `num_invalid_entries` (counts only, never `invalid_entry_samples`), each "" when none.
    Both "" when the answer carries no counts: a 2xx is then all there is to judge. Invalid
    entries counted without `num_received` are a shortfall: `done` needs every hash received."""
    received, invalid = _count(payload, "num_received"), _count(payload, "num_invalid_entries")
    unmatched = f"{invalid} of {sent} unmatched or invalid" if _invalid_count(payload) else ""
    if received is None:
        return ("received not counted" if unmatched else ""), unmatched
    return (f"{received} of {sent} received" if received < sent else ""), unmatched
