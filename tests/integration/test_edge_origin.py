"""With the edge on, the capture function serves only what CloudFront forwarded."""

from types import ModuleType

import boto3
import pytest

from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke, load_function

SECRET_NAME = "optout-bridge/prod/edge-origin"
SECRET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"


@pytest.fixture
def capture_behind_edge(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name=SECRET_NAME, SecretString=SECRET)
    monkeypatch.setenv("EDGE_SECRET_NAME", SECRET_NAME)
    return load_function("capture_api")


def _opt_out(headers: dict[str, str]) -> dict:
    return http_event("POST", "/v1/opt-out", {"email": "pat@example.org"}, headers=headers)


def test_a_request_that_skipped_the_edge_is_refused_and_writes_nothing(
    aws: Aws, capture_behind_edge: ModuleType
) -> None:
    # Given a caller that found the origin's domain and posts to it directly
    answer = invoke(capture_behind_edge, _opt_out({}))
    # Then it is refused and nothing is stored
    assert answer["statusCode"] == 403
    assert json_body(answer)["error"]["code"] == "forbidden"
    assert aws.items() == []


def test_a_request_with_a_wrong_origin_secret_is_refused(
    aws: Aws, capture_behind_edge: ModuleType
) -> None:
    answer = invoke(capture_behind_edge, _opt_out({"x-origin-verify": SECRET[:-1] + "x"}))
    assert answer["statusCode"] == 403
    assert SECRET not in answer["body"]


def test_a_request_cloudfront_forwarded_is_served(
    aws: Aws, capture_behind_edge: ModuleType
) -> None:
    answer = invoke(capture_behind_edge, _opt_out({"x-origin-verify": SECRET}))
    assert answer["statusCode"] == 202
    assert len(aws.items()) == 1


def test_without_an_edge_secret_every_request_is_served(aws: Aws) -> None:
    answer = invoke(load_function("capture_api"), _opt_out({}))
    assert answer["statusCode"] == 202
