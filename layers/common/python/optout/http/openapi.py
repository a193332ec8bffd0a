"""The OpenAPI document a function serves, with our error envelope documented on every route.

Powertools documents a 422 with its own `HTTPValidationError` body (and schemas for response
validation errors); our functions never send those shapes. Every operation instead lists
`4XX` with `ErrorOut`, so a client (or schemathesis) can check each refusal against the
schema, and routes added later are covered too.

What the routes read before Powertools routes them is added here too, from the tables each
function passes: the headers the gate reads (optout/http/context.py: a Powertools `Header()`
parameter would be a second check of them, and the hot routes never reach it), the plain form
the webform posts (the gate turns it into the JSON body: Powertools gives a body one media
type), the HTML pages a person gets instead of a refusal's JSON, and the 503 a route answers
when AWS did not (with `Retry-After`).
"""

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from aws_lambda_powertools.event_handler.openapi.models import Server

from optout.api_models import ErrorOut

_REF = "#/components/schemas/{model}"
FORM = "application/x-www-form-urlencoded"
HTML = "text/html"
FORM_BODY = (
    "JSON, or the webform's plain form post with the same fields (a list field repeated, "
    "e.g. purposes=sale&purposes=share; a field holding an object, such as agent, only in JSON)"
)
HEADERS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {
        "description": "1-255 printable characters. A retry with the same key and body stores "
        "nothing new and gets the first answer (same request_id, status "
        "`received`: read the progress at GET /v1/requests/{request_id}); the same key with "
        "another body (or the same body with another Sec-GPC) for the same caller is a 409 "
        "conflict.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    },
    "Sec-GPC": {
        "description": "Global Privacy Control. `1` (the edge forwards it) is an opt-out of "
        "sale, share and targeted_advertising whatever the body says, answered with "
        "gpc_honored: true; any other value is ignored.",
        "schema": {"type": "string", "examples": ["1"]},
    },
    # The same header on a read: answered, never recorded (a GET writes nothing)
    "Sec-GPC on a read": {
        "name": "Sec-GPC",
        "description": "Global Privacy Control. `1` is answered as gpc_signal: true (the "
        "answer says `Vary: Sec-GPC`); the read records nothing, so gpc_honored still says "
        "only whether a POST carried the signal.",
        "schema": {"type": "string", "examples": ["1"]},
    },
}


UNAVAILABLE = (
    "Not served just now (nothing recorded): the table, or at a cold start Secrets Manager,"
    " throttled or failed; send the same request again"
)
RETRY = {
    "Retry-After": {
        "description": "Seconds to wait before sending the same request (same Idempotency-Key)",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def server_url(event: Mapping[str, Any]) -> str:
    """Where the routes are, from the request that asked for the document: an execute-api URL
    carries its stage (`/prod/v1/...`); a custom domain (its API mapping is at the root, as the
    edge's origin) and a `$default` stage do not. A relative `/` alone would drop the stage."""
    context = event.get("requestContext") or {}
    stage, domain = str(context.get("stage") or "$default"), str(context.get("domainName") or "")
    if stage == "$default" or ".execute-api." not in domain:
        return "/"
    return f"/{stage}"


def document(
    app: ApiGatewayResolver,
    *,
    server: str = "/",
    headers: Mapping[str, Sequence[str]] | None = None,
    forms: Mapping[str, str] | None = None,
    pages: Collection[str] = (),
    unavailable: Collection[str] = (),
    **info: Any,
) -> str:
    """`headers`: per operation ("POST /v1/consent"), the keys of HEADERS it reads; `forms`:
    per operation, the model its plain form post stands for; `pages`: the operations that
    answer a person's refusal with an HTML page; `unavailable`: the operations that answer 503
    (same envelope, and page) when their table (or Secrets Manager) throttled or failed.
    `info`: what Powertools' get_openapi_json_schema takes (title, version, ...)."""
    headers, forms = headers or {}, forms or {}
    raw = app.get_openapi_json_schema(servers=[Server(url=server)], **info)
    doc: dict[str, Any] = json.loads(raw)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in [name for name in schemas if name.endswith("ValidationError")]:
        schemas.pop(name)
    error = ErrorOut.model_json_schema(ref_template=_REF)
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorOut"] = error
    for path, path_item in doc.get("paths", {}).items():
        for method, operation in path_item.items():
            key = f"{method.upper()} {path}"
            refusal: dict[str, Any] = {
                "description": "Refused: the error says which field and what is expected",
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(model="ErrorOut")}}
                },
            }
            if key in pages:
                refusal["content"][HTML] = {"schema": {"type": "string"}}
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["4XX"] = refusal
            if key in unavailable:
                responses["503"] = {**refusal, "description": UNAVAILABLE, "headers": RETRY}
            for name in headers.get(key, ()):
                parameter = {"name": name, "in": "header", "required": False, **HEADERS[name]}
                operation.setdefault("parameters", []).append(parameter)
            if key in forms:
                body = operation["requestBody"]
                body["content"][FORM] = {"schema": {"$ref": _REF.format(model=forms[key])}}
                body["description"] = FORM_BODY
    return json.dumps(doc)
