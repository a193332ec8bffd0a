"""capture -> stream -> resolver -> queues -> workers, over moto in this process.

The bench plays the parts AWS plays around the functions (API Gateway's event, the stream and
SQS event source mappings) with the local stack's own converters, and labels those calls
`esm:*` so they are counted apart from the functions' own calls. Vendor calls go to the local
sandboxes on a loopback server, which record them.
"""

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from bench import environment
from bench.counting import CallCounter, Tally
from bench.environment import LOCAL_ENV, SECRETS_FILE, SYSTEMS_CONFIG, invoke, load_function
from local.environment import REGION

PREFIX = "optout-bench"
# Every vendor call waits this long before it reaches the loopback sandbox: a stand-in for a
# vendor's latency, long enough that calls made together measurably overlap. The cost model
# prices the wait it measures (calls x their overlap), not this figure.
VENDOR_LATENCY_SECONDS = 0.02
STREAM_BATCH_SIZE = 100  # the resolver's BatchSize in template.yaml
RESOLVER_FILTER_SK = "EVENT"  # the resolver's FilterCriteria: inserted EVENT items only


@dataclass
class Resolved:
    request_id: str
    cluster_size: int
    tally: Tally
    jobs: int = 0  # jobs this event queued (sent with the batch's flush)


@dataclass
class MotoPipeline:
    counter: CallCounter
    table_name: str = f"{PREFIX}-table"
    queues: dict[str, str] = field(default_factory=dict)  # system name -> queue URL
    resolver_batches: list[Tally] = field(default_factory=list)  # one per stream batch
    # What each system's worker was handed: distinct jobs, and messages (sends, status checks
    # and retries of them), counted from the message bodies rather than from the worker's
    # own writes, so the counts do not change when the worker's writes do.
    worker_jobs: dict[str, set[str]] = field(default_factory=dict)
    worker_messages: dict[str, int] = field(default_factory=dict)
    worker_invocations: dict[str, int] = field(default_factory=dict)
    # Per system: seconds the workers spent waiting on vendor calls (the union of the calls'
    # intervals within each invocation) and the calls' summed durations; their ratio is how
    # much the calls overlapped (1: one after another).
    vendor_wait: dict[str, float] = field(default_factory=dict)
    vendor_busy: dict[str, float] = field(default_factory=dict)
    # Per system: invocations by the vendor requests each made (the cost model paces them).
    vendor_requests: dict[str, Counter[int]] = field(default_factory=dict)
    _intervals: list[tuple[float, float]] = field(default_factory=list)
    _mock: Any = None
    _server: Any = None
    _iterator: str | None = None
    _untime: Any = None

    def start(self, *, with_workers: bool = True) -> "MotoPipeline":
        environment.prepare()
        import boto3  # noqa: PLC0415 - after prepare(): env and path first
        from moto import mock_aws  # noqa: PLC0415

        from local.aws_resources import create_queues, create_table  # noqa: PLC0415
        from optout.systems import load_systems  # noqa: PLC0415

        self._mock = mock_aws()
        self._mock.start()  # resets boto3's default session: hook the new one after this
        self.counter.install()  # before any client exists, so every client inherits the hooks
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.streams = boto3.client("dynamodbstreams", region_name=REGION)
        self.stream_arn = create_table(self.dynamodb, self.table_name)
        self.systems = load_systems(SYSTEMS_CONFIG, {**os.environ, **LOCAL_ENV}).systems
        keys = {s.name: s.queue_key for s in self.systems}
        by_key, _, _ = create_queues(self.sqs, sorted(set(keys.values())), PREFIX)
        self.queues = {name: by_key[key] for name, key in keys.items()}
        self.queue_arns = {
            name: self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            for name, url in self.queues.items()
        }
        any_key, any_url = next(iter(sorted(by_key.items())))
        os.environ.update(
            {
                "TABLE_NAME": self.table_name,
                "SYSTEMS_CONFIG": str(SYSTEMS_CONFIG),
                "QUEUE_URL_TEMPLATE": any_url.replace(f"-{any_key}-jobs", "-{queue_key}-jobs"),
                "LOCAL_SECRETS_FILE": str(SECRETS_FILE),
                "LOCAL_STACK_URL": self._start_sandboxes()
                if with_workers
                else "http://127.0.0.1:9",
            }
        )
        self.capture: ModuleType = load_function("capture_api", "capture")
        self.admin: ModuleType = load_function("admin_api", "admin")  # the IAM routes
        self.resolver: ModuleType = load_function("resolver", "resolver")
        # One worker per system, as on AWS (each has its own container and connector state).
        self.workers: dict[str, ModuleType] = (
            {s.name: load_function("worker", f"worker_{s.name}") for s in self.systems}
            if with_workers
            else {}
        )
        return self

    def _start_sandboxes(self) -> str:
        from local.sandbox.base import Sandbox  # noqa: PLC0415
        from local.sandbox.server import SandboxServer  # noqa: PLC0415

        secrets: dict[str, Any] = json.loads(SECRETS_FILE.read_text(encoding="utf-8"))
        from local.sandbox.vendors import with_operators  # noqa: PLC0415

        configured: list[tuple[str, str, dict[str, Any]]] = [
            (s.name, s.type, secrets.get(s.credentials or "", {})) for s in self.systems
        ]
        sandboxes = {
            name: Sandbox(name, vendor, secret)
            for name, vendor, secret in with_operators(configured)
        }
        self._server = SandboxServer(sandboxes).start()
        self._time_vendor_calls()
        url: str = self._server.url
        return url

    def _time_vendor_calls(self) -> None:
        """Each vendor call's interval (threads included), with the stand-in latency."""
        from optout.connectors.http import HttpClient  # noqa: PLC0415

        original = HttpClient.send
        intervals = self._intervals

        def timed(client: HttpClient, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                time.sleep(VENDOR_LATENCY_SECONDS)
                return original(client, *args, **kwargs)
            finally:
                intervals.append((started, time.perf_counter()))  # list.append: thread-safe

        HttpClient.send = timed  # type: ignore[method-assign,assignment]
        self._untime = lambda: setattr(HttpClient, "send", original)

    def stop(self) -> None:
        if self._untime is not None:
            self._untime()
        if self._server is not None:
            self._server.stop()
        if self._mock is not None:
            self._mock.stop()

    # -- the stages -------------------------------------------------------------------------

    def post(self, event: dict[str, Any]) -> dict[str, Any]:
        iam_route = event["rawPath"] == "/v1/identity-links"  # template.yaml: AdminFunction
        function = self.admin if iam_route else self.capture
        answer: dict[str, Any] = invoke(function, event, "capture")
        return answer

    def resolve_new(self) -> list[Resolved]:
        """Every new EVENT record through the resolver handler in stream batches of the
        template's BatchSize, as Lambda delivers them. Each event's own calls are tallied
        (wrapping the domain's `process`); the batch's shared flush (SendMessageBatch, state
        writes) is in `resolver_batches`."""
        from local.stream_records import to_lambda_record  # noqa: PLC0415

        with self.counter.stage("esm:stream"):
            records = [to_lambda_record(r, self.stream_arn) for r in self._read_stream()]
        events = [
            r
            for r in records
            if r["eventName"] == "INSERT"
            and r["dynamodb"]["NewImage"]["sk"]["S"] == RESOLVER_FILTER_SK
        ]
        done: list[Resolved] = []
        domain = self.resolver.resolver()
        original = domain.process

        def tallied(item: dict[str, Any], outbox: Any = None, deadline: Any = None) -> Any:
            with self.counter.block() as tally:
                outcome = original(item, outbox, deadline)
            jobs = len(outcome.jobs)
            done.append(Resolved(outcome.request_id, outcome.cluster_size, tally, jobs))
            return outcome

        domain.process = tallied
        try:
            for start in range(0, len(events), STREAM_BATCH_SIZE):
                with self.counter.stage("resolver") as batch:
                    chunk = events[start : start + STREAM_BATCH_SIZE]
                    invoke(self.resolver, {"Records": chunk}, "resolver")
                self.resolver_batches.append(batch)
        finally:
            domain.process = original
        return done

    def _read_stream(self) -> list[dict[str, Any]]:
        if self._iterator is None:
            shard = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
                "Shards"
            ][0]
            self._iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="TRIM_HORIZON",
            )["ShardIterator"]
        found: list[dict[str, Any]] = []
        while True:
            page = self.streams.get_records(ShardIterator=self._iterator, Limit=1000)
            self._iterator = page["NextShardIterator"]
            found.extend(dict(r) for r in page["Records"])
            if not page["Records"]:
                return found

    def deliver_all(self, max_rounds: int = 1000) -> dict[str, list[Tally]]:
        """Drain every jobs queue through its worker, ten messages per invocation (the
        template's BatchSize). Returns each system's per-invocation tallies."""
        from local.queue_poller import sqs_record  # noqa: PLC0415

        batches: dict[str, list[Tally]] = {name: [] for name in self.queues}
        for _ in range(max_rounds):
            busy = False
            for name, url in self.queues.items():
                with self.counter.stage("esm:sqs"):
                    messages = self.sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
                    ).get("Messages", [])
                if not messages:
                    continue
                busy = True
                self.worker_messages[name] = self.worker_messages.get(name, 0) + len(messages)
                self.worker_jobs.setdefault(name, set()).update(
                    str(json.loads(m["Body"]).get("job_id")) for m in messages
                )
                records = [sqs_record(dict(m), self.queue_arns[name]) for m in messages]
                first = len(self._intervals)
                with self.counter.stage(f"worker:{name}") as tally:
                    answer = invoke(self.workers[name], {"Records": records}, f"worker-{name}")
                batches[name].append(tally)
                calls = self._intervals[first:]
                self.vendor_wait[name] = self.vendor_wait.get(name, 0.0) + _union(calls)
                self.vendor_busy[name] = self.vendor_busy.get(name, 0.0) + sum(
                    end - start for start, end in calls
                )
                self.vendor_requests.setdefault(name, Counter())[len(calls)] += 1
                self.worker_invocations[name] = self.worker_invocations.get(name, 0) + 1
                failed = {f["itemIdentifier"] for f in answer.get("batchItemFailures", [])}
                done = [m for m in messages if m["MessageId"] not in failed]
                if done:
                    with self.counter.stage("esm:sqs"):
                        self.sqs.delete_message_batch(
                            QueueUrl=url,
                            Entries=[
                                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                                for n, m in enumerate(done)
                            ],
                        )
            if not busy:
                return batches
        raise RuntimeError("queues did not drain")

    def vendor_calls(self) -> dict[str, int]:
        if self._server is None:
            return {}
        return {name: len(sb.recorded()) for name, sb in self._server.sandboxes.items()}


def _union(intervals: list[tuple[float, float]]) -> float:
    """Seconds covered by at least one interval."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
