"""What the local stack reads from template.yaml besides tables and queues.

HTTP routes (and which need IAM), the HTTP API's CORS configuration, the resolver's stream
event source, the workers' SQS event source, scheduled functions (EventBridge `rate(...)`),
and the functions' environment, so the front and the pollers behave as the deployed API and
event-source mappings do and the two cannot drift apart.
Functions are found by the kind of event they have (HttpApi, DynamoDB, SQS, Schedule), not by
logical id, so a rename in the template is harmless.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from local.patterns import parse_filters

SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_HTTP_API = "AWS::Serverless::HttpApi"

# Lambda's documented defaults for a DynamoDB / SQS event source mapping.
STREAM_DEFAULT_BATCH = 100
SQS_DEFAULT_BATCH = 10
DEFAULT_TIMEOUT_SECONDS = 3


DEFAULT_ROUTE = "$default"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "/v1/consent/{device_id}", or "$default" (what no other route matches)
    iam: bool
    pattern: re.Pattern[str]
    function: str

    @property
    def is_default(self) -> bool:
        return self.path == DEFAULT_ROUTE

    @property
    def route_key(self) -> str:
        return DEFAULT_ROUTE if self.is_default else f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters if this route takes the request; the $default route takes only
        what no other route does, so it never matches here (the front falls back to it)."""
        if self.is_default or method != self.method:
            return None
        found = self.pattern.fullmatch(path)
        return None if found is None else found.groupdict()


@dataclass(frozen=True)
class StreamSource:
    function: str
    batch_size: int = STREAM_DEFAULT_BATCH
    max_batching_window: float = 0
    starting_position: str = "TRIM_HORIZON"
    maximum_retry_attempts: int = -1  # -1: Lambda retries until the record expires
    bisect_on_error: bool = False
    report_batch_item_failures: bool = False
    filters: list[dict[str, Any]] = field(default_factory=list)
    on_failure: str | None = None  # logical id of the on-failure SQS queue
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


@dataclass(frozen=True)
class QueueSource:
    function: str
    batch_size: int = SQS_DEFAULT_BATCH
    max_batching_window: float = 0
    report_batch_item_failures: bool = False
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


def functions(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every serverless function (per-system workers included: the template lists each)."""
    return _resources(template, SERVERLESS_FUNCTION)


def _resources(template: dict[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, resource in template["Resources"].items():
        if isinstance(resource, dict) and resource.get("Type") == kind:
            yield key, resource


def _events(resource: dict[str, Any], kind: str) -> Iterator[dict[str, Any]]:
    for event in resource.get("Properties", {}).get("Events", {}).values():
        if event.get("Type") == kind:
            yield event.get("Properties", {})


def timeout_of(template: dict[str, Any], resource: dict[str, Any]) -> int:
    globals_ = template.get("Globals", {}).get("Function", {})
    value = resource.get("Properties", {}).get("Timeout", globals_.get("Timeout"))
    return int(value) if isinstance(value, int | str) else DEFAULT_TIMEOUT_SECONDS


def http_routes(template: dict[str, Any]) -> list[Route]:
    routes: list[Route] = []
    for logical_id, resource in functions(template):
        for props in _events(resource, "HttpApi"):
            # SAM: an HttpApi event without Path and Method is the API's $default route.
            path = props.get("Path", DEFAULT_ROUTE)
            method = str(props.get("Method", "ANY")).upper()
            iam = props.get("Auth", {}).get("Authorizer") == "AWS_IAM"
            routes.append(Route(method, path, iam, _path_regex(path), logical_id))
    return routes


@dataclass(frozen=True)
class Cors:
    """An HttpApi's CorsConfiguration: API Gateway answers preflights from it and puts its
    headers on every answer of the API, in place of the function's own."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False

    def allowed_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin for `origin`, None when it is not allowed."""
        if not origin:
            return None
        if origin in self.allow_origins:
            return origin
        return "*" if "*" in self.allow_origins else None


def cors_configuration(template: dict[str, Any], local_origins: tuple[str, ...]) -> Cors | None:
    """The HttpApi's CorsConfiguration (else Globals.HttpApi's), None without one.
    AllowOrigins written as a parameter reference (`!Ref AllowedOrigins`) is the stack's own
    origins here, as the deploy sets that parameter to the site's."""
    apis = [api.get("Properties", {}) for _, api in _resources(template, SERVERLESS_HTTP_API)]
    inherited = template.get("Globals", {}).get("HttpApi", {}).get("CorsConfiguration")
    configured = (apis[0] if apis else {}).get("CorsConfiguration", inherited)
    if configured is None or configured is False:
        return None
    if configured is True:  # SAM: CorsConfiguration: true allows every origin
        return Cors(("*",))
    origins = configured.get("AllowOrigins", ())
    return Cors(
        allow_origins=local_origins if isinstance(origins, dict) else _strings(origins),
        allow_methods=_strings(configured.get("AllowMethods", ())),
        allow_headers=_strings(configured.get("AllowHeaders", ())),
        expose_headers=_strings(configured.get("ExposeHeaders", ())),
        max_age=int(configured["MaxAge"]) if "MaxAge" in configured else None,
        allow_credentials=bool(configured.get("AllowCredentials", False)),
    )


def _strings(values: Any) -> tuple[str, ...]:
    return tuple(str(value) for value in values) if isinstance(values, list) else ()


def _path_regex(path: str) -> re.Pattern[str]:
    # "{name}" matches one segment, "{name+}" the rest (API Gateway's greedy parameter).
    parts = re.split(r"(\{[^}]+\})", path)
    regex = ""
    for part in parts:
        if part.startswith("{") and part.endswith("+}"):
            regex += f"(?P<{part[1:-2]}>.+)"
        elif part.startswith("{"):
            regex += f"(?P<{part[1:-1]}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex)


def stream_source(template: dict[str, Any]) -> StreamSource | None:
    """The first function fed by a DynamoDB stream (the resolver), or None if none exists yet."""
    for logical_id, resource in functions(template):
        for props in _events(resource, "DynamoDB"):
            destination = props.get("DestinationConfig", {}).get("OnFailure", {})
            return StreamSource(
                function=logical_id,
                batch_size=int(props.get("BatchSize", STREAM_DEFAULT_BATCH)),
                max_batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
                maximum_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
                bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
                report_batch_item_failures="ReportBatchItemFailures"
                in props.get("FunctionResponseTypes", []),
                filters=parse_filters(props.get("FilterCriteria")),
                on_failure=_logical_id(destination.get("Destination")),
                timeout_seconds=timeout_of(template, resource),
            )
    return None


def queue_source(template: dict[str, Any], queue_key: str | None = None) -> QueueSource | None:
    """The worker fed by `<queue_key>JobsQueue` (else the first SQS-fed worker: a system the
    template does not declare), or None if the template has no SQS-fed function."""
    sources = [
        (logical_id, resource, props)
        for logical_id, resource in functions(template)
        for props in _events(resource, "SQS")
    ]
    wanted = f"{queue_key}JobsQueue"
    sources.sort(key=lambda found: _logical_id(found[2].get("Queue")) != wanted)
    if not sources:
        return None
    logical_id, resource, props = sources[0]
    return QueueSource(
        function=logical_id,
        batch_size=int(props.get("BatchSize", SQS_DEFAULT_BATCH)),
        max_batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        report_batch_item_failures="ReportBatchItemFailures"
        in props.get("FunctionResponseTypes", []),
        timeout_seconds=timeout_of(template, resource),
    )


@dataclass(frozen=True)
class ScheduleSource:
    function: str
    name: str  # the event's name in the template (EventBridge rule), for logs
    every_seconds: int
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS


RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def schedule_sources(template: dict[str, Any]) -> list[ScheduleSource]:
    """Every function with a `Schedule` (EventBridge) event written as rate(N unit)."""
    found: list[ScheduleSource] = []
    for logical_id, resource in functions(template):
        for name, event in resource.get("Properties", {}).get("Events", {}).items():
            if event.get("Type") not in ("Schedule", "ScheduleV2"):
                continue
            expression = str(event.get("Properties", {}).get("Schedule", ""))
            rate = RATE.fullmatch(expression.strip())
            if rate is None:
                raise ValueError(f"{logical_id}.{name}: the local stack reads rate(N unit) only")
            seconds = int(rate.group(1)) * RATE_UNIT_SECONDS[rate.group(2).rstrip("s")]
            found.append(ScheduleSource(logical_id, name, seconds, timeout_of(template, resource)))
    return found


def _logical_id(reference: Any) -> str | None:
    """!GetAtt Queue.Arn, !Ref Queue or !Sub "${Queue.Arn}" -> "Queue"."""
    if isinstance(reference, dict):
        if "Fn::GetAtt" in reference:
            target = reference["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Ref" in reference:
            return str(reference["Ref"])
        if "Fn::Sub" in reference and isinstance(reference["Fn::Sub"], str):
            found = re.fullmatch(r"\$\{([A-Za-z0-9]+)(\.Arn)?\}", reference["Fn::Sub"])
            return found.group(1) if found else None
    return None


def environment(template: dict[str, Any]) -> dict[str, str]:
    """Global and per-function environment variables whose values the template fixes.

    References to parameters resolve to their defaults; references to resources (table name,
    queue URLs, secrets) are left out: the local stack supplies its own for those. So is a
    variable that functions set to different values (each worker's SYSTEM_NAME): the local
    stack's functions share one process environment.
    """
    params = template.get("Parameters", {})
    merged: dict[str, str] = {}
    conflicting: set[str] = set()
    globals_ = template.get("Globals", {}).get("Function", {})
    for name, value in _variables(globals_, params).items():
        merged[name] = value
    seen: dict[str, str] = {}
    for _, resource in functions(template):
        for name, value in _variables(resource.get("Properties", {}), params).items():
            if seen.setdefault(name, value) != value:
                conflicting.add(name)
    merged.update({k: v for k, v in seen.items() if k not in conflicting})
    return merged


def _variables(block: dict[str, Any], params: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in block.get("Environment", {}).get("Variables", {}).items():
        resolved = _resolve(value, params)
        if resolved is not None:
            found[name] = resolved
    return found


def _resolve(value: Any, params: dict[str, Any]) -> str | None:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and "Ref" in value and value["Ref"] in params:
        default = params[value["Ref"]].get("Default")
        return None if default is None else str(default)
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        if isinstance(parts, dict):  # !Join [",", !Ref AList]: the default is already joined
            return _resolve(parts, params)
        resolved = [_resolve(part, params) for part in parts]
        if all(part is not None for part in resolved):
            return str(separator).join(p for p in resolved if p is not None)
    return None


def function_code(template: dict[str, Any], logical_id: str) -> tuple[str, str]:
    """(CodeUri, Handler) of a function, e.g. ("functions/resolver", "app.handler")."""
    for found_id, resource in functions(template):
        if found_id == logical_id:
            props = resource.get("Properties", {})
            return str(props["CodeUri"]), str(props.get("Handler", "app.handler"))
    raise LookupError(f"template.yaml declares no function {logical_id}")


def function_timeout(template: dict[str, Any], logical_id: str) -> int:
    for found_id, resource in functions(template):
        if found_id == logical_id:
            return timeout_of(template, resource)
    raise LookupError(f"template.yaml declares no function {logical_id}")
