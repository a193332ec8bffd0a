"""HTTP request <-> API Gateway HTTP API (payload format 2.0) event and response.

The event carries what API Gateway sends: the route key, raw path and query, lower-case
headers (repeated headers joined by commas), cookies split out of the Cookie header, query and
path parameters, the body (base64 when it is not text) and the request context. On an
IAM-authorised route, the IAM authorizer block is added when the request carries a SigV4
Authorization header; the signature is NOT verified locally (there are no IAM users here), and
every signed caller is the one local principal (`LOCAL_IAM_CALLER`) the admin function allows.
"""

import base64
import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from local.environment import LOCAL_IAM_CALLER
from local.http_types import Incoming, Outgoing
from local.template_config import Route
from optout.http.cookies import split_header

ACCOUNT_ID = "123456789012"
API_ID = "local"
SIGV4 = "AWS4-HMAC-SHA256"
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/javascript",
)


def to_event(request: Incoming, route: Route, path_parameters: dict[str, str]) -> dict[str, Any]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            # Trimmed of SP and HTAB only: a Unicode space before a name is part of it
            # (RFC 6265 §5.2; optout/http/cookies.py, review s29 stranger S1)
            cookies.extend(split_header(value))
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": headers.get("host", "127.0.0.1"),
        "domainPrefix": headers.get("host", "127.0.0.1").split(".")[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": "HTTP/1.1",
            "sourceIp": request.client_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route.route_key,
        "stage": "$default",  # served at the root, as a $default stage is
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(time.time() * 1000),
    }
    if route.iam:
        iam = iam_authorizer(headers.get("authorization"))
        if iam is not None:
            context["authorizer"] = {"iam": iam}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    query = _query_parameters(request.query)
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        if _is_text(headers.get("content-type", ""), request.body):
            event["body"] = request.body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(request.body).decode()
            event["isBase64Encoded"] = True
    return event


def iam_authorizer(authorization: str | None) -> dict[str, Any] | None:
    """The IAM block API Gateway adds after verifying SigV4; here only its presence is checked."""
    if not authorization or not authorization.startswith(SIGV4):
        return None
    found = _CREDENTIAL.search(authorization)
    access_key = found.group(1) if found else "LOCALACCESSKEY"
    return {
        "accessKey": access_key,
        "accountId": ACCOUNT_ID,
        "callerId": f"LOCAL{access_key}",
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": LOCAL_IAM_CALLER,
        "userId": f"LOCAL{access_key}",
    }


def from_result(result: Any) -> Outgoing:
    """A handler's answer -> HTTP, as API Gateway maps a payload 2.0 response."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0: anything else is a 200 JSON body (API Gateway's inferred format).
        text = result if isinstance(result, str) else _json(result)
        return Outgoing(200, [("Content-Type", "application/json")], text.encode())
    headers: list[tuple[str, str]] = [
        (str(k), str(v)) for k, v in (result.get("headers") or {}).items()
    ]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(v)) for v in values)
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return Outgoing(int(result["statusCode"]), headers, body)


def _query_parameters(query: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        merged[name] = f"{merged[name]},{value}" if name in merged else value
    return merged


def _is_text(content_type: str, body: bytes) -> bool:
    if not content_type.lower().startswith(TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _json(value: Any) -> str:
    return json.dumps(value, default=str)
