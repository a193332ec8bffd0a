"""optout.aws: the functions' botocore clients are botocore's own, from a loader that lists
only the services the functions call. Same files, same models, same endpoints."""

import sys
import time
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError, UnknownServiceError
from botocore.loaders import Loader

from optout import aws
from optout.store.table import Table

TYPES = ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1")


def _stock_client(service: str, region: str) -> object:
    return botocore.session.get_session().create_client(
        service, region_name=region, aws_access_key_id="k", aws_secret_access_key="s"
    )


def _our_client(service: str, region: str) -> object:
    return aws.session().create_client(
        service, region_name=region, aws_access_key_id="k", aws_secret_access_key="s"
    )


@pytest.mark.parametrize("type_name", TYPES)
def test_the_loader_lists_botocores_services_of_ours_and_no_other(type_name: str) -> None:
    stock = Loader().list_available_services(type_name)
    ours = aws.FunctionsLoader().list_available_services(type_name)
    assert ours == [name for name in stock if name in aws.SERVICES]


def test_the_loader_searches_botocores_own_paths() -> None:
    assert aws.session().get_component("data_loader").search_paths == Loader().search_paths


@pytest.mark.parametrize("service", aws.SERVICES)
def test_a_client_has_botocores_own_service_model(service: str) -> None:
    ours = _our_client(service, "us-east-1").meta.service_model  # type: ignore[attr-defined]
    stock = _stock_client(service, "us-east-1").meta.service_model  # type: ignore[attr-defined]
    assert ours._service_description == stock._service_description
    assert ours.operation_names == stock.operation_names


@pytest.mark.parametrize("service", aws.SERVICES)
@pytest.mark.parametrize("region", REGIONS)
def test_a_client_resolves_the_endpoint_botocore_resolves(service: str, region: str) -> None:
    ours, stock = _our_client(service, region), _stock_client(service, region)
    assert ours.meta.endpoint_url == stock.meta.endpoint_url  # type: ignore[attr-defined]
    assert ours.meta.partition == stock.meta.partition  # type: ignore[attr-defined]
    assert ours.meta.region_name == stock.meta.region_name  # type: ignore[attr-defined]


def test_a_service_the_functions_do_not_call_is_unknown() -> None:
    with pytest.raises(UnknownServiceError):
        aws.session().create_client("s3", region_name="us-east-1")


def test_a_process_with_boto3_loaded_gets_boto3s_default_session() -> None:
    # The tests, the local stack and the bench hook boto3's default session: its hooks apply.
    import boto3  # noqa: PLC0415

    boto3.setup_default_session(region_name="us-east-1")
    assert boto3.DEFAULT_SESSION is not None
    seen: list[str] = []
    boto3.DEFAULT_SESSION.events.register("optout-probe", lambda **_: seen.append("heard"))
    made = aws.client("dynamodb", Config(parameter_validation=False))
    made.meta.events.emit("optout-probe")
    assert seen == ["heard"]


# -- the retry budget (review s17 F2): botocore's legacy retries outlasted the capture ---------


def _throttled_attempts(made: Any) -> int:
    """How many times `made` sends one PutItem that DynamoDB always answers throttled (no
    network: the answer is made before sending; botocore's own retry policy runs on it)."""
    sent: list[int] = []
    body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"}'

    def throttled(request: Any, **_: Any) -> AWSResponse:
        sent.append(1)
        return AWSResponse(request.url, 400, {"x-amzn-requestid": "r"}, _Raw(body))

    made.meta.events.register_first("before-send.dynamodb.PutItem", throttled)
    with pytest.raises(ClientError) as raised:
        made.put_item(TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": "s"}})
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    return len(sent)


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@pytest.mark.parametrize("boto3_loaded", [False, True])
def test_a_throttled_call_is_tried_3_times_with_at_most_3_s_of_sleeps(
    boto3_loaded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # legacy mode: 10 attempts, 25.5 s of sleeps, past the capture's 10 s timeout
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    if not boto3_loaded:
        monkeypatch.delitem(sys.modules, "boto3", raising=False)
    made = aws.client("dynamodb", Config(parameter_validation=False))
    assert _throttled_attempts(made) == 3
    assert len(slept) == 2 and sum(slept) <= 3.0


def test_every_function_client_has_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    made = {
        "table": Table.connect("t").client,
        "sqs": aws.client("sqs"),
        "secrets": aws.client("secretsmanager"),
    }
    for name, one in made.items():
        config = one.meta.config
        assert config.retries["mode"] == "standard", name
        assert config.retries["total_max_attempts"] == 3, name
        assert (config.connect_timeout, config.read_timeout) == (1, 2), name
    # Worst case of one call (every attempt timed out reading, the longest sleeps) fits the
    # capture's and the admin API's 10 s (template.yaml Globals).
    assert 3 * 2 + (1 + 2) < 10
