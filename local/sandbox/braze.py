"""Braze REST API: POST /users/export/ids and POST /users/track (attributes).

Profiles are synthetic: every email and external id is a known user except those whose local
part (or id) starts with "unknown". As at Braze, a /users/track object for an unknown user
*creates* a profile unless it says `"_update_existing_only": true`; such creations are
recorded in `created`, so a test can show that an opt-out added no one.
"""

import hashlib
from typing import Any

from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response, parse_json

MAX_OBJECTS = 75
MAX_EXTERNAL_IDS = 50
IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email", "phone")


def known(value: str) -> bool:
    return not value.split("@")[0].startswith("unknown")


class Braze:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.api_key = secrets.get("api_key")
        self.created: list[str] = []  # identifier kinds of profiles an update created
        self.updated: list[dict[str, Any]] = []

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST" or request.path not in ("/users/track", "/users/export/ids"):
            return json_response(404, {"message": "Not Found"})
        if not self.api_key or bearer(request) != self.api_key:
            return json_response(401, {"message": "Invalid API Key"})
        body = parse_json(request)
        if request.path == "/users/export/ids":
            return self._export(body)
        return self._track(body)

    def _export(self, body: Any) -> SandboxResponse:
        if not isinstance(body, dict):
            return json_response(400, {"message": "Invalid request"})
        external = body.get("external_ids") or []
        email = body.get("email_address")
        if len(external) > MAX_EXTERNAL_IDS or (external and email) or not (external or email):
            return json_response(400, {"message": "Invalid identifiers"})
        users = [{"external_id": e} for e in external if isinstance(e, str) and known(e)]
        if isinstance(email, str) and known(email):
            users.append({"braze_id": "sandbox-" + hashlib.sha256(email.encode()).hexdigest()[:12]})
        missing = [e for e in external if not (isinstance(e, str) and known(e))]
        answer: dict[str, Any] = {"message": "success", "users": users}
        if missing:
            answer["invalid_user_ids"] = missing
        return json_response(201, answer)

    def _track(self, body: Any) -> SandboxResponse:
        attributes = body.get("attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, list) or not attributes:
            return json_response(400, {"message": "Missing attributes", "errors": []})
        if len(attributes) > MAX_OBJECTS:
            return json_response(400, {"message": f"Too many attributes (max {MAX_OBJECTS})"})
        errors = []
        for index, attribute in enumerate(attributes):
            ids = [k for k in IDENTIFIERS if isinstance(attribute, dict) and k in attribute]
            fields = [k for k in attribute if k not in IDENTIFIERS and k != "_update_existing_only"]
            if len(ids) != 1 or not fields:
                errors.append(
                    {
                        "type": "exactly one identifier and one attribute required",
                        "input_array": "attributes",
                        "index": index,
                    }
                )
                continue
            value = str(attribute[ids[0]])
            if ids[0] == "email" and "@" not in value:
                errors.append(
                    {"type": "invalid email", "input_array": "attributes", "index": index}
                )
            elif not known(value):
                if attribute.get("_update_existing_only") is not True:
                    self.created.append(ids[0])  # what Braze does: a new profile
            else:
                self.updated.append({k: v for k, v in attribute.items() if k not in IDENTIFIERS})
        if len(errors) == len(attributes):
            return json_response(400, {"message": "Invalid attributes", "errors": errors})
        answer: dict[str, Any] = {
            "message": "success",
            "attributes_processed": len(attributes) - len(errors),
        }
        if errors:
            answer["errors"] = errors
        return json_response(201, answer)
