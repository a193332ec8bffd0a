"""Braze REST API: POST /users/export/ids and POST /users/track (attributes).

Profiles are synthetic: every email and external id is a known user except those whose local
part (or id) starts with "unknown", and every E.164 phone except those ending in 0000. An email
whose local part starts with "shared" (a phone ending in 2222) is held by two profiles (two
`braze_id`s), as duplicates by email or phone are at Braze; an email starting with "locked"
is held by a profile whose /users/track objects the sandbox rejects (a "minor error" by index,
to show partial rejections). As at Braze, a /users/track object for an unknown user *creates* a
profile unless it says `"_update_existing_only": true`; such creations are recorded in
`created`, so a test can show that an opt-out added no one. `updated` maps each profile
(`braze_id:<id>` or `external_id:<id>`) to the attributes written on it; an object by `email`
updates only one profile of several, as Braze's /users/track FAQ says.

/users/export/ids takes up to 50 `external_ids`, or exactly one `email_address` or `phone`
(Braze: "only one of these identifiers per request"); anything else is a 400. A `phone` must
be the documented "String in E.164 format" (+ and up to 15 digits): the sandbox refuses any
other form with a 400, stricter than Braze is known to be, so a connector sending another
form fails here instead of finding no one.
"""

import hashlib
import re
from typing import Any

from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response, parse_json

MAX_OBJECTS = 75
MAX_EXTERNAL_IDS = 50
IDENTIFIERS = ("external_id", "user_alias", "braze_id", "email", "phone")
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
ONE_PER_REQUEST = ("email_address", "phone")  # with external_ids: one of them per request


def known(value: str) -> bool:
    if E164.fullmatch(value):
        return not value.endswith("0000")
    return not value.split("@", maxsplit=1)[0].startswith("unknown")


def braze_ids(value: str) -> list[str]:
    """The braze_id of every profile the sandbox holds for an email or phone (none if
    unknown)."""
    if not known(value):
        return []
    base = "sandbox-" + hashlib.sha256(value.encode()).hexdigest()[:12]
    shared = value.startswith("shared") or (E164.fullmatch(value) and value.endswith("2222"))
    return [base + "-1", base + "-2"] if shared else [base]


class Braze:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.api_key = secrets.get("api_key")
        self.created: list[str] = []  # identifier kinds of profiles an update created
        self.updated: dict[str, dict[str, Any]] = {}
        self.issued: dict[str, str] = {}  # braze_id -> its profile's email or phone

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
        singles = [body[k] for k in ONE_PER_REQUEST if body.get(k)]
        if len(external) > MAX_EXTERNAL_IDS or len(singles) + bool(external) != 1:
            return json_response(400, {"message": "Invalid identifiers"})
        phone = body.get("phone")
        if phone and not (isinstance(phone, str) and E164.fullmatch(phone)):
            return json_response(400, {"message": "Invalid phone"})
        users = [{"external_id": e} for e in external if isinstance(e, str) and known(e)]
        for value in singles:
            for braze_id in braze_ids(value) if isinstance(value, str) else []:
                self.issued[braze_id] = value
                users.append({"braze_id": braze_id})
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
            kind, value = ids[0], str(attribute[ids[0]])
            written = {k: v for k, v in attribute.items() if k in fields}
            if kind == "email" and "@" not in value:
                errors.append(
                    {"type": "invalid email", "input_array": "attributes", "index": index}
                )
            elif kind == "braze_id" and self.issued.get(value, "").startswith("locked"):
                errors.append(
                    {"type": "profile locked", "input_array": "attributes", "index": index}
                )
            elif kind == "braze_id" and value not in self.issued:
                if attribute.get("_update_existing_only") is not True:
                    self.created.append(kind)
            elif kind == "email" and braze_ids(value):  # Braze: the most recently updated one
                self.updated.setdefault("braze_id:" + braze_ids(value)[-1], {}).update(written)
            elif not known(value):
                if attribute.get("_update_existing_only") is not True:
                    self.created.append(kind)  # what Braze does: a new profile
            else:
                self.updated.setdefault(f"{kind}:{value}", {}).update(written)
        if len(errors) == len(attributes):
            return json_response(400, {"message": "Invalid attributes", "errors": errors})
        answer: dict[str, Any] = {
            "message": "success",
            "attributes_processed": len(attributes) - len(errors),
        }
        if errors:
            answer["errors"] = errors
        return json_response(201, answer)
