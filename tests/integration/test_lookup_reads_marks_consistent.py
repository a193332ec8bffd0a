"""The admin lookup reads an identity's delivery marks strongly consistent, as the jobs they
name: a mark from a replica a moment behind named the failed job a newer opt-out had replaced,
and the lookup said `failed` ("not told: replay it") for a system whose new job was in flight
(review s34b C1; this test failed on 7cf8500b)."""

from collections.abc import Iterator
from dataclasses import replace

import pytest

from local.moto_guard import guarded
from optout.admin import AdminService
from optout.hash_key import load_hash_key
from optout.settings import Settings
from optout.store.codec import deserialize
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_failed_delivery_views import EMAIL, failed_at_braze
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.stale_reads import LaggingClient


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def braze_mark(pipe: Pipeline) -> dict[str, object]:
    raw = pipe.aws.dynamodb.scan(TableName=pipe.aws.table_name)["Items"]
    (mark,) = [deserialize(i) for i in raw if i["sk"]["S"] == "DELIVERY#braze"]
    return mark


def test_a_lookup_does_not_name_a_replaced_failed_job_from_a_lagging_mark(pipe: Pipeline) -> None:
    # Given an opt-out braze refused for good, then a second one whose braze job is pending
    failed_at_braze(pipe)
    old = braze_mark(pipe)
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})["request_id"]
    pipe.resolve()
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    key = load_hash_key(Settings.from_env())
    truth = AdminService(table, key).lookup("email", EMAIL)
    assert truth["failed"] == {} and truth["in_flight"]["braze"] == ["sale"]
    assert braze_mark(pipe) != old
    # When the lookup's read of the identity reaches a replica that has the mark as it was
    lagging = LaggingClient(table.client, unseen=set(), older={(old["pk"], old["sk"]): old})
    found = AdminService(replace(table, client=lagging), key).lookup("email", EMAIL)
    # Then it does not name the replaced failed job (it did: braze read failed, not in flight)
    assert found["failed"] == truth["failed"]
