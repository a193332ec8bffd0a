"""What the vendor pace makes each worker invocation wait on AWS, priced as Lambda duration.

On AWS each invocation of a system's worker starts its vendor requests at least
`MaxConcurrency / rate_limit_per_second` seconds apart (optout/connectors/pace.py; docs/
connectors.md, "Pace"), and Lambda bills the wait. The bench's own run paces at
local/systems.json's rates with MAX_CONCURRENCY 1, so its measurement cannot show the
production wait: it is modelled here from the calls stage's requests per invocation, with the
rates and MaxConcurrency read from the files production is built from (the layer's
systems.json and template.yaml's SystemLimits Mappings), not from copies.

Per invocation making k requests, `parallel` at a time (the connector's `parallel_calls`), each
taking the model's vendor latency: the span from the invocation's start to its last answer
when paced, less what the model already charges for those requests (their wait at the
measured overlap). An invocation's first request waits one interval from its start (the pace
cannot know when its concurrency slot's previous request went: Pacer.begin), so sequential
requests give interval + (k-1) x max(0, interval - latency), and k requests at once give
k x interval + latency - the charged wait. Under a backlog a warm container's own last request
may make the first wait a little longer; that is not modelled.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_SYSTEMS = ROOT / "layers" / "common" / "config" / "systems.json"
TEMPLATE = ROOT / "template.yaml"


@dataclass(frozen=True)
class Pace:
    interval_s: float  # MaxConcurrency / rate_limit_per_second: between an invocation's starts
    parallel: int  # requests the connector has in flight at once


def shipped_paces(
    systems_path: Path = SHIPPED_SYSTEMS, template_path: Path = TEMPLATE
) -> dict[str, Pace]:
    """System name -> its pace per invocation on AWS, as deployed from these two files."""
    from local.cfn_yaml import loads_template  # noqa: PLC0415 - the cost stage only
    from optout.connectors import CONNECTORS  # noqa: PLC0415
    from optout.systems import load_systems  # noqa: PLC0415

    limits = loads_template(template_path.read_text(encoding="utf-8"))["Mappings"]["SystemLimits"]
    found: dict[str, Pace] = {}
    for system in load_systems(systems_path, {}).systems:
        concurrency = max(1, int(limits[system.queue_key]["MaxConcurrency"]))
        found[system.name] = Pace(
            concurrency / system.rate_limit_per_second, CONNECTORS[system.type].parallel_calls
        )
    return found


def paced_span(requests: int, interval: float, latency: float, parallel: int) -> float:
    """Seconds from the invocation's start to the last answer: each request takes `latency`,
    at most `parallel` are in flight, and each starts at least `interval` after the one
    before (the first `interval` after the start)."""
    starts: list[float] = []
    for n in range(requests):
        free = starts[n - parallel] + latency if n >= parallel else 0.0
        starts.append(max(free, (starts[-1] if starts else 0.0) + interval))
    return starts[-1] + latency if starts else 0.0


def pace_wait(requests: int, pace: Pace, latency: float, overlap: float) -> float:
    """Seconds the pace adds to one invocation making `requests` requests: its paced span less
    the wait the model already charges them (requests x `overlap` x `latency`)."""
    charged = requests * overlap * latency
    return max(0.0, paced_span(requests, pace.interval_s, latency, pace.parallel) - charged)


def model(
    workers: dict[str, Any], accepted: int, latency: float, paces: dict[str, Pace]
) -> dict[str, dict[str, Any]]:
    """Per system: the pace and the seconds of pace wait per accepted opt-out."""
    found: dict[str, dict[str, Any]] = {}
    for name, worker in sorted(workers.items()):
        pace = paces.get(name)
        if pace is None:
            continue  # a system only the local config has: no production pace to model
        calls = worker["vendor_calls_per_job"]
        overlap = worker.get("vendor_waits_per_job", calls) / calls if calls else 1.0
        seconds = sum(
            pace_wait(requests, pace, latency, overlap) * invocations
            for requests, invocations in _requests_by_invocation(worker)
        )
        found[name] = {
            "interval_s": round(pace.interval_s, 4),
            "parallel_calls": pace.parallel,
            "seconds_per_opt_out": seconds / max(1, accepted),
        }
    return found


def _requests_by_invocation(worker: dict[str, Any]) -> list[tuple[int, int]]:
    """(requests, invocations making that many): as the calls stage counted them, else
    every invocation at the mean."""
    counted = worker.get("vendor_calls_by_invocation")
    if counted is not None:
        return [(int(k), int(n)) for k, n in counted.items()]
    invocations = int(worker.get("invocations", 1))
    mean = worker["vendor_calls_per_job"] * worker["jobs"] / max(1, invocations)
    return [(round(mean), invocations)]
