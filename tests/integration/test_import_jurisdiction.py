"""An import row without a jurisdiction takes California's deadline (the import default), but
nobody stated it: its record says so (`jurisdiction_from: import_default`), and the §7102
groups, whose California figure counts jurisdictions stated or geolocated, count it of unknown
jurisdiction, with the report's warning (review s31 counsel F6: it was counted as a stated
California request)."""

from collections.abc import Iterator

import pytest

from tests.conftest import Aws
from tests.integration.test_operator_routes import call, import_rows, ok, watch
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def test_an_import_row_without_a_jurisdiction_is_recorded_as_defaulted_and_counted_unknown(
    pipe: Pipeline,
) -> None:
    # Given two imported opt-outs of sale, one stating California, one naming no jurisdiction
    rows = [
        {"line": 2, "external_id": "H-1", "received_at": "2026-03-02T10:00:00Z",
         "email": "h1@example.com", "jurisdiction": "US-CA",
         "completed_at": "2026-03-03T10:00:00Z"},
        {"line": 3, "external_id": "H-2", "received_at": "2026-03-02T10:00:00Z",
         "email": "h2@example.com", "completed_at": "2026-03-03T10:00:00Z"},
    ]  # fmt: skip
    taken = import_rows(pipe, rows)["request_ids"]
    ids = {row["external_id"]: row["request_id"] for row in taken}
    # Then each record says where its jurisdiction came from: the row, or the import's default
    # (California's deadline either way)
    for external_id, where in (("H-1", "import"), ("H-2", "import_default")):
        request_id = ids[external_id]
        record = ok(call(pipe, "GET", f"/v1/admin/requests/{request_id}",
                         params={"request_id": request_id}))  # fmt: skip
        evidence = record["event"]["evidence"]
        assert (evidence["jurisdiction"], evidence["jurisdiction_from"]) == ("US-CA", where)
        assert record["deadline"] == "2026-03-23"
    # When they are carried out and the watch folds them into the year's figures
    pipe.resolve()
    watch(pipe)
    found = ok(call(pipe, "GET", "/v1/admin/metrics", query={"year": "2026"}))
    # Then California's sale/sharing figure counts the stated one only; the defaulted one is
    # of unknown jurisdiction, and the report warns of it
    assert found["requests"]["received"] == 2
    assert found["california_sale_share"]["received"] == 1
    assert found["by_group"]["unknown"]["sale_share"]["received"] == 1
    assert found["unknown_jurisdiction"]["requests"] == 1
    assert found["unknown_jurisdiction"]["warning"]
