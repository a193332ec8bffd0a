"""Stage 5: resolver time and calls per event with 10^3, 10^4 and 10^5 identities in the graph.

The graph is seeded with BatchWriteItem in the documented NODE/LINK shapes (clusters of four:
two devices, an email and a customer id, linked as a star from the email), growing in place
from one size to the next. At each size the resolver domain class (the same `Resolver` the
Lambda builds) handles webform opt-outs on the emails of clusters no event has touched yet,
so every measured event does the same work; only the graph around it is bigger. Time per
event is the resolver thread's CPU time, as a ratio to a baseline graph of the smallest size
whose events are interleaved with the measured ones, one baseline event beside each measured
one (same run, same moments: another process on a shared machine slows both alike). The ratio
is the median of those pairs' ratios, so a machine whose speed drifts during the stage moves
both sides of every pair alike. It must stay flat: the cost follows the cluster.
moto's base-table Query scans the whole table, so it is scoped to the partition, as in the
local stack (local/moto_guard.py); calls per event are counted as well, and those need no shim.
"""

import gc
import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from bench.counting import CallCounter
from bench.environment import LOCAL_ENV, SYSTEMS_CONFIG, prepare
from bench.progress import Progress
from bench.stats import median, percentile, ratio
from local.environment import REGION

CLUSTER = ("email", "device_id", "device_id", "customer_id")  # the email is the star's hub
PURPOSES = {"sale": True, "share": True, "targeted_advertising": True, "profiling": True}
WRITE_LIMIT = 25
WARM_UP = 5


def run(sizes: list[int], events: int, progress: Progress) -> dict[str, Any]:
    prepare()
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from local import moto_guard, moto_transactions  # noqa: PLC0415

    moto_guard.install()
    moto_transactions.install()  # no whole-table copy per transaction: the table grows here
    with mock_aws():
        counter = CallCounter()
        counter.install()
        return _measure(boto3.client("dynamodb", region_name=REGION), counter, sizes, events,
                        progress)  # fmt: skip


def _measure(
    dynamodb: Any, counter: CallCounter, sizes: list[int], events: int, progress: Progress
) -> dict[str, Any]:
    import boto3  # noqa: PLC0415

    from local.aws_resources import (  # noqa: PLC0415
        TEMPLATE,
        create_queues,
        create_table,
    )
    from local.cfn_yaml import load_template  # noqa: PLC0415
    from optout.jobs_queue import JobQueue  # noqa: PLC0415
    from optout.resolver.clusters import Caps  # noqa: PLC0415
    from optout.resolver.service import Resolver  # noqa: PLC0415
    from optout.settings import Settings  # noqa: PLC0415
    from optout.store.table import Table  # noqa: PLC0415
    from optout.systems import load_systems  # noqa: PLC0415

    template = load_template(TEMPLATE)
    for resource in template["Resources"].values():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::DynamoDB::Table":
            # No stream: this stage calls the resolver directly, and 10^5 seeded items would
            # only fill moto's stream buffer.
            resource["Properties"].pop("StreamSpecification", None)
    systems = load_systems(SYSTEMS_CONFIG, LOCAL_ENV)
    sqs = boto3.client("sqs", region_name=REGION)
    queues, _, _ = create_queues(sqs, sorted({s.queue_key for s in systems.systems}), "scale")
    any_key, any_url = next(iter(sorted(queues.items())))
    settings = Settings(table_name="unused")
    jobs = JobQueue(sqs, any_url.replace(f"-{any_key}-jobs", "-{queue_key}-jobs"))
    caps = Caps(max_size=settings.max_cluster_size)

    def graph(name: str) -> Resolver:
        create_table(dynamodb, name, template)
        return Resolver(Table(dynamodb, name), systems, jobs, caps)

    def warmed(resolver: Resolver, pool: list[dict[str, str]]) -> None:
        for _ in range(WARM_UP):  # first calls of a table pay one-time costs: not measured
            resolver.process(_event(pool.pop()))

    # The baseline graph stays at the smallest size (a fresh one per size, so each size can
    # have as many untouched clusters as it measures events); the measured one grows in place.
    # Events alternate between the two, so whatever else the machine does slows both alike.
    growing = graph("optout-bench-scale")
    hubs: list[dict[str, str]] = []
    results: list[dict[str, Any]] = []
    warmed(growing, _seed(dynamodb, "optout-bench-scale", 0, WARM_UP * len(CLUSTER)))
    warm_identities = WARM_UP * len(CLUSTER)  # the first clusters of the measured graph
    seeded = warm_identities
    for size in sizes:
        started = time.perf_counter()
        while seeded < size:
            count = min(size - seeded, 10_000)
            hubs.extend(_seed(dynamodb, "optout-bench-scale", seeded, count))
            seeded += count  # (not from len(hubs): the events before took hubs from it)
            progress.tick(f"seeding {size:,} identities", seeded, size)
        seed_seconds = time.perf_counter() - started
        # The seeded table lives in this process's heap (on AWS it does not): freeze it out of
        # the cyclic GC, whose full passes would otherwise grow with the graph.
        gc.collect()
        gc.freeze()
        # Nothing consumes these queues here, and moto's SendMessage walks every message a
        # queue holds: start each size with empty queues, as the workers keep them.
        empty_queues(sqs, queues.values())
        name = f"optout-bench-baseline-{len(results)}"
        baseline = graph(name)
        base_size = max(sizes[0], (events + WARM_UP) * len(CLUSTER))
        base_hubs = _seed(dynamodb, name, 0, base_size)
        warmed(baseline, base_hubs)
        measured: dict[str, list[float]] = {"baseline": [], "growing": []}
        calls: list[int] = []
        pair = [("baseline", baseline, base_hubs), ("growing", growing, hubs)]
        for n in range(events):
            for name, resolver, pool in pair if n % 2 else pair[::-1]:  # ABBA: no order bias
                event = _event(pool.pop())  # the newest cluster: no event has touched it
                with counter.stage(f"scale:{size}:{name}") as tally:
                    started = time.thread_time()  # this thread's CPU: the resolver's work
                    resolver.process(event)
                    measured[name].append((time.thread_time() - started) * 1000)
                if name == "growing":
                    calls.append(tally.total())
        base, grown = median(measured["baseline"]), median(measured["growing"])
        sides = zip(measured["baseline"], measured["growing"], strict=True)
        paired = [ratio(grown_ms, base_ms) for base_ms, grown_ms in sides]
        results.append(
            {
                "identities": seeded,
                "seed_seconds": round(seed_seconds, 1),
                "events": len(calls),
                "ms_per_event_median": round(grown, 3),
                "ms_per_event_p95": round(percentile(measured["growing"], 95), 3),
                "baseline_identities": base_size,
                "baseline_ms_per_event_median": round(base, 3),
                "aws_calls_per_event": round(sum(calls) / len(calls), 2),
                # The median of the pairs' ratios: each measured event over the baseline event
                # run right beside it. The ratio of the two medians is kept beside it.
                "ratio_to_baseline": round(median(paired), 2),
                "ratio_of_medians": round(ratio(grown, base), 2),
            }
        )
        progress.note(f"{seeded:,} identities: x{results[-1]['ratio_to_baseline']} the baseline")
    return {"cluster_size": len(CLUSTER), "sizes": results}


def _seed(dynamodb: Any, table: str, start: int, count: int) -> list[dict[str, str]]:
    """`count` identities in clusters of four; returns each cluster's hub (its email)."""
    from optout.store.codec import serialize  # noqa: PLC0415
    from optout.store.graph import link_items  # noqa: PLC0415

    at = "2026-01-05T10:00:00.000Z"
    items: list[dict[str, Any]] = []
    hubs: list[dict[str, str]] = []
    for cluster in range(start // len(CLUSTER), (start + count) // len(CLUSTER)):
        members = []
        for n, id_type in enumerate(CLUSTER):
            key = uuid.uuid5(uuid.NAMESPACE_URL, f"{cluster}:{n}").hex * 2  # 64 hex, as HMAC
            value = f"s{cluster}@example.com" if id_type == "email" else f"v{cluster}x{n}abcdefghij"
            pk = f"ID#{id_type}#{key}"
            members.append({"pk": pk, "type": id_type, "key": key, "value": value})
            items.append({"pk": pk, "sk": "NODE", "kind": "node", "id_type": id_type, "key": key,
                          "value": value, "version": 1, "updated_at": at, "own": {}})  # fmt: skip
        hub, *others = members
        for other in others:
            items.extend(link_items(hub["pk"], other["pk"], f"seed-{cluster}", at))
        hubs.append({"type": hub["type"], "key": hub["key"], "value": hub["value"]})
    for offset in range(0, len(items), WRITE_LIMIT):
        chunk = items[offset : offset + WRITE_LIMIT]
        request = {table: [{"PutRequest": {"Item": serialize(i)}} for i in chunk]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems")
    return hubs


def _event(hub: dict[str, str]) -> dict[str, Any]:
    return {
        "pk": "", "sk": "EVENT", "kind": "event", "event_type": "opt_out", "source": "webform",
        "request_id": str(uuid.uuid4()),
        "received_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "opt_out": dict(PURPOSES), "gpc": False, "identifiers": [hub], "links": [],
    }  # fmt: skip


def empty_queues(sqs: Any, urls: Iterable[str]) -> None:
    """Purge each queue, however recently it was purged.

    moto allows one PurgeQueue per queue every 60 s, as AWS does (since moto 5.2.4; moto 5.2.5
    added the setting that lifts it), and the next size can come sooner than that. Emptying the
    queues is this stage's housekeeping, not a call it measures, so the limit is lifted for
    these purges only.
    """
    with mock.patch.dict(os.environ, {"MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR": "false"}):
        for url in urls:
            sqs.purge_queue(QueueUrl=url)
