"""The identity export reads the identity's delivery marks strongly consistent (review s34b
C1, export.py `_first_page`): a mark a moment behind named the failed job a newer opt-out had
replaced, and the export sealed `failed` for a system whose new job was in flight. Only the
admin lookup's read had a test (review34c: this one fails with export.py's read reverted)."""

from collections.abc import Iterator
from dataclasses import replace

import pytest

from local.moto_guard import guarded
from optout.hash_key import load_hash_key
from optout.ops.export import ExportService
from optout.settings import Settings
from optout.store.table import Table
from tests.conftest import Aws
from tests.integration.test_failed_delivery_views import EMAIL, failed_at_braze
from tests.integration.test_lookup_reads_marks_consistent import braze_mark
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.stale_reads import LaggingClient


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def delivery(answer: dict) -> list:
    return [r for r in answer["records"] if r["record"] == "delivery"]


def test_identity_export_does_not_seal_a_replaced_failed_job(pipe: Pipeline) -> None:
    # Given an opt-out braze refused for good, then a second one whose braze job is pending
    failed_at_braze(pipe)
    old = braze_mark(pipe)
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["sale"]})
    pipe.resolve()
    table = Table(pipe.aws.dynamodb, pipe.aws.table_name)
    key = load_hash_key(Settings.from_env())
    truth = ExportService(table, key).identity("email", EMAIL, None)
    # When the export's read of the identity reaches a replica with the mark as it was
    lagging = LaggingClient(table.client, unseen=set(), older={(old["pk"], old["sk"]): old})
    found = ExportService(replace(table, client=lagging), key).identity("email", EMAIL, None)
    # Then its delivery records are the current ones, not the replaced failure
    assert any(r["system"] == "braze" and r["in_flight"] == ["sale"] for r in delivery(truth))
    assert delivery(found) == delivery(truth)
