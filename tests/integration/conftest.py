"""Fixtures shared by the integration tests that read the table through the domain code."""

from collections.abc import Iterator

import pytest

from local.moto_guard import guarded
from optout.store.table import Table
from tests.conftest import Aws


@pytest.fixture
def table(aws: Aws) -> Iterator[Table]:
    """The test account's table, with moto's Query scoped to the partition asked for (as
    DynamoDB reads it) instead of sorting the whole table: local/moto_guard.py."""
    with guarded():
        yield Table(aws.dynamodb, aws.table_name)
