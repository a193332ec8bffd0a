"""Capture API: the public HTTP contract (v1). Thin: parse, call the domain, shape the answer."""

import base64
import json
import os
import re
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
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from optout.admin import AdminService
from optout.api_models import (
    AdminLookupIn,
    ConsentIn,
    ConsentOut,
    ConsentStateOut,
    ErrorOut,
    HoldsOut,
    IdentityLinksIn,
    IdentityLinksOut,
    OperatorActionOut,
    OptOutIn,
    OptOutOut,
    RequestStatusOut,
)
from optout.capture import Captured, CaptureService
from optout.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from optout.evidence import RequestContext
from optout.hash_key import load_hash_key
from optout.identity_token import InvalidToken, TokenVerifier
from optout.observability import logger, metrics, tracer
from optout.queries import QueryService
from optout.review import HOLD_ID, ReviewService
from optout.settings import Settings
from optout.store.table import Table
from optout.systems import SystemsConfig, load_systems
from optout.token_keys import load_token_keys
from optout.webform_pages import confirmation_page, error_page

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BODY_ROUTES = {
    "/v1/consent": (JSON,),
    "/v1/opt-out": (JSON, FORM),
    "/v1/identity-links": (JSON,),
    "/v1/admin/lookup": (JSON,),
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
SYSTEM = r"^[a-z][a-z0-9_]{0,39}$"


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
        self.capture = CaptureService(table, settings, key, tokens)
        self.queries = QueryService(table, key)
        self.admin = AdminService(table, key)
        self.review = ReviewService(table, _systems(settings), settings.record_retention_days)


def _systems(settings: Settings) -> SystemsConfig | None:
    """Replays name a system; without the config (a bare test env) every name is unknown."""
    try:
        return load_systems(settings.systems_config)
    except OSError:
        return None


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
    if app.current_event.headers.get("x-optout-submitted-as") == "form":
        return Response(202, content_types.TEXT_HTML, confirmation_page(captured.response))
    return _accepted(captured)


@app.get("/v1/requests/<request_id>", summary="Status of a request, for the consumer or agent")
def get_request(request_id: Annotated[str, Path(pattern=REQUEST_ID)]) -> RequestStatusOut:
    return services().queries.request_status(request_id)


@app.post("/v1/identity-links", status_code=202, summary="Link identifiers (backend, IAM auth)")
def post_identity_links(body: IdentityLinksIn) -> Response[IdentityLinksOut]:
    _require_iam()
    captured = services().capture.record_links(body, _context())
    _count(captured, "IdentityLinksCaptured")
    return _accepted(captured)


@app.get("/v1/admin/requests/<request_id>", summary="Operators: a request and every receipt")
def get_request_detail(request_id: Annotated[str, Path(pattern=REQUEST_ID)]) -> dict[str, Any]:
    _require_iam()
    return services().admin.request_detail(request_id)


@app.post("/v1/admin/lookup", summary="Operators: what is held on one identifier (IAM auth)")
def post_lookup(body: AdminLookupIn) -> dict[str, Any]:
    _require_iam()
    return services().admin.lookup(body.type, body.value)


@app.get("/v1/admin/holds", summary="Operators: links held at the cluster cap (no identifiers)")
def get_holds(limit: Annotated[int, Query(ge=1, le=500)] = 100) -> HoldsOut:
    _require_iam()
    return services().review.list_holds(limit)


@app.post("/v1/admin/holds/<hold_id>/release", status_code=202, summary="Operators: link it")
def post_hold_release(
    hold_id: Annotated[str, Path(pattern=HOLD_ID)],
) -> Response[OperatorActionOut]:
    _require_iam()
    return Response(202, JSON, services().review.release(hold_id))


@app.post("/v1/admin/holds/<hold_id>/reject", summary="Operators: never link this pair")
def post_hold_reject(hold_id: Annotated[str, Path(pattern=HOLD_ID)]) -> OperatorActionOut:
    _require_iam()
    return services().review.reject(hold_id)


@app.post("/v1/admin/systems/<system>/replay", status_code=202, summary="Operators: resend failed")
def post_replay(system: Annotated[str, Path(pattern=SYSTEM)]) -> Response[OperatorActionOut]:
    _require_iam()
    return Response(202, JSON, services().review.replay(system))


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


def _require_iam() -> None:
    """Defence in depth: API Gateway enforces AWS_IAM on these routes before we run."""
    iam = app.current_event.request_context.authorizer.iam
    if iam is None or not iam.caller_id:
        raise Forbidden("this route needs IAM (SigV4) authorisation")


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
    headers = app.current_event.headers
    if headers.get("x-optout-submitted-as") == "form":  # the no-JS webform wants a page
        page = error_page(message, field, headers.get("referer"))
        return Response(status, content_types.TEXT_HTML, page)
    body = ErrorOut.model_validate({"error": {"code": code, "message": message, "field": field}})
    return Response(status, JSON, body.model_dump_json())


# -- the body guard: checks the raw event before the resolver parses it -------------------


def _guard(event: dict[str, Any], max_bytes: int) -> dict[str, Any] | None:
    """Size and content-type checks, and form bodies turned into JSON. Returns an error answer."""
    route = event.get("rawPath", "")
    stage = event.get("requestContext", {}).get("stage", "$default")
    if stage != "$default" and route.startswith(f"/{stage}/"):
        route = route[len(stage) + 1 :]  # a named stage prefixes rawPath (the resolver strips it)
    method = event.get("requestContext", {}).get("http", {}).get("method", "")
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
        headers["x-optout-submitted-as"] = (
            "form" if "text/html" in headers.get("accept", "") else ""
        )
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
    refused = _guard(event, services().settings.max_body_bytes)
    if refused is not None:
        return refused
    return app.resolve(event, context)
