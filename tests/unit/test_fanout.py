"""Which systems get a job, for whom and for what (resolver/fanout.py), and what the resolver
sends and writes once per stream batch (resolver/outbox.py): pure inputs, no table."""

from typing import Any

import pytest

from optout.purposes import ALL_PURPOSES
from optout.resolver import outbox
from optout.resolver.fanout import JobPlan, Member, plan_jobs
from optout.resolver.outbox import Outbox
from optout.resolver.policy import OwnState
from optout.store.codec import Item
from optout.systems import SystemConfig

ADS = SystemConfig("ads", "webhook", ("device_id",), ("sale", "share", "targeted_advertising"))
CRM = SystemConfig("crm", "webhook", ("email", "phone"), ALL_PURPOSES)
UNTIL = 2_000_000_000  # the citing request's record expiry


def member(pk: str = "ID#email#k", id_type: str = "email", **marks: dict[str, Any]) -> Member:
    return Member(pk, id_type, "k", "a@example.com", OwnState.empty(), dict(marks))


def needs(plan: JobPlan) -> dict[str, list[str]]:
    return {pk: need for pk, (_, need) in plan.needs.items()}


# -- Member ------------------------------------------------------------------------------------


def test_a_members_identifier_is_what_a_job_carries() -> None:
    assert member().identifier() == {"type": "email", "key": "k", "value": "a@example.com"}
    assert "a@example.com" not in repr(member())


def test_a_purpose_done_or_in_flight_is_carried_and_not_needed_again() -> None:
    one = member(crm={"done": {"share"}, "inflight": {"profiling"}})
    wanted: list[Any] = ["sale", "share", "profiling", "limit_sensitive"]
    assert one.carried("crm", wanted, None) == ["share", "profiling"]
    assert one.still_needs("crm", wanted) == ["sale", "limit_sensitive"]
    assert one.still_needs("ads", wanted) == wanted  # no mark at that system


def test_a_job_is_cited_up_to_the_second_the_citing_record_ends() -> None:
    one = member(crm={"done": {"sale", "share", "profiling"}, "until_sale": UNTIL,
                      "until_share": UNTIL - 1})  # fmt: skip
    assert one.carried("crm", ["sale", "share", "profiling"], UNTIL) == ["sale"]
    assert one.still_needs("crm", ["sale", "share", "profiling"], UNTIL) == ["share", "profiling"]


@pytest.mark.parametrize(
    ("mark", "quiet_since", "heard"),
    [
        ({"no_record_at": 100, "no_record_job": "j:crm"}, 100, ("j:crm", 100)),
        ({"no_record_at": 99, "no_record_job": "j:crm"}, 100, None),  # before the quiet period
        ({"no_record_at": 100, "no_record_job": "j:crm"}, None, None),  # no quiet period
        ({"no_record_job": "j:crm"}, 100, None),
        ({"no_record_at": 100, "no_record_job": ""}, 100, None),
        ({}, 100, None),
    ],
)
def test_a_no_record_answer_quiets_an_identity_only_within_the_quiet_period(
    mark: Item, quiet_since: int | None, heard: tuple[str, int] | None
) -> None:
    assert member(crm=mark).heard_no_record("crm", quiet_since) == heard


def test_a_quiet_identity_needs_nothing_and_names_the_answer_only_if_it_needed_something() -> None:
    quiet = {"no_record_at": 100, "no_record_job": "j:crm", "done": {"share"}}
    assert member(crm=quiet).needs_now("crm", ["sale"], 100) == ([], ("j:crm", 100))
    assert member(crm=quiet).needs_now("crm", ["share"], 100) == ([], None)
    assert member(crm=quiet).needs_now("crm", ["sale"], 101) == (["sale"], None)


def test_a_member_cites_the_jobs_carrying_what_it_needs_no_new_job_for() -> None:
    one = member(crm={"done": {"sale"}, "inflight": {"share", "profiling"},
                      "job_sale": "r1:crm", "job_share": "r2:crm"})  # fmt: skip
    assert one.covering_jobs("crm", ["sale", "share", "profiling", "limit_sensitive"]) == {
        "r1:crm",
        "r2:crm",
    }
    assert one.covering_jobs("crm", ["sale"], UNTIL) == set()  # no until_sale: not cited


def test_marking_a_job_in_flight_adds_to_what_is_already_in_flight() -> None:
    one = member(crm={"inflight": {"sale"}, "job_sale": "r1:crm"})
    one.mark_in_flight("crm", ["share", "profiling"], "r2:crm", UNTIL)
    assert one.deliveries["crm"] == {
        "inflight": {"sale", "share", "profiling"},
        "job_sale": "r1:crm",
        "job_share": "r2:crm",
        "job_profiling": "r2:crm",
        "until_share": UNTIL,
        "until_profiling": UNTIL,
    }
    fresh = member()
    fresh.mark_in_flight("ads", ["sale"], "r3:ads")
    assert fresh.deliveries == {"ads": {"inflight": {"sale"}, "job_sale": "r3:ads"}}


# -- plan_jobs ---------------------------------------------------------------------------------


def test_a_system_gets_a_job_for_the_identities_it_takes_and_the_purposes_it_serves() -> None:
    device = member("ID#device_id#d", "device_id")
    email = member("ID#email#e", "email")
    plans = plan_jobs([device, email], {"profiling", "sale"}, (ADS, CRM))
    assert [p.system.name for p in plans] == ["ads", "crm"]
    ads, crm = plans
    assert (ads.purposes, needs(ads)) == ({"sale"}, {"ID#device_id#d": ["sale"]})
    assert needs(crm) == {"ID#email#e": ["sale", "profiling"]}  # in ALL_PURPOSES order
    assert crm.sorted_purposes() == ["sale", "profiling"]
    assert not ads.renewal and not crm.renewal


def test_no_job_for_a_system_serving_nothing_opted_out_or_taking_no_member() -> None:
    assert plan_jobs([member()], {"profiling"}, (ADS,)) == []
    assert plan_jobs([member()], {"sale"}, (ADS,)) == []  # ads takes no email
    assert plan_jobs([member()], set(), (CRM,)) == []


def test_everything_carried_makes_a_plan_that_only_cites() -> None:
    done = member(crm={"done": {"sale"}, "job_sale": "r1:crm", "until_sale": UNTIL})
    (plan,) = plan_jobs([done], {"sale"}, (CRM,), cite_until=UNTIL)
    assert (plan.needs, plan.covered, plan.renewal) == ({}, {"r1:crm"}, False)


def test_a_done_mark_without_its_job_is_no_plan_at_all() -> None:
    assert plan_jobs([member(crm={"done": {"sale"}})], {"sale"}, (CRM,)) == []


def test_a_quiet_identity_makes_a_plan_naming_the_answer_it_was_not_asked_for() -> None:
    quiet = member(crm={"no_record_at": 100, "no_record_job": "j:crm"})
    (plan,) = plan_jobs([quiet], {"sale"}, (CRM,), quiet_since=50)
    assert (plan.needs, plan.covered, plan.not_asked) == ({}, set(), {"j:crm": 100})


def test_a_job_that_only_renews_a_proof_ending_too_soon_is_a_renewal() -> None:
    soon = {"done": {"sale"}, "job_sale": "r1:crm", "until_sale": UNTIL - 1}
    (plan,) = plan_jobs([member(crm=soon)], {"sale"}, (CRM,), cite_until=UNTIL)
    assert (needs(plan), plan.renewal) == ({"ID#email#k": ["sale"]}, True)
    (plan,) = plan_jobs([member(crm=soon)], {"sale", "share"}, (CRM,), cite_until=UNTIL)
    assert plan.renewal is False  # share was never sent: a new opt-out, not a renewal


@pytest.mark.parametrize(
    ("first", "second", "renewal"),
    [
        ((True, True), (True, True), True),
        ((True, True), (False, True), False),
        ((False, True), (True, True), False),
        ((False, False), (True, True), True),  # a plan needing nothing takes the other's
        ((True, True), (False, False), True),
        ((False, False), (False, False), True),
    ],
)
def test_two_clusters_plans_are_a_renewal_only_if_each_is_one_or_needs_nothing(
    first: tuple[bool, bool], second: tuple[bool, bool], renewal: bool
) -> None:
    def plan(renews: bool, needy: bool, pk: str) -> JobPlan:
        found = {pk: (member(pk), ["sale"])} if needy else {}
        return JobPlan(CRM, {"sale"}, found, {f"c-{pk}"}, {f"n-{pk}": 1}, renews)

    one, other = plan(*first, "ID#email#a"), plan(*second, "ID#email#b")
    one.absorb(other)
    assert one.renewal is renewal
    assert one.covered == {"c-ID#email#a", "c-ID#email#b"}
    assert one.not_asked == {"n-ID#email#a": 1, "n-ID#email#b": 1}


def test_absorbing_joins_the_purposes_and_identities() -> None:
    one = JobPlan(CRM, {"sale"}, {"a": (member("a"), ["sale"])})
    one.absorb(JobPlan(CRM, {"profiling"}, {"b": (member("b"), ["profiling"])}))
    assert one.sorted_purposes() == ["sale", "profiling"]
    assert needs(one) == {"a": ["sale"], "b": ["profiling"]}


# -- Outbox ------------------------------------------------------------------------------------


class Queue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[dict[str, str]]]] = []

    def send(self, queue_key: str, messages: list[dict[str, str]]) -> None:
        self.sent.append((queue_key, list(messages)))


def test_the_outbox_sends_per_queue_then_writes_the_states_and_keeps_what_the_check_needs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[list[Item]] = []
    monkeypatch.setattr(outbox, "batch_put", lambda table, items: written.append(items))
    box = Outbox()
    box.add("crm", {"b": "1"})
    box.add("ads", {"b": "2"})
    box.add("crm", {"b": "3"})
    box.states["ID#email#k"] = {"pk": "ID#email#k"}
    box.bases[("ID#email#k",)] = {"ID#email#k": 1}
    box.resolutions.append({"pk": "REQ#r"})
    queue = Queue()
    box.flush(queue, table=None)  # type: ignore[arg-type]
    assert queue.sent == [("ads", [{"b": "2"}]), ("crm", [{"b": "1"}, {"b": "3"}])]
    assert written == [[{"pk": "ID#email#k"}]]
    assert (box.messages, box.states) == ({}, {})
    assert box.bases and box.resolutions  # checked and written after the flush


def test_the_outbox_keeps_the_latest_choice_and_clears_everything() -> None:
    box = Outbox()
    for at in ("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-01T00:00:00Z"):
        box.note_choice(at)
    assert box.chosen_at == "2026-01-03T00:00:00Z"
    box.add("crm", {"b": "1"})
    box.states["x"] = {}
    box.bases[("x",)] = {}
    box.resolutions.append({})
    box.jurisdictions.add("CA")
    box.clear()
    assert box == Outbox()
