"""The whole pipeline in one process: moto, the real handlers, pollers and the HTTP front.

One process with threads (HTTP front, one stream poller, one poller per jobs queue), so
stopping it leaves nothing behind. Each function runs as its own in-process "container";
each system's worker is a separate instance, as each system has its own worker on AWS.
"""

import dataclasses
import json
import logging
import os
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
from local.environment import REGION, scaled_window, stack_environment
from local.front import Cors, Front, FrontServer
from local.moto_reads import StreamReader
from local.queue_poller import QueuePoller
from local.queues_view import QueuesView
from local.requests_view import RequestsView
from local.sandbox_routes import build_routes
from local.schedule_poller import SchedulePoller
from local.static_site import StaticSite
from local.stream_poller import StreamPoller
from local.template_config import (
    function_code,
    function_timeout,
    http_routes,
    queue_source,
    schedule_sources,
    stream_source,
)
from optout.store.table import Table
from optout.systems import load_systems

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
    options: StackOptions
    stop_event: threading.Event = field(default_factory=threading.Event)
    systems: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _server: FrontServer | None = None
    _mock: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.options.port}"

    def start(self) -> None:
        template = load_template(self.options.template)
        systems = load_systems(
            self.options.systems_config,
            {**os.environ, "LOCAL_STACK_URL": self.url, "OPTOUT_LOCAL_MODE": "true"},
        ).systems
        self.systems = [s.name for s in systems]
        os.environ.update(_credentials())
        for patch in PATCHES:
            patch.install()
        self._mock = mock_aws()
        self._mock.start()
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        table_name = f"{PREFIX}-table"
        stream_arn = create_table(dynamodb, table_name, template)
        keys = {s.name: s.queue_key for s in systems}
        queues, _dlqs, _counts = create_queues(sqs, sorted(set(keys.values())), PREFIX, template)
        os.environ.update(
            stack_environment(
                template,
                url=self.url,
                table_name=table_name,
                systems_config=self.options.systems_config,
                queue_url_template=_url_template(queues),
                secrets_file=self.options.secrets_file,
            )
        )
        os.environ.pop("HASH_KEY_SECRET_NAME", None)  # the documented local hash key applies
        # A handler's call its role in template.yaml does not allow is refused, as on AWS
        # (moto enforces no IAM): before any handler makes a client.
        assert boto3.DEFAULT_SESSION is not None  # the clients above made it
        iam.install(
            boto3.DEFAULT_SESSION.events, iam.load_roles(template), lambdas.running_function
        )
        routes = http_routes(template)
        # One in-process function per logical id the routes name (capture, admin, ...).
        api_functions = {
            logical_id: _function(template, logical_id, _local_name(logical_id)).invoke
            for logical_id in sorted({route.function for route in routes})
        }
        self._start_resolver(template, stream_arn, sqs)
        self._start_workers(template, sqs, {name: (key, queues[key]) for name, key in keys.items()})
        self._start_schedules(template)
        if self.options.pretty_logs:
            from optout.observability import logger  # noqa: PLC0415 - after the handlers load

            console.prettify_powertools(logger)
        secrets = _secrets(self.options)  # keyed by each system's `credentials` name
        sandboxes = build_routes(
            [(s.name, s.type, secrets.get(s.credentials or "", {})) for s in systems]
        )
        origins = tuple(os.environ["ALLOWED_ORIGINS"].split(","))
        front = Front(
            routes,
            api_functions,
            sandboxes,
            RequestsView(Table(dynamodb, table_name)),
            StaticSite(self.options.web_root),
            Cors(origins),
            QueuesView(sqs, PREFIX),
        )
        self._server = FrontServer(self.options.port, front)
        self._threads.append(self._server.start())

    def _start_resolver(self, template: dict[str, Any], stream_arn: str, sqs: Any) -> None:
        source = stream_source(template)
        if source is None:
            log.warning("template.yaml has no stream-triggered function: nothing resolves events")
            return
        source = dataclasses.replace(
            source, max_batching_window=scaled_window(source.max_batching_window)
        )
        resolver = _function(template, source.function, "resolver")
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
        invoke = resolver.invoke
        poller = StreamPoller(reader, stream_arn, source, invoke, on_failure, self.stop_event)
        self._spawn("stream-poller", poller.run)

    def _start_workers(
        self, template: dict[str, Any], sqs: Any, queues: dict[str, tuple[str, str]]
    ) -> None:
        """queues: system name -> (queue key, queue URL); each system's own worker settings."""
        if queue_source(template) is None:
            log.warning("template.yaml has no SQS-triggered worker: jobs stay on their queues")
            return
        for system, (queue_key, url) in sorted(queues.items()):
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
                sqs, system, url, queue_arn(sqs, url), source, worker.invoke, self.stop_event
            )
            self._spawn(f"queue-{system}", poller.run)

    def _start_schedules(self, template: dict[str, Any]) -> None:
        """Each scheduled function on a timer (its rate divided by LOCAL_SCHEDULE_SPEEDUP)."""
        speedup = float(os.environ.get("LOCAL_SCHEDULE_SPEEDUP", SCHEDULE_SPEEDUP))
        for source in schedule_sources(template):
            function = _function(template, source.function, _local_name(source.function))
            poller = SchedulePoller(source, function.invoke, self.stop_event, speedup)
            log.info("%s runs every %.0f s (%s)", source.function, poller.period, source.name)
            self._spawn(f"schedule-{source.function}", poller.run)

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def wait(self) -> None:
        self.stop_event.wait()

    def stop(self) -> None:
        """Stop serving, let pollers finish their current batch, then drop the moto state."""
        self.stop_event.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(JOIN_SECONDS)
            if thread.is_alive():
                log.warning(
                    "%s still busy at shutdown (a daemon thread: exits with us)", thread.name
                )
        if self._mock is not None:
            self._mock.stop()
            self._mock = None


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
    code_uri, handler = function_code(template, logical_id)
    timeout = function_timeout(template, logical_id)
    return lambdas.local_function(code_uri, handler, name, timeout, logical_id)


def _secrets(options: StackOptions) -> dict[str, Any]:
    if not options.secrets_file.is_file():
        log.warning("no %s: sandboxes start without credentials", options.secrets_file.name)
        return {}
    loaded: dict[str, Any] = json.loads(options.secrets_file.read_text(encoding="utf-8"))
    return loaded
