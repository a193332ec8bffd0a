"""Salesforce: OAuth client credentials, composite SOQL lookups, PATCH Individual.

Records are synthetic and deterministic: every email has a Contact with an Individual whose
Id derives from the email, except addresses whose local part starts with "unknown" (no
record), so a test or demo can show both outcomes.
"""

import hashlib
import re
import urllib.parse
from typing import Any

from local.sandbox.wire import (
    SandboxRequest,
    SandboxResponse,
    bearer,
    json_response,
    no_content,
    parse_json,
)

API = re.compile(r"^/services/data/v\d+\.0")
SOQL = re.compile(
    r"^SELECT Email, IndividualId FROM (Contact|Lead) WHERE Email IN \((.+)\) "
    r"AND IndividualId != null$"
)
LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'")
INDIVIDUAL_FIELDS = {
    "HasOptedOutTracking",
    "HasOptedOutProfiling",
    "HasOptedOutProcessing",
    "HasOptedOutSolicit",
    "ShouldForget",
    "SendIndividualData",
}
TOKEN = "00Dsandbox!fake-session-token"  # noqa: S105 - fake, sandbox only


def individual_id(email: str) -> str:
    return "0PK" + hashlib.sha256(email.encode()).hexdigest()[:15].upper()


def invalid_session() -> SandboxResponse:
    return json_response(
        401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    )


class Salesforce:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.client_id = secrets.get("client_id")
        self.client_secret = secrets.get("client_secret")
        self.individuals: dict[str, dict[str, bool]] = {}  # Id -> fields set by PATCH

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "POST" and request.path == "/services/oauth2/token":
            return self._token(request)
        path = API.sub("", request.path) if API.match(request.path) else None
        if path is None:
            return json_response(404, [{"errorCode": "NOT_FOUND", "message": "not found"}])
        if bearer(request) != TOKEN:
            return invalid_session()
        if request.method == "POST" and path == "/composite":
            return self._composite(request)
        match = re.fullmatch(r"/sobjects/Individual/(\w+)", path)
        if request.method == "PATCH" and match:
            return self._patch(match.group(1), request)
        return json_response(404, [{"errorCode": "NOT_FOUND", "message": "not found"}])

    def _token(self, request: SandboxRequest) -> SandboxResponse:
        form = dict(urllib.parse.parse_qsl(request.body.decode()))
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "unsupported_grant_type"})
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return json_response(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        return json_response(
            200,
            {
                "access_token": TOKEN,
                "token_type": "Bearer",
                "instance_url": "https://sandbox.my.salesforce.com",
            },
        )

    def _composite(self, request: SandboxRequest) -> SandboxResponse:
        body = parse_json(request)
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests or len(subrequests) > 25:
            return json_response(
                400, [{"errorCode": "JSON_PARSER_ERROR", "message": "bad request"}]
            )
        answers = []
        for sub in subrequests:
            answers.append(self._query(sub))
        return json_response(200, {"compositeResponse": answers})

    def _query(self, sub: Any) -> dict[str, Any]:
        reference = sub.get("referenceId") if isinstance(sub, dict) else None
        url = str(sub.get("url", "")) if isinstance(sub, dict) else ""
        parsed = urllib.parse.urlsplit(url)
        soql = dict(urllib.parse.parse_qsl(parsed.query)).get("q", "")
        match = SOQL.match(soql)
        if sub.get("method") != "GET" or not API.match(parsed.path) or not match:
            return {
                "body": [{"errorCode": "MALFORMED_QUERY", "message": "unexpected query"}],
                "httpHeaders": {},
                "httpStatusCode": 400,
                "referenceId": reference,
            }
        emails = [
            m.replace("\\'", "'").replace("\\\\", "\\") for m in LITERAL.findall(match.group(2))
        ]
        records = [
            {
                "attributes": {"type": match.group(1)},
                "Email": email,
                "IndividualId": individual_id(email),
            }
            for email in emails
            if match.group(1) == "Contact" and not email.split("@")[0].startswith("unknown")
        ]
        for record in records:
            self.individuals.setdefault(record["IndividualId"], {})
        return {
            "body": {"totalSize": len(records), "done": True, "records": records},
            "httpHeaders": {},
            "httpStatusCode": 200,
            "referenceId": reference,
        }

    def _patch(self, individual: str, request: SandboxRequest) -> SandboxResponse:
        if individual not in self.individuals:
            return json_response(
                404,
                [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}],
            )
        body = parse_json(request)
        if not isinstance(body, dict) or not body:
            return json_response(400, [{"errorCode": "JSON_PARSER_ERROR", "message": "bad body"}])
        for name, value in body.items():
            if name not in INDIVIDUAL_FIELDS or not isinstance(value, bool):
                return json_response(
                    400, [{"errorCode": "INVALID_FIELD", "message": f"No such column '{name}'"}]
                )
        self.individuals[individual].update(body)
        return no_content()
