"""Review s24 diff C: a backfill job made once a retired name was added back, left open by
the name's second removal and retire (strict xfail: the gap it shows)."""

from datetime import UTC, datetime

import pytest

from optout.ops.backfills import open_earlier, year_figures
from optout.retire import RetireService
from optout.store import keys
from optout.store.codec import serialize
from optout.store.table import Table
from tests.integration.test_backfill import put_backfill


@pytest.mark.xfail(strict=True, reason="review s24 diff C C1: the RETIRED item is written once, "
                   "so a second retire keeps the first retired_at and a job made between the "
                   "two (the name added back) is never read retired")  # fmt: skip
def test_a_backfill_job_made_after_the_name_was_added_back_is_retired_by_its_second_retire(
    table: Table,
) -> None:
    # Given meta retired on 1 November, added back, backfilled on 2 November (its job left
    # pending), then removed again and retired again on 3 November
    table.client.put_item(TableName=table.name, Item=serialize({
        "pk": keys.RETIRED_PK, "sk": "meta", "system": "meta", "event_id": "r-first",
        "retired_at": "2026-11-01T12:00:00Z"}))  # fmt: skip
    put_backfill(table, "b-new", {"c1": ("pending", "2026-11-02T10:00:00Z")})
    again = RetireService(table, None, 1125).retire(
        "meta", "removed from systems.json again", "op", datetime(2026, 11, 3, 12, tzinfo=UTC)
    )
    assert again.already_retired and again.retired_at == "2026-11-01T12:00:00Z"
    # Then the job the second retirement left open is no longer owed
    assert year_figures(table, 2026)["meta"]["jobs_retired"] == 1
    assert open_earlier(table, "meta", 2026, "b-third") == []
