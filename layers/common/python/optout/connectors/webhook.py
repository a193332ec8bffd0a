"""Generic signed webhook, for in-house systems and the third parties data was sold/shared to.

POST {base_url}{path} with JSON {request_id, job_id, purposes, identifiers:[{type, value,
hashed}]}; headers `X-OptOut-Timestamp` (unix seconds) and `X-OptOut-Signature:
sha256=<hex HMAC-SHA256(signing_secret, "<timestamp>.<body>")>`, so the receiver can check
origin and reject replays. One job per call: receivers treat each call as one request.
"""

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

from optout.connectors.base import Connector, Job, Model, Outcome, parse_config
from optout.connectors.hashing import sha256_hex
from optout.connectors.http import json_body

SIGNATURE_HEADER = "X-OptOut-Signature"
TIMESTAMP_HEADER = "X-OptOut-Timestamp"


class WebhookOptions(Model):
    base_url: str
    path: str = ""


class WebhookSecret(Model):
    signing_secret: str


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookConnector(Connector):
    max_batch = 1
    clock: Callable[[], float] = staticmethod(time.time)

    def configure(self) -> None:
        self.opts = parse_config(WebhookOptions, self.system.options, "options", self.system.name)
        self.creds = parse_config(WebhookSecret, self.secret, "credentials", self.system.name)

    def send(self, jobs: Sequence[Job]) -> list[Outcome]:
        (job,) = jobs
        hashed = self.system.hashing == "sha256"
        body = json_body(
            {
                "request_id": job.request_id,
                "job_id": job.job_id,
                "purposes": sorted(job.purposes),
                "identifiers": [
                    {
                        "type": i.type,
                        "value": sha256_hex(i.value) if hashed else i.value,
                        "hashed": hashed,
                    }
                    for i in self.identifiers(job)
                ],
            }
        )
        timestamp = str(int(self.clock()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(self.creds.signing_secret, timestamp, body),
        }
        url = self.opts.base_url.rstrip("/") + self.opts.path
        answer = self.http.send("POST", url, step="webhook", headers=headers, body=body)
        payload = answer.json()
        ref = payload.get("reference") if isinstance(payload, dict) else None
        ref = ref or answer.headers.get("x-request-id")
        return [Outcome(job.job_id, "done", answer.status, ref, self.types_sent(job))]
