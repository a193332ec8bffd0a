"""A new job's mark takes a purpose over from the job a mark names only when that job expires
before the new request's record (review s13 law 5; docs/decisions.md, "A cited job must
outlive the request that cites it").

`delivery.mark_flight(..., take_before=cut)` over moto: a purpose whose `until_<purpose>` is
before `cut`, or whose mark has no `until_<purpose>` (written before it was kept), is taken
over; one whose job lives to `cut` or later is not, so two resolvers still make one job. The
resolver part: a repeat opt-out within the cite window cites the first job, one after it gets
its own job, which the mark then names."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local.aws_resources import create_queues
from optout.events import CapturedEvent, KeyedIdentifier
from optout.identifiers import Identifier
from optout.jobs_queue import JobQueue
from optout.ops.contribution import Contribution, contribution_of
from optout.resolver.clusters import Caps
from optout.resolver.service import CITE_WINDOW_DAYS, Resolver
from optout.settings import LOCAL_HASH_KEY
from optout.store import delivery, keys
from optout.store.codec import deserialize, serialize
from optout.store.table import Table
from optout.systems import load_systems
from tests.conftest import Aws

PK = "ID#email#takeover"
SYSTEM = "crm"
CUT = 2_000_000_000  # the new request's record expiry (epoch seconds)
NOW = "2026-12-01T00:00:00+00:00"


def put_mark(table: Table, **fields: Any) -> None:
    item = {"pk": PK, "sk": keys.delivery_sk(SYSTEM), "kind": "delivery", **fields}
    table.client.put_item(TableName=table.name, Item=serialize(item))


def mark(table: Table) -> dict[str, Any]:
    key = {"pk": {"S": PK}, "sk": {"S": keys.delivery_sk(SYSTEM)}}
    return deserialize(table.client.get_item(TableName=table.name, Key=key)["Item"])


def take(table: Table, purposes: list[str], take_before: int | None = CUT) -> bool:
    flight = {"pk": PK, "purposes": purposes}
    return delivery.mark_flight(table, SYSTEM, flight, NOW, CUT, "b:crm",
                                until=CUT + 30 * 86_400, take_before=take_before)  # fmt: skip


def test_a_purpose_whose_job_expires_before_the_record_is_taken_over(table: Table) -> None:
    put_mark(table, inflight={"sale"}, job_sale="a:crm", until_sale=CUT - 1)
    assert take(table, ["sale"])
    found = mark(table)
    assert (found["job_sale"], found["until_sale"]) == ("b:crm", CUT + 30 * 86_400)


@pytest.mark.parametrize("until", [CUT, CUT + 1])
def test_a_purpose_whose_job_lives_to_the_record_is_not_taken(table: Table, until: int) -> None:
    # A job expiring at or after the record is cited (fanout.Member.carried): never taken over,
    # so a second resolver finds the first's job and makes none of its own.
    put_mark(table, inflight={"sale"}, job_sale="a:crm", until_sale=until)
    assert not take(table, ["sale"])
    assert (mark(table)["job_sale"], mark(table)["until_sale"]) == ("a:crm", until)


def test_a_mark_without_the_jobs_expiry_is_taken_over(table: Table) -> None:
    """Written before `until_<purpose>` was kept: the job's end is unknown, read as 'do not
    cite', so the new job takes the purpose."""
    put_mark(table, inflight={"sale"}, job_sale="a:crm")
    assert take(table, ["sale"])
    assert mark(table)["job_sale"] == "b:crm"


def test_without_take_before_a_carried_purpose_is_never_taken(table: Table) -> None:
    put_mark(table, inflight={"sale"}, job_sale="a:crm", until_sale=CUT - 1)
    assert not take(table, ["sale"], take_before=None)
    put_mark(table, inflight={"sale"}, job_sale="a:crm")
    assert not take(table, ["sale"], take_before=None)
    assert mark(table)["job_sale"] == "a:crm"


def test_one_purpose_held_by_a_lasting_job_refuses_the_whole_write(table: Table) -> None:
    put_mark(table, inflight={"sale", "share"}, job_sale="a:crm", until_sale=CUT - 1,
             job_share="c:crm", until_share=CUT + 1)  # fmt: skip
    assert not take(table, ["sale", "share"])
    assert (mark(table)["job_sale"], mark(table)["job_share"]) == ("a:crm", "c:crm")


# -- the resolver: cite within the window, its own job after it ---------------------------------

SECRET = LOCAL_HASH_KEY.encode()
SYSTEMS = load_systems("layers/common/config/systems.json")
T0 = datetime(2026, 1, 5, tzinfo=UTC)
EMAIL = KeyedIdentifier.of(SECRET, Identifier("email", "takeover@example.com"))  # type: ignore[arg-type]


def opt_out(n: int, at: datetime, purposes: tuple[str, ...] = ("sale",)) -> dict[str, Any]:
    event = CapturedEvent(
        request_id=f"00000000-0000-4000-8000-{n:012d}", event_type="consent",
        source="banner", received_at=at, deadline=(at + timedelta(days=45)).date(),
        opt_out=dict.fromkeys(purposes, True), gpc=False, identifiers=(EMAIL,), links=(),
        evidence={},
        fingerprint="x", asserts=(), roles=("verified",), confirm_opt_in=True,
    )  # fmt: skip
    return event.to_item(1095)


def resolve_twice(
    aws: Aws, table: Table, days_later: int, then: tuple[str, ...] = ("sale",)
) -> tuple[str, str, dict[str, Any]]:
    """An opt-out of sale at T0 and one of `then` `days_later` days after: the two request ids
    and the second's RESOLUTION."""
    queues, _, _ = create_queues(aws.sqs, sorted({s.queue_key for s in SYSTEMS.systems}),
                                 aws.table_name)  # fmt: skip
    at = [T0]
    resolver = Resolver(table, SYSTEMS, JobQueue(aws.sqs, _template(queues)), Caps(max_size=50),
                        clock=lambda: at[0])  # fmt: skip
    first, second = opt_out(1, T0), opt_out(2, T0 + timedelta(days=days_later), then)
    for n, event in enumerate((first, second)):
        at[0] = T0 + timedelta(days=days_later * n)
        table.client.put_item(TableName=table.name, Item=serialize(event))  # as capture does
        resolver.process(event)
    ids = [str(i["request_id"]) for i in (first, second)]
    found = {(i["pk"], i["sk"]): i for i in aws.items()}
    return ids[0], ids[1], found[(keys.request_pk(ids[1]), keys.RESOLUTION_SK)]


def _template(queues: dict[str, str]) -> str:
    key, url = next(iter(queues.items()))
    return url.replace(f"-{key}-jobs", "-{queue_key}-jobs")


def jobs_of(aws: Aws, request_id: str) -> set[str]:
    """The systems `request_id` has a job for."""
    pk, prefix = keys.request_pk(request_id), keys.JOB_PREFIX
    return {
        i["sk"][len(prefix) :] for i in aws.items() if i["pk"] == pk and i["sk"].startswith(prefix)
    }


def contribution(aws: Aws, request_id: str) -> Contribution:
    """What the request adds to the §7102 figures, from its records and the jobs it cites."""
    every = {(i["pk"], i["sk"]): i for i in aws.items()}
    own = [i for (pk, _), i in every.items() if pk == keys.request_pk(request_id)]
    found = contribution_of(own, every)
    assert found is not None
    return found


def test_a_repeat_within_the_cite_window_cites_the_first_job(aws: Aws, table: Table) -> None:
    first, second, resolution = resolve_twice(aws, table, CITE_WINDOW_DAYS - 1)
    systems = jobs_of(aws, first)
    assert systems and jobs_of(aws, second) == set()
    assert resolution["covered"] == {s: [f"{first}:{s}"] for s in systems}
    # and the page view is a §7102 repeat (counted on its own row only)
    assert contribution(aws, second).counters() == REPEAT


def test_a_repeat_after_the_cite_window_gets_its_own_jobs(aws: Aws, table: Table) -> None:
    first, second, resolution = resolve_twice(aws, table, CITE_WINDOW_DAYS + 1)
    systems = jobs_of(aws, first)
    assert systems and jobs_of(aws, second) == systems
    assert "covered" not in resolution
    # and each mark names the second request's job, with that job's expiry
    marks = [i for i in aws.items() if i["pk"] == EMAIL.pk and i["sk"].startswith("DELIVERY#")]
    assert {m["job_sale"] for m in marks} == {f"{second}:{s}" for s in systems}
    job = {i["sk"]: i for i in aws.items() if i["pk"] == keys.request_pk(second)}
    assert all(m["until_sale"] == job[f"JOB#{m['sk'][len('DELIVERY#'):]}"]["expires_at"]
               for m in marks)  # fmt: skip


# A §7102 repeat is counted on its own rows only (all requests' and its group's).
REPEAT = {"n.banner.repeat": 1, "g.unknown_sale.repeat": 1}


def test_a_re_send_after_the_cite_window_is_a_7102_repeat(aws: Aws, table: Table) -> None:
    """The page view asked nothing new: its jobs only renew a proof that ends too soon."""
    first, second, resolution = resolve_twice(aws, table, CITE_WINDOW_DAYS + 1)
    assert jobs_of(aws, second) == jobs_of(aws, first) != set()
    assert set(resolution["renewed"]) == jobs_of(aws, second)
    assert contribution(aws, second).counters() == REPEAT


def test_a_new_purpose_after_the_cite_window_is_a_request(aws: Aws, table: Table) -> None:
    """A job that carries a purpose no earlier job did is no renewal: the request counts."""
    _, second, resolution = resolve_twice(aws, table, CITE_WINDOW_DAYS + 1, ("sale", "share"))
    sharing = {s.name for s in SYSTEMS.systems if "share" in s.purposes}
    assert sharing and not sharing & set(resolution.get("renewed", ()))
    counters = contribution(aws, second).counters()
    assert counters["n.banner.received"] == 1 and "n.banner.repeat" not in counters


@pytest.mark.parametrize(("until_sale", "stamp_kept"), [(CUT + 1, True), (CUT, False)],
                         ids=["newer-job-named", "no-newer-job"])  # fmt: skip
def test_a_failed_jobs_free_keeps_a_newer_jobs_no_record_stamp(
    table: Table, until_sale: int, stamp_kept: bool
) -> None:
    """A failed `share` job the mark never named (its resolver had not marked it: race24): its
    free drops an earlier "no such person" stamp (`_drop_older_stamp`), but not one beside a
    job made after it, here named for `sale` (`until_sale` past the failed job's expiry): that
    stamp is the vendor's newer word (review s24 diff A D2). One expiring with it is not newer."""
    heard = 1_900_000_000
    put_mark(table, inflight={"sale"}, job_sale="b:crm", until_sale=until_sale,
             no_record_at=heard, no_record_job="b:crm")  # fmt: skip
    failed = {"job_id": "a:crm", "system": SYSTEM, "expires_at": CUT,
              "flights": [{"pk": PK, "purposes": ["share"]}]}  # fmt: skip
    delivery.free_ended(table, failed, "failed", NOW)
    found = mark(table)
    assert found["job_share"] == "a:crm"  # named by its own free, freed
    assert found["inflight"] == {"sale"}
    if stamp_kept:
        assert (found["no_record_at"], found["no_record_job"]) == (heard, "b:crm")
    else:
        assert "no_record_at" not in found and "no_record_job" not in found
