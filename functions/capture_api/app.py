"""Capture API: the public HTTP routes (v1). Thin: parse, call the domain, shape the answer.

The IAM routes (identity links, /v1/admin/*) live in functions/admin_api, with their own role.

The two routes every banner and webform posts to (`HOT_ROUTES`) answer an accepted JSON
request without Powertools' Event Handler: its import (every resolver, the OpenAPI machinery,
the event data classes) was half of this function's cold start (docs/decisions.md, "The hot
routes without the Event Handler"). The body is the same checked JSON the resolver would
parse, checked without pydantic (optout/http/hot_bodies.py: what the model would make of it,
or "ask the model"; docs/decisions.md, "The hot bodies without pydantic"); whatever that check
leaves to the model, and every other route, goes to the Event Handler (built on the first
such request) and its pydantic models, so every refusal keeps one envelope and one set of
words, and the OpenAPI document describes every route.
"""

import json
import os
import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache, cached_property
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from optout.api_formats import DEVICE_ID_PATTERN, REQUEST_ID_PATTERN
from optout.capture import Body, Captured, CaptureService
from optout.edge import HEADER as EDGE_HEADER
from optout.edge import EdgeGuard
from optout.errors import DomainError, Unavailable
from optout.evidence import RequestContext
from optout.hash_key import load_hash_key
from optout.http import answers, cookies, hot_bodies, raw_body
from optout.http.answers import Refused
from optout.http.context import gpc_header, request_context
from optout.http.cors import Cors, origin_of
from optout.identity_token import TokenVerifier
from optout.observability import log_context, logger, metrics
from optout.settings import Settings
from optout.store.busy import NOT_SERVED, answered_as_unavailable
from optout.store.table import Table
from optout.token_keys import token_key_source
from optout.webform_pages import (
    HTML_HEADERS,
    back_link,
    confirmation_page,
    error_page,
    status_error_page,
    status_page,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

    from optout.queries import QueryService

JSON = raw_body.JSON
TEXT_HTML = "text/html"  # Powertools' content_types.TEXT_HTML
# Routes that take a body, by API Gateway route key; every other POST must send none.
# The free texts kept as evidence that an operator reads (the agent's in `optout status`):
# no bidirectional controls there (raw_body.BodyRule; review s29 stranger N2).
SHOWN_TEXT = frozenset({("page_url",), ("policy_version",)})
AGENT_TEXT = frozenset({("agent", "name"), ("agent", "agent_id")})
BODY_ROUTES = {
    "POST /v1/consent": raw_body.BodyRule((raw_body.JSON,), shown_text=SHOWN_TEXT),
    "POST /v1/opt-out": raw_body.BodyRule(
        (raw_body.JSON, raw_body.FORM), frozenset({"purposes"}), SHOWN_TEXT | AGENT_TEXT
    ),
}
# The banner's device cookie (web/banner.js): on https pages `__Host-` (Secure, Path=/, no
# Domain: no sibling subdomain can set or shadow it, review s28 diff M1); on plain http pages
# (local development) the plain name, as a __Host- cookie needs a Secure page: read only from
# a loopback page (http/cookies.py).
DEVICE_COOKIE = "__Host-optout_device_id"
HTTP_DEVICE_COOKIE = "optout_device_id"
DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
STATUS_ROUTE = "GET /v1/requests/{request_id}"
# Whether this invocation answers a person with HTML pages (a no-JavaScript form post, or a
# browser opening a status link). Decided from the raw event before routing, per invocation;
# never from a header a client could set.
HTML_PAGES: ContextVar[bool] = ContextVar("html_pages", default=False)

cors = Cors.from_env(os.environ, allow_headers=("Content-Type", "Idempotency-Key"), max_age=600)


class Services:
    """Built once per container on first use (not at import: tests build theirs under moto)."""

    def __init__(self) -> None:
        settings = Settings.from_env()
        table = Table.connect(settings.table_name)
        # Secrets Manager throttled or failing at a cold start: our 503, not a bare 5xx (the
        # next request builds again: `services` caches only a built container).
        with answered_as_unavailable("secret store", NOT_SERVED):
            key = load_hash_key(settings)
            # Fails closed: no token key outside local mode -> this raises, nothing is served.
            # A token secret of the wrong shape does not: tokens alone are refused (token_keys).
            tokens = TokenVerifier(
                token_key_source(settings),
                settings.identity_token_audience,
                settings.identity_token_max_lifetime_seconds,
            )
            self.edge = EdgeGuard.from_settings(settings)  # the edge's secret, when it is on
        self.settings = settings
        self.capture = CaptureService(table, settings, key, tokens)
        self._table, self._key = table, key

    @cached_property  # the read routes' service: imported by the first read, not by a write
    def queries(self) -> "QueryService":
        from optout.queries import QueryService  # noqa: PLC0415

        return QueryService(self._table, self._key)


@cache  # one per warm container; built on first use, not at import (tests build theirs)
def services() -> Services:
    return Services()


# -- the hot routes: an accepted JSON body, answered without the Event Handler -------------


def _record_consent(body: Body) -> Captured:
    captured = services().capture.record_consent(body, _context())
    _count(captured, "ConsentCaptured")
    return captured


def _record_opt_out(body: Body) -> Captured:
    captured = services().capture.record_opt_out(body, _context())
    _count(captured, "OptOutCaptured")
    return captured


# Route key -> (the route's body check, what records it). The same functions serve the routes
# the Event Handler resolves (below): one path to the domain either way.
HOT_ROUTES: dict[
    str, tuple[Callable[[dict[str, Any]], Body | None], Callable[[Body], Captured]]
] = {
    "POST /v1/consent": (hot_bodies.consent, _record_consent),
    "POST /v1/opt-out": (hot_bodies.opt_out, _record_opt_out),
}
_EVENT: ContextVar[dict[str, Any]] = ContextVar("event")  # the invocation's raw event


def _hot_answer(
    event: dict[str, Any], fields: dict[str, Any] | None, cors_headers: dict[str, str]
) -> dict[str, Any] | None:
    """The answer to an accepted request of a hot route, or None: the Event Handler answers
    (another route, a page, or a body the check leaves to the model: the model accepts it or
    refuses it, in its words)."""
    route = HOT_ROUTES.get(str(event.get("routeKey")))
    if route is None or fields is None or HTML_PAGES.get():
        return None
    check, record = route
    body = check(fields)  # what the route's model would make of the JSON-parsed object
    if body is None:
        return None
    try:
        captured = record(body)
    except DomainError as error:
        refused = answers.from_domain(error)
        return _proxy_answer(refused.status, refused.body(), {**cors_headers, **refused.headers()})
    return _proxy_answer(202, _json(captured.response), cors_headers)


def _proxy_answer(status: int, body: str, cors_headers: dict[str, str]) -> dict[str, Any]:
    """A JSON answer in the shape the Event Handler gives an HTTP API (payload 2.0)."""
    return {
        "statusCode": status,
        "body": body,
        "isBase64Encoded": False,
        "headers": {"Content-Type": JSON, **cors_headers},
        "cookies": [],
    }


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))  # the Event Handler's serializer


# -- every route, through Powertools' Event Handler (built on first use) -------------------


@cache  # one per container, built by the first request a hot route does not answer
def resolver() -> "APIGatewayHttpResolver":
    from aws_lambda_powertools.event_handler import (  # noqa: PLC0415
        APIGatewayHttpResolver,
        Response,
    )
    from aws_lambda_powertools.event_handler.openapi.params import Path  # noqa: PLC0415

    from optout.api_models import (  # noqa: PLC0415 - pydantic: not on the hot routes' path
        ConsentIn,
        ConsentOut,
        ConsentStateOut,
        OptOutIn,
        OptOutOut,
        RequestStatusOut,
    )

    app = APIGatewayHttpResolver(enable_validation=True, cors=cors.powertools())

    @app.post("/v1/consent", status_code=202, summary="Record a banner choice (and GPC)")
    def post_consent(body: ConsentIn) -> Response[ConsentOut]:
        return _accepted(_record_consent(body.model_dump(mode="json")))

    @app.get("/v1/consent/<device_id>", summary="Effective state of a device after resolution")
    def get_consent(
        device_id: Annotated[str, Path(pattern=DEVICE_ID_PATTERN)],
    ) -> Response[ConsentStateOut]:
        # The read answers whether it carried Sec-GPC: 1 (gpc_signal), so the answer varies with it
        gpc = gpc_header({str(k).lower(): v for k, v in app.current_event.headers.items()})
        state = services().queries.consent_state(device_id, gpc_signal=gpc)
        return Response(200, JSON, state, headers={"Vary": "Sec-GPC"})

    @app.post(
        "/v1/opt-out",
        status_code=202,
        summary="Webform or agent opt-out (JSON or form)",
        responses={202: _answer_or_page(OptOutOut, "Accepted; a plain form post gets a page")},
    )
    def post_opt_out(body: OptOutIn) -> Response[OptOutOut | str]:  # str: the no-JS HTML page
        captured = _record_opt_out(body.model_dump(mode="json"))
        if HTML_PAGES.get():
            # A set: a crafted form repeating the box is still limit-only (review s22 diff B12)
            limit_only = set(body.purposes or ()) == {"limit_sensitive"}
            return _page(202, confirmation_page(captured.page_answer(), limit_only))
        return _accepted(captured)

    @app.get(
        "/v1/requests/<request_id>",
        summary="Status of a request for the consumer or agent (a page for Accept: text/html)",
        responses={200: _answer_or_page(RequestStatusOut, "The status; a page for a browser")},
    )
    def get_request(
        request_id: Annotated[str, Path(pattern=REQUEST_ID_PATTERN)],
    ) -> Response[RequestStatusOut | str]:  # str: the HTML status page
        status = services().queries.request_status(request_id)
        if HTML_PAGES.get():
            return _page(
                200, status_page(status.model_dump() | status.page_fields(), _privacy_page())
            )
        return Response(200, JSON, status)

    @app.get("/v1/openapi.json", include_in_schema=False)
    def get_openapi() -> Response[str]:
        from optout.http.openapi import server_url  # noqa: PLC0415

        return Response(200, JSON, _openapi_document(server_url(app.current_event.raw_event)))

    answers.install(app, _render)
    return app


def _answer_or_page(model: type[Any], description: str) -> "OpenAPIResponse":
    """A route's answer: the model's JSON, or the HTML page a person's browser gets."""
    return {
        "description": description,
        "content": {JSON: {"model": model}, TEXT_HTML: {"schema": {"type": "string"}}},
    }


# What the OpenAPI document adds to the routes' models (optout/http/openapi.py): the headers
# read before routing, the webform's plain form post, and the routes that answer a person's
# refusal with a page.
OPENAPI_HEADERS = {
    "POST /v1/consent": ("Idempotency-Key", "Sec-GPC"),
    "POST /v1/opt-out": ("Idempotency-Key", "Sec-GPC"),
    "GET /v1/consent/{device_id}": ("Sec-GPC on a read",),
}
OPENAPI_FORMS = {"POST /v1/opt-out": "OptOutIn"}
OPENAPI_PAGES = ("POST /v1/opt-out", "GET /v1/requests/{request_id}")
# A throttled table (or, at a cold start, Secrets Manager) is a 503 on every public route
OPENAPI_UNAVAILABLE = (*HOT_ROUTES, "GET /v1/consent/{device_id}", "GET /v1/requests/{request_id}")


@cache  # the routes never change in a container (one document per server: one stage)
def _openapi_document(server: str = "/") -> str:
    from optout.http import openapi  # noqa: PLC0415

    return openapi.document(
        resolver(), server=server, headers=OPENAPI_HEADERS, forms=OPENAPI_FORMS,
        pages=OPENAPI_PAGES, unavailable=OPENAPI_UNAVAILABLE, title="optout-bridge", version="1",
    )  # fmt: skip


# -- errors: one envelope for every refusal (optout/http/answers.py) ------------------------


def _render(refused: Refused) -> "Response[Any]":
    """JSON for scripts; a page for a person who posted the plain form or opened a link."""
    if not HTML_PAGES.get():
        return answers.json_response(refused)
    page = _refusal_page(refused, _EVENT.get(), _privacy_page())
    return _page(refused.status, page, refused.headers())


# -- helpers -------------------------------------------------------------------------------


def _privacy_page() -> str:
    return services().settings.privacy_page_url


def _refusal_page(refused: Refused, event: dict[str, Any], privacy_page: str) -> str:
    """The page a person's browser gets for a refusal: a status link's (a GET; a 503 says
    to try again), or the form's, with its way back."""
    if event["requestContext"]["http"]["method"] == "GET":
        return status_error_page(refused.message, privacy_page, refused.status == 503)
    referer = (event.get("headers") or {}).get("referer")
    return error_page(
        refused.message,
        refused.field,
        back_link(referer, cors.origins, privacy_page),
        repeated=refused.message == raw_body.SEND_ONCE,
    )


def _context() -> RequestContext:
    return request_context(_EVENT.get())


def _accepted(captured: Captured) -> "Response[Any]":
    from aws_lambda_powertools.event_handler import Response  # noqa: PLC0415

    return Response(202, JSON, captured.response)


def _count(captured: Captured, name: str) -> None:
    metrics.add_metric(
        name=name if captured.created else "IdempotentReplay", unit=MetricUnit.Count, value=1
    )
    logger.info(
        "captured" if captured.created else "replayed",
        extra={"request_id": captured.response["request_id"], "route": name},
    )


# -- HTML pages: content negotiation and hardening ----------------------------------------


def _page(status: int, html: str, headers: dict[str, str] | None = None) -> "Response[Any]":
    from aws_lambda_powertools.event_handler import Response  # noqa: PLC0415

    return Response(status, TEXT_HTML, html, headers={**HTML_HEADERS, **(headers or {})})


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


# -- the body gate: checks the raw event before the resolver parses it ----------------------


def _admit_body(event: dict[str, Any], max_bytes: int) -> dict[str, Any] | None:
    """The shared gate (optout/http/raw_body.py), then what only this API does: a plain form
    post's fields take the banner's cookie as their device_id, and it is answered a page."""
    form = raw_body.media_type(event) == raw_body.FORM and event.get("routeKey") in BODY_ROUTES
    if form:  # a browser's plain form post is answered pages, refusals included
        HTML_PAGES.set(accepts_html((event.get("headers") or {}).get("accept")))
    fields = raw_body.admit(event, BODY_ROUTES, max_bytes)
    if fields is None:
        return None
    if form and "device_id" not in fields and _from_our_pages(event, _privacy_page()):
        # A no-JavaScript webform cannot copy the banner's cookie into a field: read it here
        # (same-origin deployments) so the browser is still linked to the person. The plain
        # name only from an http page on this machine (local development): on https any
        # subdomain of the site can set it, and from another http host none: there the
        # network path can set it too (review s29 stranger S3: an http:// entry in
        # AllowedOrigins brought cookie tossing back), and no __Host- cookie is the page's.
        page = str((event.get("headers") or {}).get("origin"))
        if cookies.loopback_http(page):
            device = _cookie(event, HTTP_DEVICE_COOKIE)
        else:
            device = _cookie(event, DEVICE_COOKIE) if page.startswith("https://") else None
        if device and DEVICE_ID.fullmatch(device):
            fields["device_id"] = device
    return fields  # written back into the event only for the Event Handler (_answer)


def _from_our_pages(event: dict[str, Any], privacy_page: str) -> bool:
    """Whether a form post came from one of our own pages: its Origin is an allowed origin,
    the privacy page's (the webform, by definition ours) or the API's own (API Gateway's
    `domainName`, the domain the request reached: one of this API's; review s28 L2: a site
    serving the webform from the API's origin never needed CORS, so never listed it).
    The cookie is SameSite=Lax: a same-site page (a user-content subdomain) could post the form
    with the visitor's cookie and its own identity token, linking that browser to its account
    (review s27 stranger F1). Browsers send Origin on every POST; none, "null" or another
    origin: the opt-out is still taken, without the cookie's device (fail closed for the link)."""
    domain = (event.get("requestContext") or {}).get("domainName")
    api = f"https://{domain}" if domain else None
    return cors.trusts((event.get("headers") or {}).get("origin"), origin_of(privacy_page), api)


def _cookie(event: dict[str, Any], name: str) -> str | None:
    """The cookie's value; None when the request names it more than once: a sibling subdomain
    can plant a second one (Domain=<parent>, a longer Path, listed first), and which is the
    browser's own cannot be told (review s28 M1, "cookie tossing"). Names match exactly: a
    Unicode space before one is a name no prefix rule guards (http/cookies.py, review s29 S1)."""
    return cookies.only_value((str(c) for c in event.get("cookies") or []), name)


@log_context(correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = _answer(event, context)
    # A device's state and a request's status are per person (review s17 contract U2).
    headers = answers.kept_by_no_one(answer)
    if event.get("routeKey") == STATUS_ROUTE:  # JSON or a page by Accept, refusals too
        add_vary(headers, "Accept")
    return answer


def add_vary(headers: dict[str, Any], name: str) -> None:
    """Name `name` in the answer's Vary, keeping what it already names (CORS's Origin)."""
    key = next((k for k in headers if k.lower() == "vary"), "Vary")
    named = [v.strip() for v in str(headers.get(key) or "").split(",") if v.strip()]
    if name.lower() not in (v.lower() for v in named):
        headers[key] = ", ".join([*named, name])


def _refused_answer(
    refused: Refused, cors_headers: dict[str, str], privacy_page: str
) -> dict[str, Any]:
    """A refusal before the routes: the error page for a person's browser, else JSON.
    `privacy_page` is passed in: on a cold start without its keys services() cannot give it."""
    if not HTML_PAGES.get():
        return answers.raw_answer(refused, cors_headers)
    return {
        "statusCode": refused.status,
        "headers": {"Content-Type": TEXT_HTML, **HTML_HEADERS, **refused.headers()},
        "body": _refusal_page(refused, _EVENT.get(), privacy_page),
        "isBase64Encoded": False,
    }


def _answer(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    _EVENT.set(event)
    headers = event.get("headers") or {}
    cors_headers = cors.headers(headers.get("origin"))
    # Per invocation (a warm container serves many): a browser opening its status link gets
    # a page; _admit_body decides the same for a plain form post.
    HTML_PAGES.set(event.get("routeKey") == STATUS_ROUTE and accepts_html(headers.get("accept")))
    try:
        built = services()  # a cold start's Secrets Manager throttled: our 503 (store/busy.py)
    except Unavailable as busy:
        if raw_body.media_type(event) == raw_body.FORM:  # a person's no-JS form: a page
            HTML_PAGES.set(accepts_html(headers.get("accept")))
        privacy = Settings.from_env().privacy_page_url  # the environment: no AWS call
        return _refused_answer(answers.from_domain(busy), cors_headers, privacy)
    privacy = built.settings.privacy_page_url
    try:
        with answered_as_unavailable("secret store", NOT_SERVED):  # its re-read, none cached
            admitted = built.edge.admits(headers.get(EDGE_HEADER))
    except Unavailable as busy:
        return _refused_answer(answers.from_domain(busy), cors_headers, privacy)
    if not admitted:
        refused = Refused(403, "forbidden", "requests reach this API through its edge", None)
        return answers.raw_answer(refused, cors_headers)
    try:
        fields = _admit_body(event, built.settings.max_body_bytes)
    except Refused as refused:
        return _refused_answer(refused, cors_headers, privacy)
    hot = _hot_answer(event, fields, cors_headers)
    if hot is not None:
        return hot
    if fields is not None:  # the Event Handler parses what the gate checked, as JSON
        raw_body.rewrite(event, fields)
    return resolver().resolve(event, context)
