"""optout.aws: the functions' botocore clients are botocore's own, from a loader that lists
only the services the functions call. Same files, same models, same endpoints."""

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

from optout import aws

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
