"""Build API Gateway HTTP API (payload v2) events the way API Gateway sends them."""

import base64
import json
from typing import Any

from local.environment import LOCAL_IAM_CALLER
from tests.support.lambdas import load_event


def http_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    raw_body: str | bytes | None = None,
    iam: bool = False,
    caller_arn: str = LOCAL_IAM_CALLER,
) -> dict[str, Any]:
    event = load_event("consent_banner_opt_out.json")
    route_path = path
    for name, value in (path_parameters or {}).items():
        route_path = route_path.replace(value, "{" + name + "}")
    event["routeKey"] = f"{method} {route_path}"
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["routeKey"] = event["routeKey"]
    event["headers"] = {"content-type": "application/json", **(headers or {})}
    event["pathParameters"] = path_parameters
    if iam:
        event["requestContext"]["authorizer"] = {
            "iam": {"accessKey": "AKIAEXAMPLE", "accountId": "123456789012",
                    "callerId": "AIDAEXAMPLE", "principalOrgId": None,
                    "userArn": caller_arn, "userId": "AIDAEXAMPLE",
                    "cognitoIdentity": None}
        }  # fmt: skip
    else:
        event["requestContext"].pop("authorizer", None)
    if raw_body is not None:
        if isinstance(raw_body, bytes):
            event["body"] = base64.b64encode(raw_body).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = raw_body
            event["isBase64Encoded"] = False
    elif body is not None:
        event["body"] = json.dumps(body)
        event["isBase64Encoded"] = False
    else:
        event.pop("body", None)
        event["isBase64Encoded"] = False
    if method == "GET":
        event["headers"].pop("content-type", None)
    return event


def json_body(answer: dict[str, Any]) -> Any:
    return json.loads(answer["body"])
