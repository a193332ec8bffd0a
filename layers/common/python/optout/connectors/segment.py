"""Segment: a consent-preference track event (default) or a Public API suppression regulation.

mode "consent" (default): POST {base_url}/v1/batch (HTTP Basic, write key as user name) with
one "Segment Consent Preference Updated" track event per customer_id (userId) / device_id
(anonymousId), `context.consent.categoryPreferences` setting each opted-out purpose's
category to false. messageId derives from the job id, so Segment de-duplicates a resend.

mode "regulation": POST {base_url}/regulations (Bearer token) with regulationType
SUPPRESS_ONLY, subjectType USER_ID and the customer ids: Segment then drops the user's data.
"""

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from optout.connectors.base import Connector, Job, Model, Outcome, parse_config
from optout.connectors.errors import ConfigError
from optout.connectors.http import json_body
from optout.identifiers import Identifier, IdType
from optout.purposes import Purpose
from optout.systems import CONNECTOR_ID_TYPES
from optout.timestamps import iso

CONSENT_EVENT = "Segment Consent Preference Updated"
PUBLIC_API_JSON = "application/vnd.segment.v1+json"


class SegmentOptions(Model):
    base_url: str
    mode: Literal["consent", "regulation"] = "consent"
    # purpose -> consent category name; a purpose not listed is its own category
    categories: dict[Purpose, str] = Field(default_factory=dict)


class SegmentSecret(Model):
    write_key: str | None = None  # consent mode
    token: str | None = None  # regulation mode (Public API token)


class SegmentConnector(Connector):
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["segment"]
    max_batch = 200  # events per call: well under Segment's 500 KB per batch call

    def weight(self, job: Job) -> int:
        return len(self.identifiers(job))

    def configure(self) -> None:
        self.opts = parse_config(SegmentOptions, self.system.options, "options", self.system.name)
        self.creds = parse_config(SegmentSecret, self.secret, "credentials", self.system.name)
        needed = "write_key" if self.opts.mode == "consent" else "token"
        if getattr(self.creds, needed) is None:
            raise ConfigError(f"system {self.system.name}: credentials need {needed}")

    def identifiers(self, job: Job) -> list[Identifier]:
        types = ("customer_id", "device_id") if self.opts.mode == "consent" else ("customer_id",)
        return [i for i in job.identifiers if i.type in types and self.system.accepts(i.type)]

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        if self.opts.mode == "regulation":
            return self._regulate(jobs)
        return self._track(jobs)

    def _track(self, jobs: Sequence[Job]) -> list[Outcome]:
        now = iso(datetime.now(UTC))
        events: list[dict[str, Any]] = []
        for job in jobs:
            preferences = {self.opts.categories.get(p, p): False for p in sorted(job.purposes)}
            for n, identifier in enumerate(self.identifiers(job)):
                key = "userId" if identifier.type == "customer_id" else "anonymousId"
                events.append(
                    {
                        "type": "track",
                        "event": CONSENT_EVENT,
                        key: identifier.value,
                        "messageId": f"{job.job_id}:{n}",
                        "timestamp": now,
                        "context": {"consent": {"categoryPreferences": preferences}},
                        "properties": {"request_id": job.request_id},
                    }
                )
        auth = base64.b64encode(f"{self.creds.write_key}:".encode()).decode()
        answer = self.http.send(
            "POST",
            self.opts.base_url.rstrip("/") + "/v1/batch",
            step="segment batch",
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
            body=json_body({"batch": events}),
        )
        return [Outcome(j.job_id, "done", answer.status, None, self.types_sent(j)) for j in jobs]

    def _regulate(self, jobs: Sequence[Job]) -> list[Outcome]:
        subject_ids = sorted({i.value for job in jobs for i in self.identifiers(job)})
        answer = self.http.send(
            "POST",
            self.opts.base_url.rstrip("/") + "/regulations",
            step="segment regulation",
            headers={
                "Content-Type": PUBLIC_API_JSON,
                "Accept": PUBLIC_API_JSON,
                "Authorization": f"Bearer {self.creds.token}",
            },
            body=json_body(
                {
                    "regulationType": "SUPPRESS_ONLY",
                    "subjectType": "USER_ID",
                    "subjectIds": subject_ids,
                }
            ),
        )
        payload = answer.json()
        data = payload.get("data") if isinstance(payload, dict) else None
        ref = data.get("regulateId") if isinstance(data, dict) else None
        return [Outcome(j.job_id, "done", answer.status, ref, self.types_sent(j)) for j in jobs]
