"""Admin API: backend identity links and operator views. IAM routes only, callers allow-listed.

Apart from the public capture function so that its role (Query on identity partitions, link
writes) and its callers (LinkerRole, OperatorRole) stay apart from anonymous traffic. Each
route is one call into a domain service; who may call it is decided once, in
`_caller_refused`, from the route key (new operator routes go under /v1/admin/).
"""

from datetime import UTC, datetime
from functools import cache, cached_property
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from optout import aws
from optout import identifiers as ids
from optout.access import CallerAllowList, Use
from optout.admin import AdminService
from optout.api_formats import JOB_REQUEST_ID_PATTERN, REQUEST_ID_PATTERN
from optout.api_models import (
    AdminLookupIn,
    ApiModel,
    DenialIn,
    DenialOut,
    ExportIdentityIn,
    ExportIdentityPageOut,
    ExportRangeIn,
    ExportRangePageOut,
    HoldsOut,
    IdentityLinksIn,
    IdentityLinksOut,
    ImportIn,
    ImportOut,
    OperatorActionOut,
    RedriveOut,
    RetireIn,
    RetireOut,
)
from optout.capture import CaptureService
from optout.errors import InvalidInput
from optout.evidence import RequestContext
from optout.hash_key import load_hash_key
from optout.http import answers, openapi, query, raw_body
from optout.http.answers import Refused
from optout.http.context import request_context
from optout.observability import log_context, logger, metrics
from optout.ops.denial import DenialService
from optout.ops.export import ExportService
from optout.ops.importer import ImportService
from optout.ops.metrics import MetricsService
from optout.ops.redrive import LONG_POLL_SECONDS, RedriveService
from optout.retire import RetireService
from optout.review import HOLD_ID, ReviewService
from optout.settings import Settings
from optout.store.table import Table
from optout.systems import SystemsConfig, load_systems
from optout.timestamps import iso

if TYPE_CHECKING:  # the documented responses' types only
    from aws_lambda_powertools.event_handler.openapi.types import (
        OpenAPIResponse,
        OpenAPIResponseContentModel,
    )

JSON = raw_body.JSON
SYSTEM = r"^[a-z][a-z0-9_]{0,39}$"
LINK_ROUTE = "/v1/identity-links"
ADMIN_PREFIX = "/v1/admin/"
# Routes that take a JSON body, by API Gateway route key; every other POST must send none.
BODY_ROUTES = {
    f"POST {LINK_ROUTE}": raw_body.BodyRule(),
    "POST /v1/admin/lookup": raw_body.BodyRule(),
    "POST /v1/admin/requests/{request_id}/deny": raw_body.BodyRule(),
    "POST /v1/admin/exports/identity": raw_body.BodyRule(),
    "POST /v1/admin/exports/range": raw_body.BodyRule(),
    "POST /v1/admin/imports": raw_body.BodyRule(),
    "POST /v1/admin/systems/{system}/retire": raw_body.BodyRule(),
}
# Query parameters each route reads; any other is refused (a typo must not pass unnoticed).
QUERY_PARAMETERS = {
    "GET /v1/admin/holds": frozenset({"limit"}),
    "GET /v1/admin/metrics": frozenset({"year"}),
    "POST /v1/admin/systems/{system}/backfill": frozenset({"resend"}),
}

app = APIGatewayHttpResolver(enable_validation=True)


class Services:
    """Built once per container on first use (not at import: tests build theirs under moto)."""

    def __init__(self) -> None:
        settings = Settings.from_env()
        table = Table.connect(settings.table_name)
        key = load_hash_key(settings)
        self.settings = settings
        self.hash_key = key  # the operator-read audit line's keyed hash (`_identity_read`)
        self.callers = CallerAllowList.from_env()
        # Identity links come from the backend over IAM: no identity token to verify here.
        self.capture = CaptureService(table, settings, key, tokens=None)
        self.admin = AdminService(table, key)
        self.review = ReviewService(table, _systems(settings), settings.record_retention_days)
        self.denial = DenialService(table)
        self.retire = RetireService(table, _systems(settings), settings.record_retention_days)
        self.metrics = MetricsService(table)
        self.export = ExportService(table, key)
        self.importer = ImportService(table, key, settings.record_retention_days)

    @cached_property
    def redrive(self) -> RedriveService:
        """An SQS client only when a redrive needs one (cold starts pay for what they use)."""
        # A long poll answers after its wait: the clients' 2 s read timeout (optout/aws.py)
        # would cut every empty poll short and retry it until the call failed.
        from botocore.config import Config  # noqa: PLC0415 - only with the client

        sqs = aws.client("sqs", Config(read_timeout=LONG_POLL_SECONDS + 3))
        return RedriveService(sqs, self.settings.queue_url_template, _systems(self.settings))


def _systems(settings: Settings) -> SystemsConfig | None:
    """Replays name a system; without the config (a bare test env) every name is unknown."""
    try:
        return load_systems(settings.systems_config)
    except OSError:
        return None


@cache  # one per warm container
def services() -> Services:
    return Services()


# -- who may call what: decided once for every route ---------------------------------------


def required_use(path: str) -> Use | None:
    if path == LINK_ROUTE:
        return "linker"
    if path.startswith(ADMIN_PREFIX):
        return "operator"
    return None


def _caller_refused(event: dict[str, Any]) -> dict[str, Any] | None:
    """API Gateway enforces AWS_IAM before we run; here the signer must be on the route's
    allow-list. Checked on the raw event, before the body is parsed: a refused caller learns
    nothing about what a valid body looks like."""
    context = event.get("requestContext") or {}
    caller = ((context.get("authorizer") or {}).get("iam") or {}).get("userArn")
    # The route key, not the raw path: a named stage prefixes rawPath ("/prod/v1/...").
    use = required_use(str(event.get("routeKey", "")).partition(" ")[2])
    if use is not None and services().callers.allows(use, caller):
        return None
    message = "this route needs IAM (SigV4) authorisation by an allowed principal"
    return answers.raw_answer(Refused(403, "forbidden", message, None))


# -- routes --------------------------------------------------------------------------------


@app.post(LINK_ROUTE, status_code=202, summary="Link identifiers (backend, IAM auth)")
def post_identity_links(body: IdentityLinksIn) -> Response[IdentityLinksOut]:
    captured = services().capture.record_links(body, _context())
    metrics.add_metric(
        name="IdentityLinksCaptured" if captured.created else "IdempotentReplay",
        unit=MetricUnit.Count,
        value=1,
    )
    request_id = captured.response["request_id"]
    logger.info("captured" if captured.created else "replayed", extra={"request_id": request_id})
    return _accepted(captured.response)


@app.get("/v1/admin/requests/<request_id>", summary="Operators: a request and every receipt")
def get_request_detail(
    request_id: Annotated[str, Path(pattern=JOB_REQUEST_ID_PATTERN)],
) -> dict[str, Any]:
    _operator_read(request_id=request_id)
    return services().admin.request_detail(request_id)


@app.post("/v1/admin/lookup", summary="Operators: what is held on one identifier")
def post_lookup(body: AdminLookupIn) -> dict[str, Any]:
    _identity_read(body.type, body.value)
    return services().admin.lookup(body.type, body.value)


@app.get("/v1/admin/holds", summary="Operators: links held (cluster cap, second account)")
def get_holds(limit: Annotated[int, Query(ge=1, le=500)] = 100) -> HoldsOut:
    _operator_read()  # the held links' keyed hashes and request ids
    return services().review.list_holds(limit)


@app.post("/v1/admin/holds/<hold_id>/release", status_code=202, summary="Operators: link it")
def post_hold_release(
    hold_id: Annotated[str, Path(pattern=HOLD_ID)],
) -> Response[OperatorActionOut]:
    return Response(202, JSON, services().review.release(hold_id, _caller()))


@app.post("/v1/admin/holds/<hold_id>/reject", summary="Operators: never link this pair")
def post_hold_reject(hold_id: Annotated[str, Path(pattern=HOLD_ID)]) -> OperatorActionOut:
    return services().review.reject(hold_id, _caller())


@app.post("/v1/admin/systems/<system>/replay", status_code=202, summary="Operators: resend failed")
def post_replay(system: Annotated[str, Path(pattern=SYSTEM)]) -> Response[OperatorActionOut]:
    return Response(202, JSON, services().review.replay(system, _caller()))


@app.post("/v1/admin/systems/<system>/backfill", status_code=202,
          summary="Operators: send a system the opt-outs already recorded")  # fmt: skip
def post_backfill(
    system: Annotated[str, Path(pattern=SYSTEM)], resend: Annotated[bool, Query()] = False
) -> Response[OperatorActionOut]:
    """A system added (or given a purpose or identifier type) after people opted out: each
    of them is sent to it. `resend=true` after its destination changed (a new ad account or
    webhook URL): everyone opted out is sent again, whatever its marks say was delivered."""
    return Response(202, JSON, services().review.backfill(system, resend, _caller()))


@app.get("/v1/admin/openapi.json", include_in_schema=False)
def get_openapi() -> Response[str]:
    return Response(200, JSON, _openapi_document(openapi.server_url(app.current_event.raw_event)))


@app.post("/v1/admin/systems/<system>/redrive", summary="Operators: a system's DLQ back to work")
def post_redrive(system: Annotated[str, Path(pattern=SYSTEM)]) -> RedriveOut:
    # An unknown name answered as the replay's is (`optout replay` calls this route first):
    # a close configured name, or the retired system named as retired (review s16 drill F9)
    services().review.configured(system)
    moved = services().redrive.redrive(system, _seconds_left)
    if moved.moved:  # the record of who moved them (a call that moved nothing changed nothing)
        moved.request_id = services().review.record_redrive(system, moved.moved, _caller())
    return moved


@app.post("/v1/admin/systems/<system>/retire", summary="Operators: a system no longer owed")
def post_retire(system: Annotated[str, Path(pattern=SYSTEM)], body: RetireIn) -> RetireOut:
    return services().retire.retire(system, body.reason, _caller(), _now())


@app.post("/v1/admin/requests/<request_id>/deny", summary="Operators: deny, with the reason")
def post_deny(
    request_id: Annotated[str, Path(pattern=REQUEST_ID_PATTERN)], body: DenialIn
) -> DenialOut:
    return services().denial.deny(request_id, body.reason_code, body.reason, _caller(), _now())


def _page(model: type[ApiModel]) -> "dict[int, OpenAPIResponse]":
    """An export page's shape for the IAM document: the routes answer the service's dict,
    which Powertools would document as any object (schemathesis, review s19 ST)."""
    content: OpenAPIResponseContentModel = {"model": model}
    return {200: {"description": "One page", "content": {JSON: content}}}


@app.get("/v1/admin/metrics", summary="Operators: CCPA §7102 figures of a calendar year")
def get_metrics(year: Annotated[int, Query(ge=2020, le=2100)]) -> dict[str, Any]:
    return services().metrics.year(year, iso(_now()))


@app.post("/v1/admin/exports/identity", summary="Operators: one identity's records (paged)",
          responses=_page(ExportIdentityPageOut))  # fmt: skip
def post_export_identity(body: ExportIdentityIn) -> dict[str, Any]:
    _identity_read(body.type, body.value)  # every page: each is a read
    return _sealed(services().export.identity(body.type, body.value, body.cursor))


@app.post("/v1/admin/exports/range", summary="Operators: the records of a date range (paged)",
          responses=_page(ExportRangePageOut))  # fmt: skip
def post_export_range(body: ExportRangeIn) -> dict[str, Any]:
    _operator_read(**{"from": body.from_.isoformat(), "to": body.to.isoformat()})
    return _sealed(services().export.range(body.from_, body.to, body.cursor, _seconds_left))


def _sealed(page: dict[str, Any]) -> dict[str, Any]:
    """The last page's seal into the audit log, beside the `operator read` line (same
    `correlation_id`): the digest of what the export gave is then in the account's own log,
    so a file altered later no longer matches it (docs/evidence-integrity.md, "Exports").
    Types, keyed hashes, days, counts and the digest only: never an identifier value."""
    seal = page.get("seal")
    if seal:
        logger.info("export sealed", extra={"route": app.current_event.route_key,
                                            "caller": _caller(), **seal})  # fmt: skip
    return page


@app.post("/v1/admin/imports", summary="Operators: a batch of historical opt-outs")
def post_import(body: ImportIn) -> ImportOut:
    return services().importer.import_rows(body.rows, _now(), _caller())


# -- errors: one map from exception to answer ----------------------------------------------


@cache  # the routes never change in a container (one document per server: one stage)
def _openapi_document(server: str = "/") -> str:
    # SigV4 (AWS_IAM) on every route, as API Gateway enforces it; callers sign as LinkerRole
    # (identity links) or OperatorRole (/v1/admin/*).
    return openapi.document(
        app,
        server=server,
        headers={"POST /v1/identity-links": ("Idempotency-Key",)},
        unavailable=("POST /v1/identity-links",),  # its write, as the capture's: a busy table
        title="optout-bridge IAM routes",
        version="1",
        security_schemes={"sigv4": _SIGV4},
        security=[{"sigv4": []}],
    )


_SIGV4 = APIKey(
    name="Authorization",
    description="AWS Signature Version 4 (service execute-api) by an allowed role",
    **{"in": APIKeyIn.header},
)
# An unknown IAM route points at the document that lists the IAM routes, not the public one.
NO_ROUTE = Refused(404, "not_found", "no such route: /v1/admin/openapi.json lists the routes", None)
answers.install(app, no_route=NO_ROUTE)


# -- helpers -------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _caller() -> str:
    """The signer API Gateway verified (allow-listed in `_caller_refused`): the evidence of
    who took an operator action."""
    iam = app.current_event.request_context.authorizer.iam
    return str(iam.user_arn or "unknown")


def _operator_read(**scope: str) -> None:
    """The audit trail of who read whose records (review s19 S3): API Gateway logs no caller
    and execute-api calls are not CloudTrail events. Written before the read, so a lookup that
    finds nothing is on record too. The line's `correlation_id` is the API request id (the
    access log's `requestId`); `scope` names whose records, never by an identifier value."""
    route = app.current_event.route_key
    logger.info("operator read", extra={"route": route, "caller": _caller(), **scope})


def _identity_read(id_type: ids.IdType, value: str) -> None:
    """An identity's records: its type and the keyed hash the store files it under. The log
    alone does not say whose they were; a lookup of a person answers the same `key`."""
    key = ids.lookup_key(services().hash_key, _body_identifier(id_type, value))
    _operator_read(identifier_type=id_type, identifier_key=key)


def _body_identifier(id_type: ids.IdType, value: str) -> ids.Identifier:
    """The body's `value`, normalised. A malformed one is refused naming `value`, the body's
    field (README "Errors": `field` is a path into the body), not its type: `email` is no
    field of a lookup or an identity export (schemathesis, review s19 ST)."""
    try:
        return ids.normalise(id_type, value)
    except InvalidInput as error:
        raise InvalidInput(error.message, field="value") from None


def _seconds_left() -> float:
    return float(app.lambda_context.get_remaining_time_in_millis()) / 1000


def _context() -> RequestContext:
    """The same evidence the capture function records (IAM calls skip CloudFront)."""
    return request_context(app.current_event.raw_event)


def _accepted(body: dict[str, Any]) -> Response[Any]:
    return Response(202, JSON, body)


@log_context(correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    answer = _answer(event, context)
    # Lookups, exports and link answers are per person, as capture's (review s32 contract F3).
    answers.kept_by_no_one(answer)
    return answer


def _answer(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refused = _caller_refused(event)
    if refused is not None:
        return refused
    try:
        query.refuse_unknown(event, QUERY_PARAMETERS)
        admitted = raw_body.admit(event, BODY_ROUTES, services().settings.max_body_bytes)
    except Refused as refusal:
        return answers.raw_answer(refusal)
    if admitted is not None:
        raw_body.rewrite(event, admitted)
    return app.resolve(event, context)
