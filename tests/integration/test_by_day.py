"""The ByDay index: requests by the day they arrived, for sweeps, metrics and exports."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from optout.events import CapturedEvent
from optout.store.by_day import events_between
from optout.store.codec import serialize
from optout.store.table import Table
from tests.conftest import Aws
from tests.support.pipeline import build_pipeline

NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def put_event(aws: Aws, received_at: datetime, source: str = "webform") -> str:
    """A stored event as capture writes it (the index keys come from CapturedEvent)."""
    request_id = str(uuid.uuid4())
    event = CapturedEvent(
        request_id=request_id, event_type="opt_out", source=source,  # type: ignore[arg-type]
        received_at=received_at, deadline=date(2026, 4, 3), opt_out={"sale": True}, gpc=False,
        identifiers=(), links=(), evidence={}, fingerprint="f",
    )  # fmt: skip
    aws.dynamodb.put_item(TableName=aws.table_name, Item=serialize(event.to_item(1095)))
    return request_id


def test_events_are_listed_by_arrival_within_a_half_open_range(aws: Aws) -> None:
    # Given events either side of a range that spans midnight, and on its very bounds
    start, end = NOON - timedelta(hours=14), NOON + timedelta(hours=1)  # 22:00 the day before
    before = put_event(aws, start - timedelta(milliseconds=1))
    first = put_event(aws, start)
    inside = [put_event(aws, start + timedelta(hours=h)) for h in (1, 3, 13)]  # both days
    at_end = put_event(aws, end)
    # When the range is listed
    listed = list(events_between(Table(aws.dynamodb, aws.table_name), start, end))
    # Then exactly the events in [start, end) come back, with what the index projects
    ids = {item["request_id"] for item in listed}
    assert ids == {first, *inside}
    assert before not in ids and at_end not in ids
    assert all(set(item) >= {"request_id", "received_at", "deadline", "source"} for item in listed)
    assert all("identifiers" not in item for item in listed)  # no identifier in the index


@pytest.mark.parametrize("count", [40])
def test_a_day_is_spread_over_sixteen_partitions_and_all_are_read(aws: Aws, count: int) -> None:
    # Given many events on one day (request ids land in different shards)
    ids = {put_event(aws, NOON + timedelta(seconds=n)) for n in range(count)}
    # When that day is listed
    table = Table(aws.dynamodb, aws.table_name)
    listed = list(events_between(table, NOON, NOON + timedelta(days=1)))
    # Then every event is found once, whatever its shard
    assert sorted(i["request_id"] for i in listed) == sorted(ids)
    assert len({i["request_id"][0] for i in listed}) > 4


def test_capture_writes_the_index_keys_in_its_one_put(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the capture API
    pipe = build_pipeline(aws, monkeypatch)
    # When a webform opt-out arrives
    before = datetime.now(UTC) - timedelta(seconds=1)
    answer = pipe.post("/v1/opt-out", {"email": "byday@example.com"})
    after = datetime.now(UTC) + timedelta(seconds=1)
    # Then the stored event is listed for its day, without its identifiers
    listed = list(events_between(Table(aws.dynamodb, aws.table_name), before, after))
    assert [i["request_id"] for i in listed] == [answer["request_id"]]
    assert listed[0]["source"] == "webform"
