"""Braze REST API: POST /users/track (attributes only; up to 75 objects per call)."""

from typing import Any

from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response, parse_json

MAX_OBJECTS = 75
IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email", "phone")


class Braze:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.api_key = secrets.get("api_key")

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST" or request.path != "/users/track":
            return json_response(404, {"message": "Not Found"})
        if not self.api_key or bearer(request) != self.api_key:
            return json_response(401, {"message": "Invalid API Key"})
        body = parse_json(request)
        attributes = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, list) or not attributes:
            return json_response(400, {"message": "Missing attributes", "errors": []})
        if len(attributes) > MAX_OBJECTS:
            return json_response(400, {"message": f"Too many attributes (max {MAX_OBJECTS})"})
        errors = []
        for index, attribute in enumerate(attributes):
            ids = [k for k in IDENTIFIERS if isinstance(attribute, dict) and k in attribute]
            if len(ids) != 1 or len(attribute) < 2:
                errors.append(
                    {
                        "type": "exactly one identifier and one attribute required",
                        "input_array": "attributes",
                        "index": index,
                    }
                )
            elif ids[0] == "email" and "@" not in str(attribute["email"]):
                errors.append(
                    {"type": "invalid email", "input_array": "attributes", "index": index}
                )
        if len(errors) == len(attributes):
            return json_response(400, {"message": "Invalid attributes", "errors": errors})
        answer: dict[str, Any] = {
            "message": "success",
            "attributes_processed": len(attributes) - len(errors),
        }
        if errors:
            answer["errors"] = errors
        return json_response(201, answer)
