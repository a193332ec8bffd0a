"""The whole pipeline in one process: moto, the real handlers, pollers and the HTTP front.

One process with threads (HTTP front, one stream poller, one poller per jobs queue), so
stopping it leaves nothing behind. Each function runs as its own in-process "container";
each system's worker is a separate instance, as each system has its own worker on AWS.
"""

import dataclasses
import json
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from local import (
    botocore_wire,
    console,
    iam,
    lambdas,
    moto_expressions,
    moto_guard,
    moto_routes,
    moto_speedups,
    moto_transactions,
    moto_walks,
)
from local.aws_resources import (
    TEMPLATE,
    create_queue_resource,
    create_queues,
    create_table,
    queue_arn,
)
from local.cfn_yaml import load_template
from local.deployment import Deployment, StackConfigError, plan
from local.environment import REGION, scaled_window, stack_environment
from local.front import Front, FrontServer
from local.http_types import Incoming, Outgoing, error_answer, json_answer
from local.moto_reads import StreamReader
from local.queue_poller import QueuePoller
from local.queues_view import QueuesView
from local.requests_view import RequestsView
from local.sandbox_routes import SandboxRoutes, build_routes
from local.schedule_poller import SchedulePoller
from local.static_site import StaticSite
from local.stream_poller import StreamPoller
from local.template_config import (
    cors_configuration,
    function_code,
    function_timeout,
    http_routes,
    queue_source,
    schedule_sources,
    stream_source,
)
from optout.settings import Settings
from optout.store.table import Table

log = logging.getLogger("local.stack")
# moto's and botocore's patches for this process (local/patching.py), in the order installed.
PATCHES = (
    moto_routes,  # each URL's moto handler found once (before the guard wraps it)
    moto_guard,  # the front, the stream poller and every worker call moto at once
    moto_speedups,
    moto_transactions,  # a transaction no longer copies the whole table
    moto_expressions,  # an expression text is parsed once
    moto_walks,  # item sizes, results and validator passes walked once
    botocore_wire,  # plain attribute values to and from JSON as they are
)

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "optout-local"  # stands in for ${AWS::StackName}
JOIN_SECONDS = 5.0
# A deployed rate(5 minutes) fires every 5 s locally, so sweeps show their effect at once.
SCHEDULE_SPEEDUP = 60.0


@dataclass
class StackOptions:
    port: int
    systems_config: Path
    template: Path = TEMPLATE
    secrets_file: Path = ROOT / "local" / "secrets.json"
    web_root: Path = ROOT / "web"
    pretty_logs: bool = True


@dataclass
class LocalStack:
    """The stack: moto, the table and its stream, the HTTP front, and one "deploy" of a systems
    file (its template, IAM, queues, functions and workers). `redeploy` swaps the deploy for
    another systems file's and keeps every item, queue and message, as a deploy on AWS does."""

    options: StackOptions
    stop_event: threading.Event = field(default_factory=threading.Event)
    systems: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _server: FrontServer | None = None
    _mock: Any = None
    _sqs: Any = None
    _dynamodb: Any = None
    _deployment: Deployment | None = None
    _policies: iam.Policies = field(default_factory=dict)  # the IAM guard reads this dict
    _functions: dict[str, lambdas.LocalFunction] = field(default_factory=dict)
    _queues: dict[str, str] = field(default_factory=dict)  # queue key -> jobs queue URL
    _workers_stop: threading.Event = field(default_factory=threading.Event)
    _worker_threads: list[threading.Thread] = field(default_factory=list)
    _sandboxes: SandboxRoutes | None = None
    _deploy_lock: threading.Lock = field(default_factory=threading.Lock)
    _config_dir: Path | None = None  # systems files posted to /_local/systems

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.options.port}"

    def start(self) -> None:
        base = load_template(self.options.template)
        os.environ.update(_credentials())
        # The systems file's sandbox URLs, and loopback HTTP accepted (as load_systems does
        # for the handlers): set before the file is read.
        os.environ.update({"LOCAL_STACK_URL": self.url, "OPTOUT_LOCAL_MODE": "true"})
        deployment = self._plan(self.options.systems_config)  # refused before anything starts
        for patch in PATCHES:
            patch.install()
        self._mock = mock_aws()
        self._mock.start()
        self._dynamodb = boto3.client("dynamodb", region_name=REGION)
        self._sqs = boto3.client("sqs", region_name=REGION)
        table_name = f"{PREFIX}-table"
        stream_arn = create_table(self._dynamodb, table_name, base)
        self._create_queues(deployment)
        os.environ.update(
            stack_environment(
                deployment.template,
                url=self.url,
                table_name=table_name,
                systems_config=self.options.systems_config,
                queue_url_template=_url_template(self._queues),
                secrets_file=self.options.secrets_file,
            )
        )
        os.environ.pop("HASH_KEY_SECRET_NAME", None)  # the documented local hash key applies
        # A handler's call its role in the deployed template does not allow is refused, as on
        # AWS (moto enforces no IAM): before any handler makes a client.
        assert boto3.DEFAULT_SESSION is not None  # the clients above made it
        self._policies.update(iam.load_roles(deployment.template))
        iam.install(boto3.DEFAULT_SESSION.events, self._policies, lambdas.running_function)
        self._load_functions(deployment.template)
        self._start_resolver(base, stream_arn)
        self._start_workers(deployment)
        self._start_schedules(base)
        if self.options.pretty_logs:
            from optout.observability import logger  # noqa: PLC0415 - after the handlers load

            console.prettify_powertools(logger)
        self._deployment = deployment
        self.systems = deployment.names
        front = self._front(deployment, table_name)
        # The functions' body limit (MAX_BODY_BYTES), which the front applies before reading.
        max_body = Settings.from_env().max_body_bytes
        self._server = FrontServer(self.options.port, front, max_body)
        self._threads.append(self._server.start())

    def _plan(self, systems_config: Path) -> Deployment:
        return plan(
            self.options.template,
            systems_config,
            os.environ,
            _secrets(self.options),
            self.url,
        )

    def redeploy(self, systems_config: Path) -> dict[str, list[str]]:
        """Deploy another systems file over the running stack, as `make template` and a deploy
        would: its new queues and DLQs created, the roles, functions (fresh containers) and
        workers replaced; the table, queues and their messages kept. StackConfigError (nothing
        changed) for a file the stack cannot serve. Returns the systems added and removed."""
        with self._deploy_lock:
            deployment = self._plan(systems_config)
            before = self._deployment
            assert before is not None and self._server is not None  # started
            self._create_queues(deployment)
            os.environ["SYSTEMS_CONFIG"] = str(systems_config)
            policies = iam.load_roles(deployment.template)
            self._policies.update(policies)
            # The old workers finish their batch, then the new deploy's take the queues; a
            # removed system's role goes once its worker has stopped.
            self._stop_workers()
            for gone in set(self._policies) - set(policies):
                del self._policies[gone]
            self._load_functions(deployment.template)
            self._start_workers(deployment)
            self._deployment = deployment
            self.systems = deployment.names
            self._server.front = self._front(deployment, f"{PREFIX}-table")
            added = sorted(set(deployment.names) - set(before.names))
            removed = sorted(set(before.names) - set(deployment.names))
            log.info("systems config %s deployed: added %s, removed %s",
                     systems_config.name, added or "none", removed or "none")  # fmt: skip
            return {"systems": deployment.names, "added": added, "removed": removed}

    def _create_queues(self, deployment: Deployment) -> None:
        """The jobs queue and DLQ of each queue key not created yet (a deploy adds them; it
        would delete a removed system's, which is kept here with its messages)."""
        new = sorted(set(deployment.queue_keys.values()) - set(self._queues))
        created, _dlqs, _counts = create_queues(self._sqs, new, PREFIX, deployment.template)
        self._queues.update(created)

    def _load_functions(self, template: dict[str, Any]) -> None:
        """A fresh instance (a cold start: configs are read again) of each function the API
        routes, the stream and the schedules invoke; the pollers and the front call through
        `_functions`, so a redeploy's instances take the next event."""
        fresh: dict[str, lambdas.LocalFunction] = {}
        for logical_id in sorted({route.function for route in http_routes(template)}):
            fresh[logical_id] = _function(template, logical_id, _local_name(logical_id))
        source = stream_source(template)
        if source is not None:
            fresh[source.function] = _function(template, source.function, "resolver")
        for schedule in schedule_sources(template):
            name = _local_name(schedule.function)
            fresh[schedule.function] = _function(template, schedule.function, name)
        self._functions.update(fresh)

    def _invoker(self, logical_id: str) -> Any:
        return lambda event: self._functions[logical_id].invoke(event)

    def _front(self, deployment: Deployment, table_name: str) -> Front:
        secrets = _secrets(self.options)  # keyed by each system's `credentials` name
        sandboxes = build_routes(
            [(s.name, s.type, secrets.get(s.credentials or "", {})) for s in deployment.systems]
        )
        if self._sandboxes is not None:  # a system's sandbox keeps its calls and faults
            sandboxes.keep(self._sandboxes)
        self._sandboxes = sandboxes
        routes = http_routes(deployment.template)
        api_functions = {r.function: self._invoker(r.function) for r in routes}
        # The template's AllowedOrigins parameter, as ALLOWED_ORIGINS holds it here.
        origins = tuple(os.environ["ALLOWED_ORIGINS"].split(","))
        return Front(
            routes,
            api_functions,
            sandboxes,
            RequestsView(Table(self._dynamodb, table_name)),
            StaticSite(self.options.web_root),
            cors_configuration(deployment.template, origins),
            QueuesView(self._sqs, PREFIX),
            SystemsRoute(self),
        )

    def _start_resolver(self, template: dict[str, Any], stream_arn: str) -> None:
        source = stream_source(template)
        if source is None:
            log.warning("template.yaml has no stream-triggered function: nothing resolves events")
            return
        source = dataclasses.replace(
            source, max_batching_window=scaled_window(source.max_batching_window)
        )
        sqs = self._sqs
        failure_url = (
            create_queue_resource(sqs, source.on_failure, PREFIX, template)
            if source.on_failure
            else None
        )

        def on_failure(message: dict[str, Any]) -> None:
            if failure_url is None:
                log.error("no on-failure destination in the template: batch dropped")
                return
            sqs.send_message(QueueUrl=failure_url, MessageBody=json.dumps(message))

        reader = StreamReader(stream_arn)
        invoke = self._invoker(source.function)
        poller = StreamPoller(reader, stream_arn, source, invoke, on_failure, self.stop_event)
        self._spawn("stream-poller", poller.run)

    def _start_workers(self, deployment: Deployment) -> None:
        """Each system's own worker (its settings in the deployed template) on its queue."""
        template = deployment.template
        if queue_source(template) is None:
            log.warning("template.yaml has no SQS-triggered worker: jobs stay on their queues")
            return
        self._workers_stop = threading.Event()
        for system, queue_key in sorted(deployment.queue_keys.items()):
            url = self._queues[queue_key]
            source = queue_source(template, queue_key)
            assert source is not None  # the template has at least one SQS-fed worker
            source = dataclasses.replace(
                source, max_batching_window=scaled_window(source.max_batching_window)
            )
            code_uri, handler = function_code(template, source.function)
            name = f"worker-{system}"
            worker = lambdas.local_function(
                code_uri, handler, name, source.timeout_seconds, source.function
            )
            poller = QueuePoller(
                self._sqs, system, url, queue_arn(self._sqs, url), source, worker.invoke,
                self._workers_stop,
            )  # fmt: skip
            thread = threading.Thread(target=poller.run, name=f"queue-{system}", daemon=True)
            thread.start()
            self._worker_threads.append(thread)

    def _stop_workers(self) -> None:
        self._workers_stop.set()
        for thread in self._worker_threads:
            thread.join(JOIN_SECONDS)
            if thread.is_alive():
                log.warning("%s still busy: it stops after its batch", thread.name)
        self._worker_threads = []

    def _start_schedules(self, template: dict[str, Any]) -> None:
        """Each scheduled function on a timer (its rate divided by LOCAL_SCHEDULE_SPEEDUP)."""
        speedup = float(os.environ.get("LOCAL_SCHEDULE_SPEEDUP", SCHEDULE_SPEEDUP))
        for source in schedule_sources(template):
            invoke = self._invoker(source.function)
            poller = SchedulePoller(source, invoke, self.stop_event, speedup)
            log.info("%s runs every %.0f s (%s)", source.function, poller.period, source.name)
            self._spawn(f"schedule-{source.function}", poller.run)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop serving, let pollers finish their current batch, then drop the moto state."""
        self.stop_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._stop_workers()
        for thread in self._threads:
            thread.join(JOIN_SECONDS)
            if thread.is_alive():
                log.warning(
                    "%s still busy at shutdown (a daemon thread: exits with us)", thread.name
                )
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._config_dir is not None:
            shutil.rmtree(self._config_dir, ignore_errors=True)
            self._config_dir = None

    def posted_config(self, body: bytes) -> Path:
        """A systems file sent to /_local/systems, kept in a directory of the stack's own (the
        handlers read SYSTEMS_CONFIG by path) until the stack stops."""
        if self._config_dir is None:
            self._config_dir = Path(tempfile.mkdtemp(prefix="optout-local-systems-"))
        path = self._config_dir / f"systems-{len(list(self._config_dir.iterdir())) + 1}.json"
        path.write_bytes(body)
        return path


class SystemsRoute:
    """`GET /_local/systems`: the systems deployed; `POST /_local/systems` with a systems file
    as its body: deploy it over the running stack (LocalStack.redeploy), to rehearse a systems
    change with the data of before (docs/deploy.md, "Rehearse it locally")."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack

    def serve(self, request: Incoming) -> Outgoing:
        if request.method == "GET":
            return json_answer(200, {"systems": self._stack.systems})
        if request.method != "POST":
            return error_answer(405, "method_not_allowed", "GET or POST a systems file")
        try:
            json.loads(request.body or b"")
        except ValueError:
            return error_answer(400, "malformed_json", "the body is not a JSON systems file")
        path = self._stack.posted_config(request.body)
        try:
            changed = self._stack.redeploy(path)
        except StackConfigError as error:
            log.warning("systems config not deployed: %s", error)
            return error_answer(422, "invalid_config", str(error))
        return json_answer(200, changed)


def _credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }


def _url_template(queues: dict[str, str]) -> str:
    """A created queue's URL with its key replaced by the resolver's `{queue_key}` slot."""
    key, url = next(iter(sorted(queues.items())))
    return url.replace(f"{PREFIX}-{key}-jobs", f"{PREFIX}-{{queue_key}}-jobs")


def _local_name(logical_id: str) -> str:
    """ "CaptureFunction" -> "capture": the name the console prints for it."""
    return logical_id.removesuffix("Function").lower() or logical_id.lower()


def _function(template: dict[str, Any], logical_id: str, name: str) -> lambdas.LocalFunction:
    """A function an HTTP route invokes runs under `lambdas.HTTP_LOCK`, one with the others:
    Powertools keeps the request it resolves on a class all of them share (local/lambdas.py)."""
    code_uri, handler = function_code(template, logical_id)
    timeout = function_timeout(template, logical_id)
    http = logical_id in {route.function for route in http_routes(template)}
    lock = lambdas.HTTP_LOCK if http else None
    return lambdas.local_function(code_uri, handler, name, timeout, logical_id, lock)


def _secrets(options: StackOptions) -> dict[str, Any]:
    if not options.secrets_file.is_file():
        log.warning("no %s: sandboxes start without credentials", options.secrets_file.name)
        return {}
    loaded: dict[str, Any] = json.loads(options.secrets_file.read_text(encoding="utf-8"))
    return loaded
