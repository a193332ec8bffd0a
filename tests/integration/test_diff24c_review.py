"""Review s24 diff C C1: a backfill job made once a retired name was added back, left open by
the name's second removal and retire, is retired by that second retire (the RETIRED item keeps
the first retirement and adds the later one)."""

from datetime import UTC, datetime

from optout.admin import AdminService
from optout.ops.backfills import open_earlier, year_figures
from optout.retire import RetireService
from optout.store import keys
from optout.store.codec import deserialize, serialize
from optout.store.table import Table
from tests.integration.test_backfill import put_backfill

FIRST = "2026-11-01T12:00:00Z"


def test_a_backfill_job_made_after_the_name_was_added_back_is_retired_by_its_second_retire(
    table: Table,
) -> None:
    # Given meta retired on 1 November, added back, backfilled on 2 November (one job left
    # pending, one done, as proof), then removed again and retired again on 3 November
    table.client.put_item(TableName=table.name, Item=serialize({
        "pk": keys.RETIRED_PK, "sk": "meta", "system": "meta", "event_id": "r-first",
        "retired_at": FIRST, "retired_by": "op", "reason": "contract ended"}))  # fmt: skip
    put_backfill(table, "b-new", {"c1": ("pending", "2026-11-02T10:00:00Z"),
                                  "c2": ("done", "2026-11-02T10:00:00Z")})  # fmt: skip
    again = RetireService(table, None, 1125).retire(
        "meta", "removed from systems.json again", "op", datetime(2026, 11, 3, 12, tzinfo=UTC)
    )
    # Then it answers with the first retirement, which stays as written (counsel's evidence),
    # and the second is kept after it
    assert again.already_retired and again.retired_at == FIRST
    assert again.retirement_id == "r-first"
    found = table.client.get_item(TableName=table.name, Key={"pk": {"S": keys.RETIRED_PK},
                                                             "sk": {"S": "meta"}})  # fmt: skip
    item = deserialize(found["Item"])
    assert (item["retired_at"], item["reason"], item["event_id"]) == (
        FIRST, "contract ended", "r-first")  # fmt: skip
    assert item["retired_again"] == [{
        "retired_at": "2026-11-03T12:00:00.000Z", "retired_by": "op",
        "reason": "removed from systems.json again", "event_id": again.request_id}]  # fmt: skip
    # ... the job the second retirement left open is no longer owed, the done one stays done
    row = year_figures(table, 2026)["meta"]
    assert (row["jobs_retired"], row["jobs_open"], row["jobs_done"]) == (1, 0, 1)
    assert open_earlier(table, "meta", 2026, "b-third") == []
    # ... and `optout status` on it reads retired, naming both retirements
    admin = AdminService(table, b"k" * 32)
    view = admin.request_detail("b-new~c1")
    assert (view["status"], view["systems_total"], view["systems_retired"]) == ("completed", 0, 1)
    assert view["jobs"][0]["retired"]["retired_at"] == FIRST
    assert view["jobs"][0]["retired"]["retired_again"][0]["event_id"] == again.request_id
    done = admin.request_detail("b-new~c2")
    assert (done["status"], done["systems_done"], "retired" in done["jobs"][0]) == (
        "completed", 1, False)  # fmt: skip
