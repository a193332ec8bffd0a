"""Jobs the flush makes after a concurrent change (`Resolver._rederived_jobs`) send each person
only their own purposes: a stream batch holds several people's events, and when their clusters
are derived again each purpose set gets its own job, never one job with the union (the same
finding as review s30 operator F1, for the flush). A confirmed opt-in stays out of that person's
job. The sweep still finds every such job through the owner's `REDERIVED#` markers."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optout.resolver.outbox import Outbox
from optout.resolver.service import Resolver
from optout.store import keys
from optout.store.codec import deserialize
from optout.store.table import Table
from optout.sweep import Sweeper, SweepSettings
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.pipeline import Pipeline, build_pipeline

ONE = "dev-rederive-one-aaaaaa"  # sale and profiling, then share meanwhile
BACK_IN = "dev-rederive-backin-aaa"  # out of all four, confirmed back in to profiling, then limit
ALL_FOUR = ["profiling", "sale", "share", "targeted_advertising"]


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def died(*_: Any, **__: Any) -> Any:
    raise RuntimeError("injected after the nodes")


def consent(pipe: Pipeline, device: str, **opt_out: bool) -> str:
    return str(pipe.post("/v1/consent", {"device_id": device, "opt_out": opt_out})["request_id"])


def two_people_derived_again(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Given one device out of all four purposes, then confirmed back in to profiling; then one
    stream batch: another device opting out of sale and profiling, and the first repeating
    sale, run and not yet flushed; meanwhile other invocations wrote each device's node (the
    one: share; the other: limit_sensitive) and died before their jobs. When the batch is
    flushed, its check sees both nodes moved and derives both clusters again. Returns the
    batch's request ids."""
    pipe.post("/v1/consent", {"device_id": BACK_IN, "opt_out": dict.fromkeys(ALL_FOUR, True)})
    pipe.resolve()
    pipe.post("/v1/consent", {"device_id": BACK_IN, "opt_out": {"profiling": False},
                              "confirm_opt_in": True})  # fmt: skip
    pipe.resolve()
    pipe.drain_all()
    batch_ids = [consent(pipe, ONE, sale=True, profiling=True), consent(pipe, BACK_IN, sale=True)]
    meanwhile = [consent(pipe, ONE, share=True), consent(pipe, BACK_IN, limit_sensitive=True)]
    images = (r["dynamodb"]["NewImage"] for r in pipe.event_records())
    events = {e["request_id"]: e for e in map(deserialize, images)}
    resolver = pipe.resolver.resolver()
    batch = Outbox()
    for request_id in batch_ids:
        resolver.process(dict(events[request_id]), batch)
    with monkeypatch.context() as patch:
        patch.setattr(Resolver, "_link", died)
        for request_id in meanwhile:
            with pytest.raises(RuntimeError, match="injected"):
                resolver.process(dict(events[request_id]), Outbox())
    resolver.flush(batch)
    return batch_ids


def states(pipe: Pipeline) -> dict[str, list[str]]:
    """Per device id, what its STATE says it is opted out of (the webhook serves them all)."""
    value_of = {n["pk"]: n["value"] for n in pipe.items("ID#") if n["sk"] == "NODE"}
    return {value_of[s["pk"]]: sorted(p for p, on in s["opt_out"].items() if on is True)
            for s in pipe.items("ID#") if s["sk"] == "STATE"}  # fmt: skip


def rederived_jobs(pipe: Pipeline) -> list[dict[str, Any]]:
    return [i for i in pipe.items("REQ#") if i["sk"] == "JOB#webhook" and "~" in i["request_id"]]


def test_jobs_made_after_deriving_again_send_each_person_only_their_own_purposes(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_people_derived_again(pipe, monkeypatch)
    vendor = Vendor()
    work(pipe, "webhook", vendor)
    # Then the jobs made again send each device exactly what its state says it is out of
    opted = states(pipe)
    assert opted == {
        ONE: ["profiling", "sale", "share"],
        BACK_IN: ["limit_sensitive", "sale", "share", "targeted_advertising"],
    }
    again = [job for job in vendor.received if "~" in job.job_id]
    assert sorted(len(job.identifiers) for job in again) == [1, 1]  # one job per purpose set
    for job in again:
        for identifier in job.identifiers:
            assert sorted(job.purposes) == opted[identifier.value], identifier.value
    # ... no call of any job tells the vendor the opted-in device is out of profiling, nor the
    # other device out of what only the first chose
    for job in vendor.received:
        values = {i.value for i in job.identifiers}
        assert BACK_IN not in values or "profiling" not in job.purposes
        assert ONE not in values or not {"targeted_advertising", "limit_sensitive"} & set(
            job.purposes
        )
    # ... and each job record says the same as the body it sent, for the identity it holds
    key_of = {n["value"]: n["key"] for n in pipe.items("ID#") if n["sk"] == "NODE"}
    records = rederived_jobs(pipe)
    assert len(records) == 2
    for record in records:
        (held,) = [v for v, k in key_of.items()
                   if k in {i["key"] for i in record["identifiers"]}]  # fmt: skip
        assert sorted(record["purposes"]) == opted[held]
        for flight in record["flights"]:
            assert set(flight.get("purposes") or record["purposes"]) <= set(record["purposes"])


def test_every_job_made_after_deriving_again_is_marked_and_found_by_the_sweep(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    owners = two_people_derived_again(pipe, monkeypatch)
    # Then each job made again is named by a marker in the partition of the batch's request
    # whose cluster it carries (one each here), written for its own systems
    made = {r["request_id"] for r in rederived_jobs(pipe)}
    assert len(made) == 2 and sorted(str(keys.made_by(r)) for r in made) == sorted(owners)
    markers = [i for owner in owners for i in pipe.partition(keys.request_pk(owner))
               if i["sk"].startswith(keys.REDERIVED_PREFIX)]  # fmt: skip
    assert {m["request_id"] for m in markers} == made
    assert all(m["systems"] == ["webhook"] for m in markers)
    # ... and the sweep, past the jobs' grace with no message delivered, finds both
    pipe.drain_all()
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    later = datetime.now(UTC) + timedelta(hours=2, minutes=20)
    report = Sweeper(table, SweepSettings(), clock=lambda: later).sweep()
    assert {f"{r}:webhook" for r in made} <= set(report.stuck_jobs)
