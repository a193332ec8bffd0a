"""The Trade Desk: POST {base_url}/data/deletion-optout/advertiser, RequestType OptOut.

Items carry UID2 values derived from email (UID2 normalisation: lowercase; gmail.com without
dots and '+tag') or E.164 phone, each SHA-256 then base64. Auth: `TTD-Auth` header. TTD
answers 200 with `FailedLines` (ItemNumber = index of the item, unconfirmed whether 0- or
1-based; read here as 0-based): a job all of whose items failed fails permanently.
"""

from collections.abc import Sequence
from typing import ClassVar

from optout.connectors.base import Connector, Job, Model, Outcome, parse_config
from optout.connectors.hashing import uid2_email_hash, uid2_phone_hash
from optout.connectors.http import json_body
from optout.identifiers import IdType
from optout.systems import CONNECTOR_ID_TYPES


class TradeDeskOptions(Model):
    base_url: str
    advertiser_id: str


class TradeDeskSecret(Model):
    auth_token: str


class TradeDeskConnector(Connector):
    max_batch = 1000  # items per call
    accepted_types: ClassVar[tuple[IdType, ...]] = CONNECTOR_ID_TYPES["trade_desk"]

    def configure(self) -> None:
        self.opts = parse_config(TradeDeskOptions, self.system.options, "options", self.system.name)
        self.creds = parse_config(TradeDeskSecret, self.secret, "credentials", self.system.name)

    def weight(self, job: Job) -> int:
        return len(self.identifiers(job))

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        items: list[dict[str, str]] = []
        owner: list[str] = []
        for job in jobs:
            for identifier in self.identifiers(job):
                uid2 = (
                    uid2_email_hash(identifier.value)
                    if identifier.type == "email"
                    else uid2_phone_hash(identifier.value)
                )
                items.append({"UID2": uid2})
                owner.append(job.job_id)
        answer = self.http.send(
            "POST",
            self.opts.base_url.rstrip("/") + "/data/deletion-optout/advertiser",
            step="trade_desk deletion-optout",
            headers={"Content-Type": "application/json", "TTD-Auth": self.creds.auth_token},
            body=json_body(
                {"AdvertiserId": self.opts.advertiser_id, "Items": items, "RequestType": "OptOut"}
            ),
        )
        payload = answer.json()
        lines = payload.get("FailedLines") if isinstance(payload, dict) else None
        numbers = [
            str(line.get("ItemNumber", "")) for line in lines or [] if isinstance(line, dict)
        ]
        return self.item_outcomes(
            jobs, owner, [int(n) for n in numbers if n.isdigit()], answer.status,
            "trade_desk: every item rejected",
        )  # fmt: skip
