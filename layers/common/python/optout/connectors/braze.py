"""Braze: find the person's profiles, then set a do-not-sell custom attribute on them only.

1. POST {base_url}/users/export/ids: up to 50 `external_ids` per call, or one
   `email_address`, or one `phone` (E.164, as we hold it: docs/vendors.md, "Braze") per call,
   `fields_to_export` kept minimal. Identifiers Braze does not know come back missing from
   `users` (external ids also in `invalid_user_ids`).
2. POST {base_url}/users/track with one attributes object per profile found: by `external_id`
   for a customer id, and by `braze_id` for *every* profile the export found for an email or
   a phone (addressed by `email`, Braze updates only the most recently updated of several),
   `"_update_existing_only": true` (without it Braze *creates* a profile for an unknown
   identifier: an opt-out must never add personal data to a vendor), 50 objects per call.
A job none of whose identifiers Braze knows is `no_record` ("no such person (braze
users/export/ids)", with that export's own HTTP status), a receipt; an export answer without
its `users` list, or whose `message` is not "success" (Braze: "returns 'success' when
completed without errors"), or listing a profile without the id asked for (`braze_id`,
`external_id`), is not understood and is retried, never no_record.
Braze answers 201 even when it rejects some objects ("minor errors", by index): a job whose
every object was rejected fails, and in a job that is done a type with a rejected object is
listed as rejected, not as sent (base.item_outcomes). A /users/track answer whose `message`
is neither "success" nor "queued" (the 202 of Braze's maintenance: received, processed later)
is Braze's "message with fatal errors": nothing was processed, the batch fails (not retried,
as Braze's fatal 4xx; no `message` at all: not understood, retried). /users/track is processed
asynchronously and has no status to poll, so "done" means Braze accepted an update-only write
for profiles it holds.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from optout.connectors.base import Connector, Job, Outcome, noted, positions
from optout.connectors.errors import DeliveryError
from optout.connectors.http import HttpResponse, json_body
from optout.connectors.models import Model, parse_config
from optout.identifiers import Identifier, IdType
from optout.systems import CONNECTOR_ID_TYPES

# The `message` of Braze's answers (braze-docs _docs/_api/errors.md, "Server Responses", "Queued
# Responses"): "success", or "queued" (a 202 in maintenance: received, processed later);
# any other is a fatal error's message.
SUCCESS, QUEUED = "success", "queued"
EXPORT_IDS_PER_CALL = 50  # Braze: up to 50 external_ids per /users/export/ids request
# Braze: 75 objects per /users/track call, 50 on "Monthly Active Users CY 24-25" contracts;
# 50 fits both. One email may hold several profiles, so a batch can need more than one call.
TRACK_OBJECTS_PER_CALL = 50
# The types /users/export/ids takes one value of per call, and the field naming it. A phone is
# sent as we hold it, E.164 with its "+" (Braze types the field "String in E.164 format").
ONE_PER_CALL: dict[IdType, str] = {"email": "email_address", "phone": "phone"}
Profile = dict[str, str]  # a /users/track identifier: {"external_id": ...} or {"braze_id": ...}


@dataclass(frozen=True, kw_only=True)
class BrazeOptions(Model):
    base_url: str
    attribute: str = "do_not_sell_or_share"


@dataclass(frozen=True, kw_only=True)
class BrazeSecret(Model):
    api_key: str


class BrazeConnector(Connector[BrazeSecret]):
    max_batch = EXPORT_IDS_PER_CALL  # identifiers per batch; /users/track takes up to 75
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["braze"]
    secret_model = BrazeSecret

    def configure(self) -> None:
        self.opts = parse_config(BrazeOptions, self.system.options, "options", self.system.name)
        self.root = self.opts.base_url.rstrip("/")

    def weight(self, job: Job) -> int:
        return len(self.identifiers(job))

    def calls_per_batch(self, jobs: int) -> int:
        # one export of the external ids, one per email and per phone, then /users/track
        types = self.system.identifier_types
        singles = sum(jobs for t in ONE_PER_CALL if t in types)
        return int("customer_id" in types) + singles + 1

    def calls_per_part(self, part: Job) -> int:
        # One export of its external ids, one per email and per phone (a job carries its
        # cluster's), a track
        sent = self.identifiers(part)
        singles = sum(i.type in ONE_PER_CALL for i in sent)
        return int(any(i.type == "customer_id" for i in sent)) + singles + 1

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        profiles, asked = self._profiles([i for job in jobs for i in self.identifiers(job)])
        attributes: list[dict[str, Any]] = []
        owner: list[tuple[str, str]] = []  # attributes index -> (job id, identifier type)
        outcomes: dict[str, Outcome] = {}
        notes: dict[str, str] = {}
        unsent: dict[str, tuple[int, ...]] = {}  # job id -> where its values with no profile are
        for job in jobs:
            found = [(i, profiles[(i.type, i.value)]) for i in self.identifiers(job)
                     if profiles.get((i.type, i.value))]  # fmt: skip
            none = [i for i in self.identifiers(job) if not profiles.get((i.type, i.value))]
            unsent[job.job_id] = positions(job, none)
            if not found:
                # Braze's own status on the export that found nobody (201), not a constant
                # (review s31 counsel F4)
                answered = max(asked.get((i.type, i.value), 0) for i in self.identifiers(job))
                outcomes[job.job_id] = Outcome(
                    job.job_id, "no_record", answered or None, None, self.types_sent(job),
                    note="no such person (braze users/export/ids)",
                )  # fmt: skip
            # One email (or phone), several profiles: each is updated by its braze_id. Per
            # identifier: a job carries several people's (a cluster's, a carried second
            # account's), whose sum would say one person has duplicates (review s31 counsel F2).
            if many := [n for t in ONE_PER_CALL if (n := _shared(t, found))]:
                notes[job.job_id] = ", ".join(many) + ", an update sent to each"
            for identifier, keys in found:
                for key in keys:
                    attributes.append(
                        {**key, self.opts.attribute: True, "_update_existing_only": True}
                    )
                    owner.append((job.job_id, identifier.type))
        rejected: dict[int, str] = {}
        status = 201
        for start in range(0, len(attributes), TRACK_OBJECTS_PER_CALL):
            chunk = attributes[start : start + TRACK_OBJECTS_PER_CALL]
            answer = self._post("/users/track", {"attributes": chunk}, "braze users/track")
            status = answer.status
            payload = answer.json()
            _accepted(payload)
            errors = payload.get("errors")
            errors = errors if isinstance(errors, list) else []
            for error in errors:  # Braze's error text is not kept: it may quote the object
                index = error.get("index") if isinstance(error, dict) else None
                if isinstance(index, int) and 0 <= index < len(chunk):
                    rejected[start + index] = ""
        if attributes:
            tracked = [job for job in jobs if job.job_id not in outcomes]
            for outcome in self.item_outcomes(
                tracked, owner, rejected, status, "braze users/track: object rejected"
            ):
                found_out = replace(outcome, not_sent_at=unsent.get(outcome.job_id, ()))
                outcomes[outcome.job_id] = noted(found_out, notes.get(outcome.job_id), outcome.note)
        return [outcomes[job.job_id] for job in jobs]

    def _profiles(
        self, identifiers: list[Identifier]
    ) -> tuple[dict[tuple[str, str], list[Profile]], dict[tuple[str, str], int]]:
        """(type, value) -> the /users/track identifier of each profile Braze holds for it: the
        external id itself, or the `braze_id` of every profile holding the email or phone
        (Braze updates only one of several profiles addressed by `email`); and -> the HTTP
        status of the export call that asked for it."""
        profiles: dict[tuple[str, str], list[Profile]] = {}
        asked: dict[tuple[str, str], int] = {}
        external = sorted({i.value for i in identifiers if i.type == "customer_id"})
        for start in range(0, len(external), EXPORT_IDS_PER_CALL):
            part = external[start : start + EXPORT_IDS_PER_CALL]
            status, users = self._export({"external_ids": part})
            asked.update({("customer_id", value): status for value in part})
            for value in _exported(users, "external_id"):
                profiles[("customer_id", value)] = [{"external_id": value}]
        for kind, field in ONE_PER_CALL.items():
            for value in sorted({i.value for i in identifiers if i.type == kind}):
                asked[(kind, value)], users = self._export({field: value})
                ids = sorted(set(_exported(users, "braze_id")))
                if ids:
                    profiles[(kind, value)] = [{"braze_id": b} for b in ids]
        return profiles, asked

    def _export(self, query: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
        fields = ["external_id"] if "external_ids" in query else ["braze_id"]
        answer = self._post(
            "/users/export/ids", {**query, "fields_to_export": fields}, "braze users/export/ids"
        )
        payload = answer.json()
        users = payload.get("users") if isinstance(payload, dict) else None
        if not isinstance(users, list):
            # Not Braze's export answer: read as no profiles it would be "no such person"
            raise DeliveryError("braze users/export/ids: malformed answer", retryable=True)
        if payload.get("message") != SUCCESS:
            # Braze: "success" when the export completed without errors; an empty `users`
            # from any other would be read as "no such person"
            raise DeliveryError("braze users/export/ids: export not completed", retryable=True)
        return answer.status, [u for u in users if isinstance(u, dict)]

    def _post(self, path: str, payload: dict[str, Any], step: str) -> HttpResponse:
        return self.http.send(
            "POST",
            self.root + path,
            step=step,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.creds.api_key}",
            },
            body=json_body(payload),
        )


def _exported(users: list[dict[str, Any]], field: str) -> list[str]:
    """Each exported profile's `field` (the one asked for in `fields_to_export`). A profile
    without it as a non-empty string is not understood, and retried: skipped, a person Braze
    holds would read "no such person", a no_record receipt (vendor35)."""
    values = [u.get(field) for u in users]
    if not all(isinstance(v, str) and v for v in values):
        raise DeliveryError(f"braze users/export/ids: a profile without its {field}",
                            retryable=True)  # fmt: skip
    return [str(v) for v in values]


def _accepted(payload: Any) -> None:
    """Raise unless a /users/track 2xx says Braze accepted the call (Braze's "message" only
    names the outcome; its text is not kept: a fatal message may quote an object)."""
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, str):
        raise DeliveryError("braze users/track: malformed answer", retryable=True)
    if message not in (SUCCESS, QUEUED):
        raise DeliveryError("braze users/track: fatal error", retryable=False)


def _shared(kind: IdType, found: list[tuple[Identifier, list[Profile]]]) -> str | None:
    """The note for a job's identifiers of `kind` that each matched several profiles, counted
    per identifier ("email matched 2 Braze profiles"; "2 phones each matched several Braze
    profiles (2, 3)"), or None when none did."""
    shared = sorted(len(keys) for i, keys in found if i.type == kind and len(keys) > 1)
    if not shared:
        return None
    if len(shared) == 1:
        return f"{kind} matched {shared[0]} Braze profiles"
    return (
        f"{len(shared)} {kind}s each matched several Braze profiles ({', '.join(map(str, shared))})"
    )
