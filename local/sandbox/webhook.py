"""A receiver of the generic signed webhook, verifying calls with the reference receiver
(optout.connectors.webhook_signature.verify: timestamp window, key id, constant-time HMAC).

It answers as docs/connectors.md tells receivers to: 200 with a `reference` once applied;
200 `{"result": "no_record"}` when it holds none of the identifiers (`unknown`: the values,
as sent, it holds nothing for; tests set it); a repeated `job_id` exactly as the first time
(it remembers its 200 answers: a resend after a lost answer is `done` with the same
`reference`, never a 409 that would fail an applied opt-out); and, when `queue_only` is set
(tests), 202 Accepted: a receiver that only queued the request, with `Retry-After:
<queue_retry_after>` when that is set. Tests may also make it answer as a receiver outside
the contract does: `answer_result` (200 `{"result": <it>}`, say "error"),
`answer_json` (200 with that JSON object and no `result`, say `{"error": "bad_signature"}` or
`{"status": "queued"}`: a framework's "200 with errors", or a queue's acknowledgement)
or `answer_html` (200 with an HTML page: a catch-all or parked host)."""

import re
import time
from typing import Any

from local.sandbox.checks import is_sha256_hex
from local.sandbox.wire import SandboxRequest, SandboxResponse, json_response, parse_json
from optout.connectors.webhook_signature import SignatureError, verify

ID_TYPES = {"email", "phone", "customer_id", "device_id"}
PURPOSES = {"sale", "share", "targeted_advertising", "profiling", "limit_sensitive"}
FORWARDED = {"sale", "share", "limit_sensitive"}
NOTICE_KEYS = {"regulation", "instruction", "forward_to_third_parties"}
HTML_PAGE = b"<!doctype html><html><body>Welcome</body></html>"
JURISDICTION = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")


class Webhook:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.keys = {str(secrets.get("key_id", "1")): str(secrets.get("signing_secret", ""))}
        self.count = 0
        self.unknown: set[str] = set()
        self.queue_only = False
        self.answered: dict[str, SandboxResponse] = {}  # job_id -> its first 200 answer
        self.queue_retry_after: int | None = None
        self.answer_result: str | None = None
        self.answer_html = False
        self.answer_json: dict[str, Any] | None = None

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST" or request.path not in ("", "/"):
            return json_response(404, {"error": "not_found"})
        try:
            verify(request.headers, request.body, self.keys, time.time())
        except SignatureError as error:
            return json_response(401, {"error": "bad_signature", "reason": str(error)})
        body = parse_json(request)
        if request.headers.get("content-type") != "application/json" or not valid(body):
            return json_response(400, {"error": "malformed"})
        if self.answer_html:
            return SandboxResponse(200, {"content-type": "text/html"}, HTML_PAGE)
        first = self.answered.get(body["job_id"])
        if first is not None:
            return first
        self.count += 1
        if self.answer_result is not None:
            result = {"result": self.answer_result, "reference": f"wh_{self.count}"}
            return json_response(200, result)
        if self.answer_json is not None:
            return json_response(200, {**self.answer_json, "reference": f"wh_{self.count}"})
        if self.queue_only:
            wait = self.queue_retry_after
            headers = {} if wait is None else {"retry-after": str(wait)}
            return json_response(202, {"reference": f"wh_{self.count}"}, headers)
        if all(i["value"] in self.unknown for i in body["identifiers"]):
            answer = json_response(200, {"result": "no_record", "reference": f"wh_{self.count}"})
        else:
            answer = json_response(200, {"reference": f"wh_{self.count}"})
        self.answered[body["job_id"]] = answer
        return answer


def valid(body: Any) -> bool:
    if not isinstance(body, dict) or set(body) != {
        "request_id",
        "job_id",
        "purposes",
        "jurisdictions",
        "identifiers",
        "notice",
    }:
        return False
    if not isinstance(body["purposes"], list) or not set(body["purposes"]) <= PURPOSES:
        return False
    where = body["jurisdictions"]
    if not isinstance(where, list) or not all(
        isinstance(code, str) and JURISDICTION.fullmatch(code) for code in where
    ):
        return False
    if where != sorted(set(where)):
        return False
    notice = body["notice"]
    if not isinstance(notice, dict) or set(notice) != NOTICE_KEYS:
        return False
    if not all(isinstance(notice[k], str) and notice[k] for k in ("regulation", "instruction")):
        return False
    # The California rules are cited only for a request from California.
    if "Cal. Code Regs." in notice["regulation"] and "US-CA" not in where:
        return False
    # A sale/share opt-out (§7026(f)) or a limit (§7027(g)) must be passed on; a targeted-ads
    # or profiling opt-out alone carries no such instruction.
    if notice["forward_to_third_parties"] is not bool(set(body["purposes"]) & FORWARDED):
        return False
    identifiers = body["identifiers"]
    if not isinstance(identifiers, list) or not identifiers:
        return False
    for identifier in identifiers:
        if not isinstance(identifier, dict) or set(identifier) != {"type", "value", "hashed"}:
            return False
        if identifier["type"] not in ID_TYPES or not isinstance(identifier["value"], str):
            return False
        if identifier["hashed"] and not is_sha256_hex(identifier["value"]):
            return False
    return True
