"""AWS clients for the functions: botocore's, from one session whose loader knows only the
services the functions call.

Two costs of a cold start that are not the work itself (docs/performance.md, "Cold start"):
- importing boto3 (its session layer, resources and s3transfer) to create a client botocore
  creates alone; so a process that has not loaded boto3 gets a plain botocore session;
- botocore's loader listing every service directory it ships (~420, once for the service
  model and once for the endpoint rules) to check a service's name before loading its files.

The files loaded are botocore's own, from its own data directory, unchanged: only the list a
name is checked against is shorter (tests/unit/test_aws_clients.py compares the two loaders
and the clients they make).

A process that has loaded boto3 (the tests, the local stack, the bench, a host that set up
boto3's default session) gets boto3's default session instead, so the hooks, stubs and mocks
registered there see these clients' calls as before.

Every client gets `BUDGET` (below): botocore's default ("legacy") retries spend longer than a
function may run (docs/reliability.md, "AWS calls within a function's time").
"""

import os
import sys
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.config import Config
from botocore.loaders import Loader
from botocore.session import Session, get_session

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# A call's whole time, retries included, fits the tightest function that makes it. botocore's
# legacy mode tries DynamoDB 10 times with 25.5 s of sleeps: longer than the capture's 10 s
# timeout, so a throttled table gave the consumer API Gateway's bare 5xx instead of our 503.
# - "standard" mode, 3 attempts: sleeps of at most 1 s then 2 s (rand x 2^n), a shared retry
#   quota that stops retrying when most calls fail (no retry storm against a throttled table).
# - connect_timeout 1 s: a connection (with TLS) to a regional endpoint takes milliseconds;
#   a second is a dead path, better tried again on another connection.
# - read_timeout 2 s: single-item DynamoDB calls, SendMessageBatch and GetSecretValue answer
#   in tens of milliseconds; 2 s is only hit by a hung connection.
# Worst case of one call, all three attempts timed out reading: 3 x 2 s + 1 s + 2 s = 9 s,
# inside the capture's and the admin API's 10 s. A throttle is answered in milliseconds, so a
# throttled call gives up after about 3 s: the capture answers 503 with Retry-After, and the
# worker (30 s, vendor calls stop 3 s before) mostly still writes its receipts. The resolver
# (60 s), the watch (180 s) and the sweeper (300 s) get the same: their event source retries
# the whole invocation, which is better than one call eating its budget.
BUDGET = Config(
    retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=1, read_timeout=2
)

# Every service a function creates a client for (a name not here raises UnknownServiceError).
SERVICES: tuple[str, ...] = ("dynamodb", "secretsmanager", "sqs")


class FunctionsLoader(Loader):
    """botocore's Loader, its search paths and files unchanged, listing only SERVICES."""

    def list_available_services(self, type_name: str) -> list[str]:
        # botocore's own rule (a service directory with `type_name` in one of its API
        # versions), applied to our names instead of to every directory on the path.
        found: set[str] = set()
        for path in self.search_paths:
            for name in SERVICES:
                directory = os.path.join(path, name)
                if name in found or not os.path.isdir(directory):
                    continue
                for version in os.listdir(directory):
                    if self.file_loader.exists(os.path.join(directory, version, type_name)):
                        found.add(name)
                        break
        return sorted(found)


@cache  # one per process, as boto3's default session
def session() -> Session:
    made = get_session()
    stock = made.get_component("data_loader")  # AWS_DATA_PATH and botocore's defaults
    made.register_component(
        "data_loader",
        # A copy: botocore's Loader keeps the list it is given, and extends it in place
        FunctionsLoader(
            extra_search_paths=list(stock.search_paths), include_default_search_paths=False
        ),
    )
    return made


@overload
def client(service: Literal["dynamodb"], config: Config | None = None) -> "DynamoDBClient": ...
@overload
def client(service: Literal["sqs"], config: Config | None = None) -> "SQSClient": ...
@overload
def client(
    service: Literal["secretsmanager"], config: Config | None = None
) -> "SecretsManagerClient": ...
def client(service: str, config: Config | None = None) -> Any:
    """A client with `BUDGET`, and `config`'s own settings over it."""
    merged = BUDGET.merge(config) if config is not None else BUDGET
    if "boto3" in sys.modules:
        import boto3  # noqa: PLC0415 - already loaded: its default session's hooks apply

        return boto3.client(service, config=merged)  # type: ignore[call-overload]
    return session().create_client(service, config=merged)
