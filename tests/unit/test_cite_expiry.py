"""A request cites an earlier job only if that job outlives the request's own record (review
s13 law 5): the mark's `until_<purpose>` (the named job's expiry) against `cite_until`."""

from typing import Any

from optout.resolver.fanout import Member, plan_jobs
from optout.resolver.policy import OwnState
from optout.systems import SystemConfig

SYSTEM = SystemConfig("crm", "webhook", ("email",), ("sale",))
RECORD_EXPIRES = 2_000_000_000  # the citing request's record expiry (epoch seconds)


def _plan(mark: dict[str, Any]) -> tuple[set[str], set[str]]:
    member = Member("ID#email#k", "email", "k", "a@example.com", OwnState.empty(), {"crm": mark})
    (plan,) = plan_jobs([member], {"sale"}, (SYSTEM,), cite_until=RECORD_EXPIRES)
    return set(plan.needs), plan.covered


def test_a_job_outliving_the_record_is_cited() -> None:
    mark = {"inflight": {"sale"}, "job_sale": "a:crm", "until_sale": RECORD_EXPIRES + 1}
    assert _plan(mark) == (set(), {"a:crm"})


def test_a_job_expiring_before_the_record_is_not_cited_but_planned_again() -> None:
    mark = {"inflight": {"sale"}, "job_sale": "a:crm", "until_sale": RECORD_EXPIRES - 86_400}
    assert _plan(mark) == ({"ID#email#k"}, set())


def test_a_mark_without_the_jobs_expiry_is_not_cited() -> None:
    """Marks written before the expiry was kept: the job's end is unknown (it may be gone)."""
    assert _plan({"inflight": {"sale"}, "job_sale": "a:crm"}) == ({"ID#email#k"}, set())


def test_without_cite_until_every_carrying_job_is_cited() -> None:
    member = Member("ID#email#k", "email", "k", "v", OwnState.empty(),
                    {"crm": {"inflight": {"sale"}, "job_sale": "a:crm"}})  # fmt: skip
    (plan,) = plan_jobs([member], {"sale"}, (SYSTEM,))
    assert (set(plan.needs), plan.covered) == (set(), {"a:crm"})
