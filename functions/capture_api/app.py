"""Capture API: the public HTTP routes (v1). Thin: parse, call the domain, shape the answer.

The IAM routes (identity links, /v1/admin/*) live in functions/admin_api, with their own role.
"""

import base64
import json
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from optout.api_models import (
    ConsentIn,
    ConsentOut,
    ConsentStateOut,
    ErrorOut,
    OptOutIn,
    OptOutOut,
    RequestStatusOut,
)
from optout.capture import Captured, CaptureService
from optout.edge import HEADER as EDGE_HEADER
from optout.edge import EdgeGuard
from optout.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from optout.evidence import RequestContext
from optout.hash_key import load_hash_key
from optout.identity_token import InvalidToken, TokenVerifier
from optout.observability import logger, metrics, tracer
from optout.queries import QueryService
from optout.settings import Settings
from optout.store.table import Table
from optout.token_keys import load_token_keys
from optout.webform_pages import (
    HTML_HEADERS,
    confirmation_page,
    error_page,
    status_error_page,
    status_page,
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BODY_ROUTES = {
    "/v1/consent": (JSON,),
    "/v1/opt-out": (JSON, FORM),
}
FORM_LIST_FIELDS = {"purposes"}
ERROR_ANSWERS: dict[type[DomainError], tuple[int, str]] = {
    InvalidToken: (422, "invalid_token"),
    InvalidInput: (422, "invalid_field"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    Forbidden: (403, "forbidden"),
}
DEVICE_COOKIE = "optout_device_id"  # set by web/banner.js
DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
REQUEST_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
STATUS_ROUTE = "/v1/requests/"
# Whether this invocation answers a person with HTML pages (a no-JavaScript form post, or a
# browser opening a status link). Decided from the raw event before routing, per invocation;
# never from a header a client could set.
HTML_PAGES: ContextVar[bool] = ContextVar("html_pages", default=False)


def _cors() -> CORSConfig:
    origins = [o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "").split(",") if o.strip()]
    return CORSConfig(
        allow_origin=origins[0] if origins else "https://example.invalid",
        extra_origins=origins[1:],
        allow_headers=["Content-Type", "Idempotency-Key"],
        allow_credentials=False,
        max_age=600,
    )


cors = _cors()
app = APIGatewayHttpResolver(enable_validation=True, cors=cors)


class Services:
    """Built once per container on first use (not at import: tests build theirs under moto)."""

    def __init__(self) -> None:
        settings = Settings.from_env()
        table = Table.connect(settings.table_name)
        key = load_hash_key(settings)
        # Fails closed: no token key outside local mode -> this raises and nothing is served.
        tokens = TokenVerifier(
            load_token_keys(settings),
            settings.identity_token_audience,
            settings.identity_token_max_lifetime_seconds,
        )
        self.settings = settings
        self.edge = EdgeGuard.from_settings(settings)
        self.capture = CaptureService(table, settings, key, tokens)
        self.queries = QueryService(table, key)


@cache  # one per warm container; built on first use, not at import (tests build theirs)
def services() -> Services:
    return Services()


# -- routes ------------------------------------------------------------------------------


@app.post("/v1/consent", status_code=202, summary="Record a banner choice (and GPC)")
def post_consent(body: ConsentIn) -> Response[ConsentOut]:
    captured = services().capture.record_consent(body, _context())
    _count(captured, "ConsentCaptured")
    return _accepted(captured)


@app.get("/v1/consent/<device_id>", summary="Effective state of a device after resolution")
def get_consent(
    device_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16,64}$")],
) -> ConsentStateOut:
    return services().queries.consent_state(device_id)


@app.post("/v1/opt-out", status_code=202, summary="Webform or agent opt-out (JSON or form)")
def post_opt_out(body: OptOutIn) -> Response[OptOutOut | str]:  # str: the no-JS HTML page
    captured = services().capture.record_opt_out(body, _context())
    _count(captured, "OptOutCaptured")
    if HTML_PAGES.get():
        return _page(202, confirmation_page(captured.response))
    return _accepted(captured)


@app.get(
    "/v1/requests/<request_id>",
    summary="Status of a request for the consumer or agent (a page for Accept: text/html)",
)
def get_request(
    request_id: Annotated[str, Path(pattern=REQUEST_ID)],
) -> Response[RequestStatusOut | str]:  # str: the HTML status page
    status = services().queries.request_status(request_id)
    if HTML_PAGES.get():
        return _page(200, status_page(status.model_dump()))
    return Response(200, JSON, status)


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(200, JSON, app.get_openapi_json_schema(title="optout-bridge", version="1"))


# -- errors: one map from exception to answer ----------------------------------------------


@app.exception_handler(DomainError)  # type: ignore[misc]
def on_domain_error(error: DomainError) -> Response[str]:
    status, code = ERROR_ANSWERS.get(type(error), (400, "bad_request"))
    return _error(status, code, error.message, error.field)


@app.exception_handler(RequestValidationError)  # type: ignore[misc]
def on_validation_error(error: RequestValidationError) -> Response[str]:
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        return _error(400, "malformed_json", "the body is not valid JSON", "body")
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "path", "query")]
    if "[key]" in loc:  # a bad dict key: pydantic's location is the key itself (the input)
        loc = loc[: loc.index("[key]") - 1]
    message = str(first.get("msg", "invalid value"))  # pydantic's text; never the input value
    return _error(422, "invalid_field", message, ".".join(loc) or "body")


@app.not_found
def on_not_found(_: NotFoundError) -> Response[str]:
    return _error(404, "not_found", "no such route")


# -- helpers -------------------------------------------------------------------------------


def _context() -> RequestContext:
    event = app.current_event
    headers = event.headers
    country = headers.get("cloudfront-viewer-country")
    region = headers.get("cloudfront-viewer-country-region")
    return RequestContext(
        received_at=datetime.now(UTC),
        gpc_header=headers.get("sec-gpc") == "1",  # only the exact value 1 counts
        user_agent=headers.get("user-agent"),
        edge_jurisdiction=f"{country}-{region}" if country and region else None,
        source_ip=event.request_context.http.source_ip,
        idempotency_key=_idempotency_key(headers.get("idempotency-key")),
    )


def _idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not 1 <= len(raw) <= 255 or not raw.isprintable():
        raise InvalidInput("Idempotency-Key must be 1-255 printable characters", "Idempotency-Key")
    return raw


def _accepted(captured: Captured) -> Response[Any]:
    return Response(202, JSON, captured.response)


def _count(captured: Captured, name: str) -> None:
    metrics.add_metric(
        name=name if captured.created else "IdempotentReplay", unit=MetricUnit.Count, value=1
    )
    logger.info(
        "captured" if captured.created else "replayed",
        extra={"request_id": captured.response["request_id"], "route": name},
    )


def _error(status: int, code: str, message: str, field: str | None = None) -> Response[str]:
    if HTML_PAGES.get():  # a person, not a script: answer a page
        if app.current_event.request_context.http.method == "GET":
            return _page(status, status_error_page(message))
        return _page(status, error_page(message, field, app.current_event.headers.get("referer")))
    body = ErrorOut.model_validate({"error": {"code": code, "message": message, "field": field}})
    return Response(status, JSON, body.model_dump_json())


# -- HTML pages: content negotiation and hardening ----------------------------------------


def _page(status: int, html: str) -> Response[Any]:
    return Response(status, content_types.TEXT_HTML, html, headers=dict(HTML_HEADERS))


def accepts_html(accept: str | None) -> bool:
    """True when the client names text/html and prefers it to JSON (a browser navigating);
    `*/*` alone (fetch, curl) and ties get JSON."""
    quality: dict[str, float] = {}
    for part in (accept or "").lower().split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media] = max(q, quality.get(media, 0.0))
    html = quality.get("text/html", 0.0)
    json_q = next((quality[m] for m in (JSON, "application/*", "*/*") if m in quality), 0.0)
    return html > 0 and html > json_q


def _route(event: dict[str, Any]) -> tuple[str, str]:
    """(method, path without a named stage's prefix), from the raw event."""
    route = event.get("rawPath", "")
    stage = event.get("requestContext", {}).get("stage", "$default")
    if stage != "$default" and route.startswith(f"/{stage}/"):
        route = route[len(stage) + 1 :]  # a named stage prefixes rawPath (the resolver strips it)
    return event.get("requestContext", {}).get("http", {}).get("method", ""), route


# -- the body guard: checks the raw event before the resolver parses it -------------------


def _guard(event: dict[str, Any], max_bytes: int) -> dict[str, Any] | None:
    """Size and content-type checks, and form bodies turned into JSON. Returns an error answer."""
    method, route = _route(event)
    if method != "POST" or route not in BODY_ROUTES:
        return None
    headers = event.setdefault("headers", {})
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    origin = headers.get("origin")
    if len(body) > max_bytes:
        return _raw_error(413, "too_large", f"the body exceeds {max_bytes} bytes", origin)
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in BODY_ROUTES[route]:
        allowed = " or ".join(BODY_ROUTES[route])
        return _raw_error(415, "unsupported_media_type", f"send {allowed}", origin)
    if media_type == FORM:
        fields = parse_qs(body.decode("utf-8", "replace"))
        as_json = {
            name: values if name in FORM_LIST_FIELDS else values[-1]
            for name, values in fields.items()
            if any(v.strip() for v in values)
        }
        # A no-JavaScript webform cannot copy the banner's cookie into a field: read it here
        # (same-origin deployments) so the browser is still linked to the person.
        device = _cookie(event, DEVICE_COOKIE)
        if "device_id" not in as_json and device and DEVICE_ID.fullmatch(device):
            as_json["device_id"] = device
        event.update(body=json.dumps(as_json), isBase64Encoded=False)
        headers["content-type"] = JSON
        HTML_PAGES.set(accepts_html(headers.get("accept")))  # a browser's plain form post
    return None


def _cookie(event: dict[str, Any], name: str) -> str | None:
    for cookie in event.get("cookies") or []:
        key, _, value = cookie.strip().partition("=")
        if key == name:
            return str(value)
    return None


def _raw_error(status: int, code: str, message: str, origin: str | None) -> dict[str, Any]:
    body = ErrorOut.model_validate({"error": {"code": code, "message": message, "field": "body"}})
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON, **cors.to_dict(origin)},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = _answer(event, context)
    answer.setdefault("headers", {})["X-Content-Type-Options"] = "nosniff"  # JSON too
    return answer


def _answer(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = event.get("headers") or {}
    if not services().edge.admits(headers.get(EDGE_HEADER)):
        return _raw_error(
            403, "forbidden", "requests reach this API through its edge", headers.get("origin")
        )
    method, route = _route(event)
    # Per invocation (a warm container serves many): a browser opening its status link gets
    # a page; _guard decides the same for a plain form post.
    HTML_PAGES.set(
        method == "GET" and route.startswith(STATUS_ROUTE) and accepts_html(headers.get("accept"))
    )
    refused = _guard(event, services().settings.max_body_bytes)
    return refused if refused is not None else app.resolve(event, context)
