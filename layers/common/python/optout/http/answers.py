"""One error envelope for every 4xx and 503, `{"error": {"code", "message", "field"}}`, and
its words.

Every refusal of both API functions goes through here: the raw-body gate's, the domain's
(`DomainError` subclasses, one map), Powertools' validation errors and unknown routes.
Messages are ours and say what is expected. They never hold the value sent (it may be PII),
nor a name we did not choose (an unknown key may itself be an email, a customer id or a device
id: review s17 PII H2) unless it is a near miss of a name the route takes (a typo), nor a
pydantic regular expression or internal phrase.
"""

import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

from optout.api_formats import EXPECTED_FORMATS
from optout.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, Unavailable
from optout.identity_token import InvalidToken

if TYPE_CHECKING:  # the Event Handler is imported by the routes that use it, not here
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

JSON = "application/json"
# The names a caller may send that we chose: every input model's fields (and aliases), the
# purposes (keys of `opt_out`), the import's columns, path and query parameters. Only these
# are repeated back as they are; tests/integration/test_hostile_input.py holds the list to the
# OpenAPI documents. Plain strings, so the raw-body gate names a field without pydantic.
API_FIELDS = frozenset(
    {
        "a", "agent", "agent_id", "b", "completed_at", "confirm_opt_in", "cursor",
        "customer_id", "device_id", "email", "external_id", "from", "gpc", "hold_id",
        "identity", "identity_token", "jurisdiction", "limit", "limit_sensitive", "line",
        "links", "name", "opt_out", "page_url", "phone", "policy_version", "profiling",
        "purposes", "reason", "reason_code", "received_at", "request_id", "resend", "rows",
        "sale", "share", "source", "system", "targeted_advertising", "to", "type", "value",
        "year",
    }
)  # fmt: skip
# A key we did not define is named back only as a typo of one the route takes: close to it
# (difflib's ratio; `emial` to `email` is 0.8, a customer id to any name far less) and short.
_NEAR_CUTOFF = 0.8
_NEAR_MAX = 32
_NEAR_SHAPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOCATIONS = {"body", "path", "query", "header", "cookie"}
# Most specific first: InvalidToken is an InvalidInput.
_DOMAIN_ANSWERS: tuple[tuple[type[DomainError], int, str], ...] = (
    (InvalidToken, 422, "invalid_token"),
    (InvalidInput, 422, "invalid_field"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (Forbidden, 403, "forbidden"),
    (Unavailable, 503, "unavailable"),
)


class Refused(Exception):
    """A 4xx answer (raised by the raw-body gate, built from every other refusal), or a 503
    with `retry_after` (a store that did not answer)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = "body",
        retry_after: int | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after
        self.extra_headers = extra_headers or {}

    def headers(self) -> dict[str, str]:
        """The answer's own headers: `Retry-After` when the same request may come again, and
        any the refusal names (a 415 for a content coding lists what is accepted)."""
        own = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        return {**own, **self.extra_headers}

    def body(self) -> str:
        """`ErrorOut` as pydantic writes it (compact, UTF-8 unescaped), without importing pydantic
        for it: a hot route's refusal by the domain (a 409, a bad identity token) is answered
        without the models (tests/unit/test_answers.py holds the two together)."""
        detail = {"code": self.code, "message": self.message, "field": self.field}
        return json.dumps({"error": detail}, ensure_ascii=False, separators=(",", ":"))


NO_ROUTE = Refused(404, "not_found", "no such route: /v1/openapi.json lists the routes", None)


def field_name(name: object) -> str:
    """`name` if it is one of ours (API_FIELDS), else "body"."""
    return name if isinstance(name, str) and name in API_FIELDS else "body"


def field_path(parts: Sequence[object]) -> str:
    """("links", 0, "a", "value") -> "links[0].a.value"; stops before a name we did not
    choose, so a stranger's key is never repeated back."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part in API_FIELDS:
            path += f".{part}" if path else part
        else:
            break
    return path or "body"


def near_miss(name: object, known: Collection[str]) -> str | None:
    """The name in `known` that `name` is a typo of (`emial` -> `email`), or None. Only then
    may a key we did not define be repeated back: it is a misspelt name, not a value."""
    if not isinstance(name, str) or len(name) > _NEAR_MAX or not _NEAR_SHAPE.fullmatch(name):
        return None
    found = get_close_matches(name, sorted(known), n=1, cutoff=_NEAR_CUTOFF)
    return found[0] if found else None


# -- domain errors and validation errors -> Refused -----------------------------------------


def from_domain(error: DomainError) -> Refused:
    retry_after = error.retry_after if isinstance(error, Unavailable) else None
    for kind, status, code in _DOMAIN_ANSWERS:
        if isinstance(error, kind):
            return Refused(status, code, error.message, error.field, retry_after)
    return Refused(400, "bad_request", error.message, error.field)


def from_validation(error: "RequestValidationError", model: object = None) -> Refused:
    """The first of pydantic's errors, in our words. `model`: the route's body model, whose
    names an unknown key may be a typo of."""
    first = error.errors()[0]
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        return Refused(400, "malformed_json", "the body is not valid JSON")
    parts = list(first.get("loc", ()))
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    key_error = "[key]" in parts  # a dict's key was refused: the location holds the key itself
    if key_error:
        parts = parts[: parts.index("[key]") - 1]
    field = field_path(parts)
    label = "the body" if field == "body" else field
    context = first.get("ctx") or {}
    if key_error:
        expected = context.get("expected")
        rule = f"may only have the keys {expected}" if expected else "has a key that is not allowed"
        return Refused(422, "invalid_field", f"{label} {rule}", field)
    if kind == "extra_forbidden":
        return unknown_field(parts, model)
    last = next((p for p in reversed(parts) if isinstance(p, str)), "")
    return Refused(422, "invalid_field", f"{label} {expected_words(kind, context, last)}", field)


def unknown_field(parts: Sequence[object], model: object) -> Refused:
    """A key the body's model does not define, at `parts`. Named back if it is one of our
    names (sent to the wrong route or place) or a near miss of a name taken there; otherwise
    not named at all: a customer id or device id sent as a key is a value."""
    key, parent = (parts[-1], parts[:-1]) if parts else (None, ())
    where = field_path(parent)
    near = near_miss(key, _names_at(model, parent))
    if isinstance(key, str) and (key in API_FIELDS or near):
        path = f"{where}.{key}" if where != "body" else key
        hint = f"; did you mean {near}?" if near else ""
        return Refused(422, "invalid_field", f"{path} is not a field of this request{hint}", path)
    label = "the body" if where == "body" else where
    return Refused(422, "invalid_field", f"{label} has an unknown field (not named here)", where)


def _names_at(model: object, parts: Sequence[object]) -> frozenset[str]:
    """The names (aliases where set) of the model found at `parts` inside `model`: the
    fields an unknown key there may be a typo of. Empty when the path leaves the models."""
    current = model
    for part in parts:
        if isinstance(part, int):
            continue
        fields = _fields(current)
        if not isinstance(part, str) or part not in fields:
            return frozenset()
        current = _model_in(fields[part])
    return frozenset(_fields(current))


def _fields(model: object) -> dict[str, Any]:
    """A pydantic model's fields by the name a caller sends (the alias where one is set)."""
    found = getattr(model, "model_fields", None)
    if not isinstance(found, dict):
        return {}
    return {info.alias or name: info.annotation for name, info in found.items()}


def _model_in(annotation: object) -> object:
    """The model inside an annotation (`Model | None`, `list[Model]`, `Annotated[...]`)."""
    from typing import get_args  # noqa: PLC0415

    if hasattr(annotation, "model_fields"):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def expected_words(kind: str, ctx: Mapping[str, Any], name: str) -> str:
    """What pydantic's error type means, from our schema's limits (ctx), never the input."""
    if kind == "string_pattern_mismatch":
        return EXPECTED_FORMATS.get(name, "does not have the expected format")
    words: dict[str, Callable[[], str]] = {
        "missing": lambda: "is required",
        "extra_forbidden": lambda: "is not a field of this request",
        "string_type": lambda: "must be a string",
        "string_unicode": lambda: "must be valid text",
        "string_too_short": lambda: (
            "must not be empty"
            if ctx.get("min_length") == 1
            else f"must be at least {ctx.get('min_length')} characters"
        ),
        "string_too_long": lambda: f"must be at most {ctx.get('max_length')} characters",
        "bool_type": lambda: "must be true or false",
        "bool_parsing": lambda: "must be true or false",
        "int_type": lambda: "must be a whole number",
        "int_parsing": lambda: "must be a whole number",
        "int_parsing_size": lambda: "must be a whole number of sensible size",
        "int_from_float": lambda: "must be a whole number",
        "greater_than_equal": lambda: f"must be at least {ctx.get('ge')}",
        "less_than_equal": lambda: f"must be at most {ctx.get('le')}",
        "greater_than": lambda: f"must be more than {ctx.get('gt')}",
        "less_than": lambda: f"must be less than {ctx.get('lt')}",
        "dict_type": lambda: "must be a JSON object",
        "model_type": lambda: "must be a JSON object",
        "model_attributes_type": lambda: "must be a JSON object",
        "list_type": lambda: "must be a JSON array",
        "too_short": lambda: f"must have at least {ctx.get('min_length')} item(s)",
        "too_long": lambda: f"must have at most {ctx.get('max_length')} items",
        "enum": lambda: f"must be one of {ctx.get('expected')}",
        "literal_error": lambda: f"must be one of {ctx.get('expected')}",
    }
    return words.get(kind, lambda: "is not valid")()


# -- rendering -----------------------------------------------------------------------------


def json_response(refused: Refused) -> "Response[str]":
    from aws_lambda_powertools.event_handler import Response  # noqa: PLC0415

    return Response(refused.status, JSON, refused.body(), headers=refused.headers())


def raw_answer(refused: Refused, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The same answer as a Lambda proxy result, for refusals before the resolver runs."""
    return {
        "statusCode": refused.status,
        "headers": {"Content-Type": JSON, **(headers or {}), **refused.headers()},
        "body": refused.body(),
        "isBase64Encoded": False,
    }


def install(
    app: "ApiGatewayResolver",
    render: "Callable[[Refused], Response[Any]]" = json_response,
    no_route: Refused = NO_ROUTE,
) -> None:
    """Every refusal the resolver meets answers through `render` (JSON unless told);
    `no_route` names the document that lists this function's routes."""
    from aws_lambda_powertools.event_handler.openapi.exceptions import (  # noqa: PLC0415
        RequestValidationError,
    )

    app.exception_handler(DomainError)(lambda error: render(from_domain(error)))
    app.exception_handler(RequestValidationError)(
        lambda error: render(from_validation(error, _route_model(app)))
    )
    app.not_found(lambda _: render(no_route))


def _route_model(app: "ApiGatewayResolver") -> object:
    """The body model of the route being answered, or None. Powertools keeps the matched route
    in `app.context["_route"]` (its own validation middleware reads it there); without it, an
    unknown key is simply never named."""
    route = app.context.get("_route")
    params = getattr(getattr(route, "dependant", None), "body_params", None) or ()
    return getattr(params[0], "type_", None) if params else None


def kept_by_no_one(answer: dict[str, Any]) -> dict[str, Any]:
    """Marks an answer of either API function as per person: no browser or proxy may keep it
    (a device's state, a request's status, a lookup or an export holding identifier values),
    and none may read it as other than its content type (JSON too). Returns its headers."""
    headers: dict[str, Any] = answer.setdefault("headers", {})
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Cache-Control", "no-store")
    return headers
