"""Braze: find the person's profiles, then set a do-not-sell custom attribute on them only.

1. POST {base_url}/users/export/ids: up to 50 `external_ids` per call, or one
   `email_address` per call, `fields_to_export` kept minimal. Identifiers Braze does not know
   come back missing from `users` (external ids also in `invalid_user_ids`).
2. POST {base_url}/users/track with one attributes object per known identifier (`external_id`
   or `email`), `"_update_existing_only": true` (without it Braze *creates* a profile for an
   unknown identifier: an opt-out must never add personal data to a vendor), up to 75 objects.
A job none of whose identifiers Braze knows is `no_record` ("no such person"), a receipt.
Braze answers 201 even when it rejects some objects ("minor errors", by index): a job whose
every object was rejected fails. /users/track is processed asynchronously and has no status to
poll, so "done" means Braze accepted an update-only write for profiles it holds.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from optout.connectors.base import Connector, Job, Outcome
from optout.connectors.http import HttpResponse, json_body
from optout.connectors.models import Model, parse_config
from optout.identifiers import Identifier, IdType
from optout.systems import CONNECTOR_ID_TYPES

ID_FIELDS: dict[str, str] = {"customer_id": "external_id", "email": "email"}
EXPORT_IDS_PER_CALL = 50  # Braze: up to 50 external_ids per /users/export/ids request


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

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        known = self._known([i for job in jobs for i in self.identifiers(job)])
        attributes: list[dict[str, Any]] = []
        owner: list[str] = []  # attributes index -> job id
        outcomes: dict[str, Outcome] = {}
        for job in jobs:
            found = [i for i in self.identifiers(job) if (i.type, i.value) in known]
            if not found:
                outcomes[job.job_id] = Outcome(
                    job.job_id, "no_record", 200, None, self.types_sent(job), note="no such person"
                )
            for identifier in found:
                attributes.append(
                    {
                        ID_FIELDS[identifier.type]: identifier.value,
                        self.opts.attribute: True,
                        "_update_existing_only": True,
                    }
                )
                owner.append(job.job_id)
        if attributes:
            answer = self._post("/users/track", {"attributes": attributes}, "braze users/track")
            payload = answer.json()
            errors = payload.get("errors", []) if isinstance(payload, dict) else []
            indexes = [e.get("index") for e in errors if isinstance(e, dict)]
            tracked = [job for job in jobs if job.job_id not in outcomes]
            for outcome in self.item_outcomes(
                tracked, owner, [i for i in indexes if isinstance(i, int)], answer.status,
                "braze users/track: object rejected",
            ):  # fmt: skip
                outcomes[outcome.job_id] = outcome
        return [outcomes[job.job_id] for job in jobs]

    def _known(self, identifiers: list[Identifier]) -> set[tuple[str, str]]:
        """(type, value) of the identifiers Braze holds a profile for."""
        known: set[tuple[str, str]] = set()
        external = sorted({i.value for i in identifiers if i.type == "customer_id"})
        for start in range(0, len(external), EXPORT_IDS_PER_CALL):
            users = self._export({"external_ids": external[start : start + EXPORT_IDS_PER_CALL]})
            known.update(("customer_id", str(u.get("external_id"))) for u in users)
        for email in sorted({i.value for i in identifiers if i.type == "email"}):
            if self._export({"email_address": email}):
                known.add(("email", email))
        return known

    def _export(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        fields = ["external_id"] if "external_ids" in query else ["braze_id"]
        answer = self._post(
            "/users/export/ids", {**query, "fields_to_export": fields}, "braze users/export/ids"
        )
        payload = answer.json()
        users = payload.get("users") if isinstance(payload, dict) else None
        return [u for u in users or [] if isinstance(u, dict)]

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
