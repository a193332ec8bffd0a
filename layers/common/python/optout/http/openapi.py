"""The OpenAPI document a function serves, with our error envelope documented on every route.

Powertools documents a 422 with its own `HTTPValidationError` body (and schemas for response
validation errors); our functions never send those shapes. Every operation instead lists
`4XX` with `ErrorOut`, so a client (or schemathesis) can check each refusal against the
schema, and routes added later are covered too.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

from optout.api_models import ErrorOut

_REF = "#/components/schemas/{model}"


def document(app: ApiGatewayResolver, **info: Any) -> str:
    """`info`: what Powertools' get_openapi_json_schema takes (title, version, ...)."""
    doc: dict[str, Any] = json.loads(app.get_openapi_json_schema(**info))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in [name for name in schemas if name.endswith("ValidationError")]:
        schemas.pop(name)
    error = ErrorOut.model_json_schema(ref_template=_REF)
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorOut"] = error
    refusal = {
        "description": "Refused: the error says which field and what is expected",
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorOut")}}},
    }
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["4XX"] = refusal
    return json.dumps(doc)
