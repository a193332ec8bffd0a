"""Segment: a consent-preference track event (default) or a Public API regulation.

mode "consent" (default; base_url the Tracking API, https://api.segment.io): POST
{base_url}/v1/batch (HTTP Basic, write key as user name) with one "Segment Consent Preference
Updated" track event per customer id (`userId`), `context.consent.categoryPreferences` setting
the workspace's consent category of each opted-out purpose to false. `categories` maps every
purpose the system serves to one of the workspace's own category ids: there is no default
(a purpose name is not a category id). messageId derives from the job id and the customer id
(a digest, not the value, so it is the same in whichever part of a split job the id goes),
so Segment de-duplicates a resend. "Done": Segment's Tracking API answered 2xx (no status
exists). That is delivery only: Segment answers 200 to almost every request, an unknown write
key and events it later drops included, so the receipt's note says so (CONSENT_NOTE).

mode "regulation" (base_url the Public API, https://api.segmentapis.com): POST
{base_url}/regulations (Bearer token) with `regulation_type` (SUPPRESS_ONLY by default; only
the Segment-only suppressing types are accepted: a DELETE_* type stops no new data, and
SUPPRESS_WITH_DELETE's status is FAILED when any destination cannot delete, suppression done
or not), subjectType USER_ID and the customer ids. Segment cannot suppress what device-mode
destinations receive directly from the browser or app, so a FINISHED regulation covers
cloud-mode data only.
Regulations run asynchronously: the job is `submitted` with the regulateId, and confirm()
reads GET {base_url}/regulations/{id}: FINISHED is done; FAILED, INVALID, NOT_SUPPORTED and
PARTIAL_SUCCESS fail with that status; INITIALIZED and RUNNING are still processing.

Segment matches on userId only: our device_id cookie is not Segment's anonymousId.
"""

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from optout.connectors.base import Connector, Job, Outcome, Submitted, reason_code, reference
from optout.connectors.errors import ConfigError, DeliveryError
from optout.connectors.http import json_body
from optout.connectors.models import Model, parse_config
from optout.identifiers import CUSTOMER_ID_RE, Identifier, IdType
from optout.purposes import Purpose
from optout.systems import CONNECTOR_ID_TYPES
from optout.timestamps import iso

CONSENT_EVENT = "Segment Consent Preference Updated"
PUBLIC_API_JSON = "application/vnd.segment.v1+json"
# The workspace regulation's types (POST /regulations): Segment's Public API SDK's
# CreateWorkspaceRegulationV1Input.RegulationTypeEnum (tests/unit/connectors/test_segment_sdk.py
# holds this list to it). DELETE_ARCHIVE_ONLY is a source-scoped type only, never this call's.
RegulationType = Literal[
    "SUPPRESS_ONLY",
    "SUPPRESS_WITH_DELETE",
    "SUPPRESS_WITH_DELETE_INTERNAL",
    "DELETE_INTERNAL",
    "DELETE_ONLY",
    "UNSUPPRESS",
]
# Segment: DELETE_ONLY deletes "existing data without suppressing any new data"; the
# DELETE_* types never stop new events reaching destinations, so an opt-out cannot use them.
# SUPPRESS_WITH_DELETE (a "Segment & Destination" regulation) also forwards a deletion to
# destinations, and its overall status "might return a FAILED status because of a failure on
# an unsupported destination" (segment.com/docs/privacy/user-deletion-and-suppression/, read
# 2026-12-03) with the suppression, the opt-out itself, in place: a receipt that cannot tell
# the two apart. The Segment-only types suppress the same way.
SUPPRESSING = frozenset({"SUPPRESS_ONLY", "SUPPRESS_WITH_DELETE_INTERNAL"})
FORWARDS_DELETION = "SUPPRESS_WITH_DELETE"
FINISHED = "FINISHED"
STILL_RUNNING = frozenset({"INITIALIZED", "RUNNING"})
MAX_SUBJECTS = 5000  # subjectIds per regulation
MAX_CUSTOMER_ID = 128  # identifiers.CUSTOMER_ID_RE: 1-128 of [A-Za-z0-9._:-]
ID_PUNCTUATION = frozenset("._:-")
# Segment: a suppression "can take up to 30 days to process", and deletions have a 30-day
# SLA; a regulation still RUNNING before then is not a failure.
REGULATION_GIVE_UP_SECONDS = 30 * 24 * 3600
# Segment's Tracking API: 460 is a retry, as Segment's own library reads it
# (segment-analytics-python 2.4.0, consumer.py: "Retryable 4xx: 408, 429, 460"; read
# 2026-12-03); no Segment page names it. 410, which that library retries only "for parity with
# the Node.js SDK" ("the server will keep returning 410"), stays final here.
TRACKING_RETRYABLE = frozenset({460})
# Segment's Tracking API answers 200 to an unknown write key and to events it drops later: a
# consent receipt can prove delivery, not effect (docs/vendors.md, "Segment").
CONSENT_NOTE = (
    "Segment's 200 confirms neither the write key nor that the event was applied "
    "(delivery only; check the source's debugger)"
)


@dataclass(frozen=True, kw_only=True)
class CustomerIdForm(Model):
    """A customer id of the form: `prefix`, then `min_length` to `max_length` characters,
    each one of `characters`. No regular expression (review s34 M1): an operator's regex run
    by Python's backtracking engine on an id anyone may send could take seconds, so the form
    is checked in one pass over the id, whatever it says."""

    prefix: str = ""
    # Listed characters and ranges of one kind (`0-9`, `a-f`, `A-Z`); a `-` first or last is
    # itself. All within a customer id's own alphabet (identifiers.CUSTOMER_ID_RE).
    characters: str
    min_length: int = 1
    max_length: int = MAX_CUSTOMER_ID
    # One or more of the business's own ids: each must be of the form, or the configuration is
    # refused (review s34 M2: a form that matches no real id sends no one).
    examples: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SegmentOptions(Model):
    base_url: str
    mode: Literal["consent", "regulation"] = "consent"
    # purpose -> the workspace's consent category id (consent mode): required, no defaulting
    categories: dict[Purpose, str] = field(default_factory=dict)
    regulation_type: RegulationType = "SUPPRESS_ONLY"
    # The form of the workspace's own customer ids, or None: every id is sent. Anyone may type
    # a customer id into an opt-out, and a consent event for an id Segment never saw is a new,
    # billed tracked user there (review s34 stranger M1): an id outside the business's own form
    # names no one, so it is not sent.
    customer_id_form: CustomerIdForm | None = None


# Worker metric (Connector.counts): Segment jobs answered with a customer id outside the form
UNFORMED_METRIC = "SegmentCustomerIdsUnformed"


@dataclass(frozen=True)
class CustomerIdRule:
    """CustomerIdForm, read: one pass over an id, no backtracking."""

    prefix: str
    allowed: frozenset[str]
    min_length: int
    max_length: int

    def broken(self, value: str) -> str | None:
        """The rule `value` breaks (words only, never the value), or None."""
        if not value.startswith(self.prefix):
            return "does not begin with the prefix"
        rest = value[len(self.prefix) :]
        if len(rest) < self.min_length:
            return "is shorter after the prefix than min_length"
        if len(rest) > self.max_length:
            return "is longer after the prefix than max_length"
        if not all(c in self.allowed for c in rest):
            return "has a character after the prefix outside characters"
        return None


def is_id_character(c: str) -> bool:
    return (c.isascii() and c.isalnum()) or c in ID_PUNCTUATION


def allowed_characters(spelling: str) -> frozenset[str]:
    """`0-9a-f_`: the characters listed, `x-y` a range of one kind (digits, lower-case or
    upper-case letters, x not after y); a `-` first or last is itself. ValueError says why."""
    if not spelling:
        raise ValueError("must list one or more characters")
    allowed: set[str] = set()
    i = 0
    while i < len(spelling):
        c = spelling[i]
        if not is_id_character(c):
            raise ValueError("may hold only letters, digits and . _ : -")
        if c != "-" and i + 2 < len(spelling) and spelling[i + 1] == "-":
            end = spelling[i + 2]
            if not (_kind(c) and _kind(c) == _kind(end) and c <= end):
                raise ValueError("has a range that is not a-z, A-Z or 0-9 (or part of one)")
            allowed.update(chr(n) for n in range(ord(c), ord(end) + 1))
            i += 3
            continue
        allowed.add(c)
        i += 1
    return frozenset(allowed)


def _kind(c: str) -> str | None:
    if "0" <= c <= "9":
        return "digit"
    if "a" <= c <= "z":
        return "lower"
    if "A" <= c <= "Z":
        return "upper"
    return None


@dataclass(frozen=True, kw_only=True)
class SegmentSecret(Model):
    write_key: str | None = None  # consent mode
    token: str | None = None  # regulation mode (Public API token)


class SegmentConnector(Connector[SegmentSecret]):
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["segment"]
    max_batch = 200  # events (or subject ids) per call: well under Segment's limits
    secret_model = SegmentSecret
    asynchronous = True  # regulation mode

    def weight(self, job: Job) -> int:
        return len(self.identifiers(job))

    def configure(self) -> None:
        self.opts = parse_config(SegmentOptions, self.system.options, "options", self.system.name)
        self.root = self.opts.base_url.rstrip("/")
        if self.opts.regulation_type == FORWARDS_DELETION:
            raise ConfigError(
                f"system {self.system.name}: options.regulation_type {FORWARDS_DELETION} "
                f"forwards a deletion to every destination, and Segment reports FAILED when "
                f"one of them cannot delete even though the suppression is in place: use "
                f"SUPPRESS_WITH_DELETE_INTERNAL (suppress, and delete inside Segment) or "
                f"SUPPRESS_ONLY"
            )
        if self.opts.regulation_type not in SUPPRESSING:
            raise ConfigError(
                f"system {self.system.name}: options.regulation_type "
                f"{self.opts.regulation_type} does not suppress new data, so Segment would keep "
                f"collecting and forwarding the person's events: use one of "
                f"{', '.join(sorted(SUPPRESSING))}"
            )
        self._customer_ids = self._customer_id_form(self.opts.customer_id_form)
        if self.opts.mode == "consent":
            missing = sorted(set(self.system.purposes) - set(self.opts.categories))
            if missing:
                raise ConfigError(
                    f"system {self.system.name}: options.categories must map every purpose "
                    f"to a consent category id of the workspace (missing {missing})"
                )

    def _customer_id_form(self, form: CustomerIdForm | None) -> CustomerIdRule | None:
        if form is None:
            return None
        what = f"system {self.system.name}: options.customer_id_form"
        try:
            allowed = allowed_characters(form.characters)
        except ValueError as why:
            raise ConfigError(f"{what}.characters {why}") from None
        if not all(is_id_character(c) for c in form.prefix):
            raise ConfigError(f"{what}.prefix may hold only letters, digits and . _ : -")
        if not 0 <= form.min_length <= form.max_length:
            raise ConfigError(f"{what}: min_length must be 0 or more and at most max_length")
        if len(form.prefix) + form.min_length > MAX_CUSTOMER_ID:
            raise ConfigError(
                f"{what}: the prefix and min_length exceed a customer id's {MAX_CUSTOMER_ID} "
                f"characters"
            )
        rule = CustomerIdRule(form.prefix, allowed, form.min_length, form.max_length)
        if not form.examples:
            raise ConfigError(f"{what}.examples must give one or more of your own customer ids")
        for n, example in enumerate(form.examples, 1):
            broken = rule.broken(example) or (
                None if CUSTOMER_ID_RE.fullmatch(example) else "is not a customer id at all"
            )
            if broken is not None:  # the rule only: the example is a real customer's id
                raise ConfigError(
                    f"{what}: example {n} of {len(form.examples)} {broken}: every example must "
                    f"be of the form, or the form would send no real id"
                )
        return rule

    def unformed(self, identifier: Identifier) -> str | None:
        """A customer id outside the workspace's own form (`customer_id_form`): it names
        no one there, and sending it would make a tracked user of it."""
        rule = self._customer_ids
        if identifier.type == "customer_id" and rule and rule.broken(identifier.value):
            return "not this workspace's customer id form"
        return None

    def deliver(self, jobs: Sequence[Job]) -> list[Outcome]:
        outcomes = super().deliver(jobs)
        if self._customer_ids is not None:
            # Jobs given an answer (not retried) holding a customer id outside the form: a
            # wrong form shows here, with no value (docs/operations.md, review s34 M2)
            answered = {o.job_id for o in outcomes if o.status is not None}
            self.counts[UNFORMED_METRIC] += sum(
                1 for job in jobs if job.job_id in answered and self._any_unformed(job)
            )
        return outcomes

    def _any_unformed(self, job: Job) -> bool:
        return any(self.unformed(i) is not None for i in job.identifiers)

    def confirm_give_up_seconds(self, configured: float) -> float:
        if self.opts.mode == "regulation":
            return max(configured, REGULATION_GIVE_UP_SECONDS)
        return configured

    def _credential(self, needed: Literal["write_key", "token"]) -> str:
        value = getattr(self.creds, needed)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"system {self.system.name}: credentials need {needed}")
        return value

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        if self.opts.mode == "regulation":
            return self._regulate(jobs)
        return self._track(jobs)

    def _track(self, jobs: Sequence[Job]) -> list[Outcome]:
        now = iso(datetime.now(UTC))
        events: list[dict[str, Any]] = []
        for job in jobs:
            preferences = {self.opts.categories[p]: False for p in sorted(job.purposes)}
            for identifier in self.identifiers(job):
                digest = hashlib.sha256(identifier.value.encode()).hexdigest()[:16]
                events.append(
                    {
                        "type": "track",
                        "event": CONSENT_EVENT,
                        "userId": identifier.value,
                        "messageId": f"{job.job_id}:{digest}",
                        # when the consumer chose (Segment's spec: when it occurred); the
                        # send is sentAt. A job stored without it (before 2026-12-01): now.
                        "timestamp": job.chosen_at or now,
                        "sentAt": now,
                        "context": {"consent": {"categoryPreferences": preferences}},
                        "properties": {"request_id": job.request_id},
                    }
                )
        auth = base64.b64encode(f"{self._credential('write_key')}:".encode()).decode()
        answer = self.http.send(
            "POST",
            self.root + "/v1/batch",
            step="segment batch",
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
            body=json_body({"batch": events}),
            also_retryable=TRACKING_RETRYABLE,
        )
        return [Outcome(j.job_id, "done", answer.status, None, self.types_sent(j),
                        note=CONSENT_NOTE) for j in jobs]  # fmt: skip

    def _headers(self) -> dict[str, str]:
        return {
            "Content-Type": PUBLIC_API_JSON,
            "Accept": PUBLIC_API_JSON,
            "Authorization": f"Bearer {self._credential('token')}",
        }

    def _regulate(self, jobs: Sequence[Job]) -> list[Outcome]:
        subject_ids = sorted({i.value for job in jobs for i in self.identifiers(job)})
        answer = self.http.send(
            "POST",
            self.root + "/regulations",
            step="segment regulation",
            headers=self._headers(),
            body=json_body(
                {
                    "regulationType": self.opts.regulation_type,
                    "subjectType": "USER_ID",
                    "subjectIds": subject_ids,
                }
            ),
        )
        payload = answer.json()
        data = payload.get("data") if isinstance(payload, dict) else None
        # The id goes into the status call's path and onto the receipt: only an id-shaped one
        ref = reference(data.get("regulateId") if isinstance(data, dict) else None,
                        [i for job in jobs for i in job.identifiers])  # fmt: skip
        if ref is None:
            raise DeliveryError("segment regulation: answer without regulateId", retryable=True)
        return [
            Outcome(j.job_id, "submitted", answer.status, ref, self.types_sent(j)) for j in jobs
        ]

    def check(self, submitted: Sequence[Submitted]) -> list[Outcome]:
        # Each regulation read on its own (base.read_each): one Segment refuses fails only
        # the jobs holding that regulateId, never the batch's others (review s29 F2).
        def read(ref: str) -> tuple[str, int]:
            answer = self.http.send(
                "GET",
                f"{self.root}/regulations/{ref}",
                step="segment regulation status",
                headers=self._headers(),
            )
            payload = answer.json()
            data = payload.get("data") if isinstance(payload, dict) else None
            regulation = data.get("regulation") if isinstance(data, dict) else None
            status = regulation.get("overallStatus") if isinstance(regulation, dict) else None
            if not isinstance(status, str):
                raise DeliveryError("segment regulation status: malformed answer", retryable=True)
            return status, answer.status

        verdicts = self.read_each(sorted({s.vendor_ref for s in submitted}), read)
        outcomes = []
        for item in submitted:
            verdict = verdicts[item.vendor_ref]
            if not isinstance(verdict, tuple):  # base.Unread: this regulation's read failed
                outcomes.append(verdict.outcome(item))
                continue
            status, http_status = verdict
            types = item.identifier_types_sent
            if status == FINISHED:
                outcomes.append(Outcome(item.job_id, "done", http_status, item.vendor_ref, types))
            elif status in STILL_RUNNING:
                outcomes.append(
                    Outcome(item.job_id, "submitted", http_status, item.vendor_ref, types)
                )
            else:
                shown = status if reason_code(status) else "unrecognised status"
                error = DeliveryError(
                    f"segment regulation: {shown}", retryable=False, http_status=http_status
                )
                outcomes.append(
                    Outcome(item.job_id, None, http_status, item.vendor_ref, types, error=error)
                )
        return outcomes
