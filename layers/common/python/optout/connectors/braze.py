"""Braze: POST {base_url}/users/track setting a do-not-sell custom attribute to true.

One attributes object per identifier (`external_id` for customer_id, `email` for email), up
to 75 objects per call (Braze's limit). Braze answers 201 even when it rejects some objects
("minor errors", listed by index): a job whose every object was rejected fails permanently.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

from optout.connectors.base import Connector, Job, Model, Outcome, parse_config
from optout.connectors.http import json_body
from optout.identifiers import IdType
from optout.systems import CONNECTOR_ID_TYPES

ID_FIELDS: dict[str, str] = {"customer_id": "external_id", "email": "email"}


class BrazeOptions(Model):
    base_url: str
    attribute: str = "do_not_sell_or_share"


class BrazeSecret(Model):
    api_key: str


class BrazeConnector(Connector):
    max_batch = 75
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["braze"]

    def configure(self) -> None:
        self.opts = parse_config(BrazeOptions, self.system.options, "options", self.system.name)
        self.creds = parse_config(BrazeSecret, self.secret, "credentials", self.system.name)

    def weight(self, job: Job) -> int:
        return len(self.identifiers(job))

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        attributes: list[dict[str, Any]] = []
        owner: list[str] = []  # attributes index -> job id
        for job in jobs:
            for identifier in self.identifiers(job):
                attributes.append(
                    {ID_FIELDS[identifier.type]: identifier.value, self.opts.attribute: True}
                )
                owner.append(job.job_id)
        answer = self.http.send(
            "POST",
            self.opts.base_url.rstrip("/") + "/users/track",
            step="braze users/track",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.creds.api_key}",
            },
            body=json_body({"attributes": attributes}),
        )
        payload = answer.json()
        errors = payload.get("errors", []) if isinstance(payload, dict) else []
        indexes = [e.get("index") for e in errors if isinstance(e, dict)]
        return self.item_outcomes(
            jobs, owner, [i for i in indexes if isinstance(i, int)], answer.status,
            "braze users/track: object rejected",
        )  # fmt: skip
