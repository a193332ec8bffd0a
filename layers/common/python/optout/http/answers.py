"""One error envelope for every 4xx, `{"error": {"code", "message", "field"}}`, and its words.

Every refusal of both API functions goes through here: the raw-body gate's, the domain's
(`DomainError` subclasses, one map), Powertools' validation errors and unknown routes.
Messages are ours and say what is expected. They never hold the value sent (it may be PII),
nor a name we did not choose (an unknown key may itself be an email), nor a pydantic regular
expression or internal phrase.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from optout.api_formats import EXPECTED_FORMATS
from optout.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from optout.identity_token import InvalidToken

if TYPE_CHECKING:  # the Event Handler is imported by the routes that use it, not here
    from aws_lambda_powertools.event_handler import Response
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
    from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

JSON = "application/json"
# A name we may repeat back: it looks like one of our field names, so it is not a value.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_LOCATIONS = {"body", "path", "query", "header", "cookie"}
# Most specific first: InvalidToken is an InvalidInput.
_DOMAIN_ANSWERS: tuple[tuple[type[DomainError], int, str], ...] = (
    (InvalidToken, 422, "invalid_token"),
    (InvalidInput, 422, "invalid_field"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (Forbidden, 403, "forbidden"),
)


class Refused(Exception):
    """A 4xx answer: raised by the raw-body gate, built from every other refusal."""

    def __init__(self, status: int, code: str, message: str, field: str | None = "body") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> str:
        """`ErrorOut` as pydantic writes it (compact, UTF-8 unescaped), without importing pydantic
        for it: a hot route's refusal by the domain (a 409, a bad identity token) is answered
        without the models (tests/unit/test_answers.py holds the two together)."""
        detail = {"code": self.code, "message": self.message, "field": self.field}
        return json.dumps({"error": detail}, ensure_ascii=False, separators=(",", ":"))


NO_ROUTE = Refused(404, "not_found", "no such route: /v1/openapi.json lists the routes", None)


def field_name(name: object) -> str:
    """`name` if it is safe to repeat back, else "body"."""
    return name if isinstance(name, str) and _FIELD_NAME.fullmatch(name) else "body"


def field_path(parts: Sequence[object]) -> str:
    """("links", 0, "a", "value") -> "links[0].a.value"; stops before a name we did not
    choose, so a stranger's key is never repeated back."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and _FIELD_NAME.fullmatch(part):
            path += f".{part}" if path else part
        else:
            break
    return path or "body"


# -- domain errors and validation errors -> Refused -----------------------------------------


def from_domain(error: DomainError) -> Refused:
    for kind, status, code in _DOMAIN_ANSWERS:
        if isinstance(error, kind):
            return Refused(status, code, error.message, error.field)
    return Refused(400, "bad_request", error.message, error.field)


def from_validation(error: "RequestValidationError") -> Refused:
    """The first of pydantic's errors, in our words."""
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
    if kind == "extra_forbidden" and field_name(parts[-1] if parts else None) == "body":
        # The unknown name is not one we would repeat back (it may be the value itself).
        return Refused(
            422, "invalid_field", f"{label} has a field this request does not take", field
        )
    last = next((p for p in reversed(parts) if isinstance(p, str)), "")
    return Refused(422, "invalid_field", f"{label} {expected_words(kind, context, last)}", field)


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

    return Response(refused.status, JSON, refused.body())


def raw_answer(refused: Refused, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The same answer as a Lambda proxy result, for refusals before the resolver runs."""
    return {
        "statusCode": refused.status,
        "headers": {"Content-Type": JSON, **(headers or {})},
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
    app.exception_handler(RequestValidationError)(lambda error: render(from_validation(error)))
    app.not_found(lambda _: render(no_route))
