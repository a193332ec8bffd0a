"""A job carries where its request came from (review s14 counsel 7): the resolver keeps the
request's jurisdiction on the job item, and the worker hands it to the connector, whose
webhook notice picks the law it cites from it (tests/unit/connectors/test_requests.py)."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.pipeline import Pipeline, build_pipeline


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def _job(pipe: Pipeline, request_id: str, system: str) -> dict[str, Any]:
    item: dict[str, Any] = pipe.aws.dynamodb.get_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": f"JOB#{system}"}},
        ConsistentRead=True,
    )["Item"]
    return item


def test_a_colorado_request_makes_a_job_that_names_colorado_up_to_the_connector(
    pipe: Pipeline,
) -> None:
    # Given a Colorado consumer's sale opt-out
    request_id = pipe.post("/v1/opt-out", {"email": "co1@example.com", "purposes": ["sale"],
                                           "jurisdiction": "US-CO"})["request_id"]  # fmt: skip
    # When it is resolved and its webhook job delivered
    pipe.resolve()
    stored = _job(pipe, request_id, "webhook")
    vendor = Vendor()
    work(pipe, "webhook", vendor)
    # Then the job item and the job the connector is given name Colorado
    assert stored["jurisdictions"] == {"L": [{"S": "US-CO"}]}
    assert [job.jurisdictions for job in vendor.received] == [("US-CO",)]


def test_a_request_of_no_known_jurisdiction_makes_a_job_that_names_none(pipe: Pipeline) -> None:
    # Given an opt-out that states no jurisdiction (and no edge geolocated it)
    request_id = pipe.post("/v1/opt-out", {"email": "nj1@example.com"})["request_id"]
    pipe.resolve()
    stored = _job(pipe, request_id, "webhook")
    vendor = Vendor()
    work(pipe, "webhook", vendor)
    # Then the job keeps no list (none known), and the connector is given none
    assert "jurisdictions" not in stored
    assert [job.jurisdictions for job in vendor.received] == [()]
