"""CCPA §7102 figures: over a seeded year they equal figures computed by hand, the ledger they
come from equals a recount from the records, and a denial moves a request between outcomes."""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

from optout.ops.contribution import Contribution, contribution_of
from optout.ops.ledger import fold_ops, year_ledgers
from optout.ops.metrics import MetricsService, figures
from optout.ops.watch import Watch, WatchSettings
from optout.store import transact
from optout.store.proof import load_with_proof
from optout.store.table import Table
from tests.support.seed import request_id_for, seed_request

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
# A first run reads back 20 days (16 Queries a day), to 31 Dec 2025: the oldest seeded day
SETTINGS = WatchSettings(backfill_days=20, lag_seconds=120)


def day(text: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(f"{text}T{hour:02d}:00:00+00:00")


def seed_year(table: Table) -> None:
    """Eight opt-out requests in 2026 (two per source), and four that must not count."""
    h = lambda n: timedelta(hours=n)  # noqa: E731
    seed_request(table, 1, day("2026-01-02"), "completed", source="banner", after=h(10))
    seed_request(table, 2, day("2026-01-05"), "completed", source="banner", after=h(48))
    seed_request(table, 3, day("2026-01-05"), "partial", source="webform", after=h(30))
    seed_request(table, 4, day("2026-01-06"), "denied", source="webform", after=h(20))
    seed_request(table, 5, day("2026-01-07"), "completed", source="gpc", after=h(2))
    seed_request(table, 6, day("2026-01-12"), "failed", source="gpc", after=h(3))
    seed_request(table, 7, day("2026-01-13"), "completed", source="agent", after=h(100))
    seed_request(table, 8, day("2026-01-14"), "processing", source="agent")
    # Not 2026's, or not an opt-out request (12 is a request to limit: its own figures):
    seed_request(table, 9, day("2025-12-31"), "completed", after=h(5))
    seed_request(table, 10, day("2026-01-03"), "completed", event_type="links")
    seed_request(table, 11, day("2026-01-03"), "completed", source="banner",
                 event_type="consent", opt_out={"sale": False})  # fmt: skip
    seed_request(table, 12, day("2026-01-04"), "completed", opt_out={"limit_sensitive": True})


def year_figures(table: Table, year: int = 2026) -> dict[str, Any]:
    return MetricsService(table).year(year, "as of the test")


def test_the_year_figures_equal_the_hand_computed_ones(table: Table) -> None:
    # Given a seeded year, enrolled by the deadline watch
    seed_year(table)
    Watch(table, SETTINGS, clock=lambda: NOW).run()
    # When the year's figures are computed
    found = year_figures(table)
    # Then: 8 received; complied in whole 4 (1, 2, 5, 7), in part 1 (3); denied 1 (4);
    # failed 1 (6); open 1 (8). Responses after 2, 10, 20, 30, 48 and 100 hours: the median
    # is (20 + 30) / 2 = 25 h = 1.04 days, the mean 210 / 6 = 35 h = 1.46 days.
    assert found["requests"] == {
        "received": 8, "complied_whole": 4, "complied_part": 1, "complied": 5, "denied": 1,
        "failed": 1, "open": 1, "repeats": 0,
        "days_to_respond": {"responses": 6, "median": 1.04, "mean": 1.46},
    }  # fmt: skip
    # And the request to limit (12) on its own rows (§7102(a)(1)(E)-(F)), in none of the above
    limit = found["limit_requests"]
    assert (limit["received"], limit["complied_whole"], limit["denied"]) == (1, 1, 0)
    assert limit["days_to_respond"]["responses"] == 1
    banner = found["by_source"]["banner"]
    assert (banner["received"], banner["complied_whole"]) == (2, 2)
    assert banner["days_to_respond"] == {"responses": 2, "median": 1.21, "mean": 1.21}
    assert found["by_source"]["webform"]["denied"] == 1
    assert found["by_source"]["agent"]["open"] == 1


def test_per_system_success_and_the_weekly_counts(table: Table) -> None:
    seed_year(table)
    Watch(table, SETTINGS, clock=lambda: NOW).run()
    found = year_figures(table)
    # braze: done in 1, 2, 4, 5, 7; failed in 3 (the partial one) and 6; pending in 8
    assert found["systems"]["braze"] == {
        "done": 5, "failed": 2, "processing": 1, "retired": 0, "success_rate": 0.7143,
        "overdue": 0,
    }  # fmt: skip
    assert found["systems"]["salesforce"]["success_rate"] == 0.8571
    weeks = {w["week"]: w for w in found["weekly"]}
    assert weeks["2026-W01"] | {"week": None} == {
        "week": None, "starts": "2025-12-29", "partial": True, "banner": 1, "webform": 0,
        "gpc": 0, "agent": 0,
    }  # fmt: skip
    assert weeks["2026-W02"]["partial"] is False
    assert (weeks["2026-W02"]["banner"], weeks["2026-W02"]["webform"]) == (1, 2)
    assert [(b["days"], b["responses"]) for b in found["days_to_respond_histogram"]] == [
        (0, 3), (1, 2), (4, 1),
    ]  # fmt: skip


def test_a_request_counts_in_the_year_it_was_received(table: Table) -> None:
    seed_year(table)
    Watch(table, SETTINGS, clock=lambda: NOW).run()
    assert year_figures(table, 2025)["requests"]["received"] == 1


def test_the_ledger_equals_a_recount_from_the_records(table: Table) -> None:
    # Given a year folded by the watch, then changed: a processing request completes
    seed_year(table)
    Watch(table, SETTINGS, clock=lambda: NOW).run()
    seed_request(table, 8, day("2026-01-14"), "completed", source="agent", after=timedelta(1))
    Watch(table, SETTINGS, clock=lambda: NOW + timedelta(days=1)).run()
    # When every request's contribution is computed afresh from its records
    recount: dict[str, int] = {}
    for n in range(1, 13):
        found = contribution_of(*load_with_proof(table, request_id_for(n)))
        if found is not None and found.day.startswith("2026"):
            for name, value in found.counters().items():
                recount[name] = recount.get(name, 0) + value
    # Then the ledger holds exactly those counts
    stored: dict[str, int] = {}
    for ledger in year_ledgers(table, 2026):
        for name, value in ledger.items():
            if "." in name and value:
                stored[name] = stored.get(name, 0) + value
    assert stored == recount
    assert figures(2026, year_ledgers(table, 2026), {}, "")["requests"]["open"] == 0


def test_a_request_counts_in_the_year_and_week_of_the_date_its_deadline_counts_from(
    table: Table,
) -> None:
    # Given a California request received on 31 Dec 2025 at 20:00 PST (1 Jan 04:00 UTC)
    seed_request(table, 1, datetime(2026, 1, 1, 4, 0, tzinfo=UTC), "completed", after=timedelta(1))
    # When the watch folds it
    Watch(table, SETTINGS, clock=lambda: NOW).run()
    # Then it is 2025's request, in 2025's last ISO week, as its deadline counts from 31 Dec
    last_year = year_figures(table, 2025)
    assert (
        last_year["requests"]["received"],
        year_figures(table, 2026)["requests"]["received"],
    ) == (1, 0)
    assert [w["week"] for w in last_year["weekly"]] == ["2026-W01"]  # Wed 31 Dec 2025: ISO 2026-W01
    found = contribution_of(*load_with_proof(table, request_id_for(1)))
    assert found is not None and found.day == "2025-12-31"


def test_a_request_folded_under_its_utc_day_moves_to_its_local_day_at_its_next_fold(
    table: Table,
) -> None:
    # Given a request folded before the rule, under its UTC day (1 Jan 2026)
    seed_request(table, 1, datetime(2026, 1, 1, 4, 0, tzinfo=UTC), "processing")
    found = contribution_of(*load_with_proof(table, request_id_for(1)))
    assert found is not None
    utc_day = dataclasses.replace(found, received_on="")
    transact.write(table, fold_ops(table, utc_day, None, "2026-01-02T00:00:00.000Z", 2_000_000_000))
    assert year_figures(table, 2026)["requests"]["received"] == 1
    # When it is folded again (it completed since)
    seed_request(table, 1, datetime(2026, 1, 1, 4, 0, tzinfo=UTC), "completed", after=timedelta(1))
    items, covering = load_with_proof(table, request_id_for(1))
    folded = next(i for i in items if i["sk"] == "FOLDED")
    again = contribution_of(items, covering)
    assert again is not None
    transact.write(table, fold_ops(table, again, folded, "2026-01-03T00:00:00.000Z", 2_000_000_000))
    # Then its counts left 2026 and are 2025's, once
    assert year_figures(table, 2026)["requests"]["received"] == 0
    assert year_figures(table, 2025)["requests"] | {"days_to_respond": None} == {
        "received": 1, "complied_whole": 1, "complied_part": 0, "complied": 1, "denied": 0,
        "failed": 0, "open": 0, "repeats": 0, "days_to_respond": None,
    }  # fmt: skip


def test_a_years_figures_show_only_that_years_overdue_requests(table: Table) -> None:
    # Given a 2025 request past its deadline and still processing, and 2026's requests
    seed_year(table)
    seed_request(table, 13, day("2025-12-20"), "processing", deadline=date(2026, 1, 12))
    # When the watch runs in January 2026 (reading back to 20 Dec) and each year's figures are read
    Watch(table, SETTINGS.model_copy(update={"backfill_days": 31}), clock=lambda: NOW).run()
    this_year, last_year = year_figures(table, 2026), year_figures(table, 2025)
    # Then the overdue request is 2025's: 2026's report shows none as its own
    assert this_year["watch"]["overdue"] == 1  # the watch's count, every year's
    assert (this_year["watch"]["overdue_in_year"], last_year["watch"]["overdue_in_year"]) == (0, 1)
    assert this_year["systems"]["braze"]["overdue"] == 0
    assert last_year["systems"]["braze"]["overdue"] == 1


class _FoldedBeforeGroups(Contribution):
    """A contribution as folded before the ledger had jurisdiction and purpose groups."""

    def counters(self) -> dict[str, int]:
        return {k: v for k, v in super().counters().items() if not k.startswith(("g.", "gh."))}


def test_a_request_folded_before_the_groups_makes_the_split_partial_until_its_next_fold(
    table: Table,
) -> None:
    # Given an open request folded before the groups existed (review s13 law 4)
    seed_request(table, 1, day("2026-01-05"), "processing")
    found = contribution_of(*load_with_proof(table, request_id_for(1)))
    assert found is not None
    before = _FoldedBeforeGroups(**dataclasses.asdict(found))
    transact.write(table, fold_ops(table, before, None, "2026-01-06T00:00:00.000Z", 2_000_000_000))
    # Then the year counts it among all requests and says it is in no group: no group
    # figure is made up for it
    partial = year_figures(table)
    assert partial["requests"]["received"] == 1
    assert partial["split"] == {
        "complete": False, "requests_not_split": 1, "limit_requests_not_split": 0,
    }  # fmt: skip
    assert partial["by_group"]["unknown"]["sale_share"]["received"] == 0
    # When it completes and is folded again
    seed_request(table, 1, day("2026-01-05"), "completed", after=timedelta(hours=4))
    items, covering = load_with_proof(table, request_id_for(1))
    folded = next(i for i in items if i["sk"] == "FOLDED")
    again = contribution_of(items, covering)
    assert again is not None
    transact.write(table, fold_ops(table, again, folded, "2026-01-07T00:00:00.000Z", 2_000_000_000))
    # Then it is in its group (no jurisdiction: unknown, not California), once, and the split
    # is complete
    whole = year_figures(table)
    assert whole["requests"]["received"] == 1
    assert whole["by_group"]["unknown"]["sale_share"]["complied_whole"] == 1
    assert whole["california_sale_share"]["received"] == 0
    assert whole["split"]["complete"] is True
