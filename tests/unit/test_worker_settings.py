"""The worker's settings (optout.delivery.settings): a plain dataclass read from the environment
as the pydantic model it replaced read it (the model is kept here as the reference); a bad
value stops the function naming the variable, never its value."""

import dataclasses
import os
from typing import Annotated, Any
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from optout.delivery.settings import (
    SQS_MAX_DELAY_SECONDS,
    SQS_MAX_VISIBILITY_SECONDS,
    WorkerSettings,
)


class Reference(BaseModel):
    """WorkerSettings as it was (a pydantic model), field for field."""

    model_config = ConfigDict(frozen=True)

    table_name: str
    systems_config: str = "config/systems.json"
    system_name: str | None = None
    max_receive_count: Annotated[int, Field(ge=1)] = 8
    batch_window_seconds: Annotated[float, Field(ge=0, le=300)] = 300
    retry_base_seconds: Annotated[float, Field(gt=0)] = 30
    retry_max_seconds: Annotated[float, Field(gt=0, le=SQS_MAX_VISIBILITY_SECONDS)] = 3600
    http_timeout_seconds: Annotated[float, Field(gt=0)] = 10
    http_attempts: Annotated[int, Field(ge=1, le=5)] = 3
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] = 1
    lease_seconds: Annotated[int, Field(ge=1)] = 60
    local_secrets_file: str | None = None
    confirm_delay_seconds: Annotated[float, Field(gt=0, le=SQS_MAX_DELAY_SECONDS)] = 60
    first_confirm_scale: Annotated[float, Field(gt=0, le=1)] = 1
    confirm_max_delay_seconds: Annotated[float, Field(gt=0, le=SQS_MAX_DELAY_SECONDS)] = 900
    confirm_give_up_seconds: Annotated[float, Field(gt=0)] = 7 * 24 * 3600


NAMES = [f.name.upper() for f in dataclasses.fields(WorkerSettings)]
TEXTS = st.one_of(
    st.sampled_from(
        ["0", "1", "5", "6", "8", "30", "2.5", "0.5", "-1", "900", "900.0", "901", "43200",
         "43200.5", "1e3", "1_000", " 7 ", "inf", "nan", "-0", "+3", "3.", ".5", "0x10", "",
         "true", "1" * 30, "1." + "5" * 20, "\uff15", "config/other.json"]
    ),
    st.text(st.sampled_from("0123456789.-+e_ x"), min_size=1, max_size=8),
)  # fmt: skip


def _reference_reads(env: dict[str, str]) -> dict[str, Any] | str:
    values = {n.lower(): v for n, v in env.items() if v != ""}
    try:
        return Reference.model_validate(values).model_dump()
    except ValueError:  # pydantic's ValidationError
        return "refused"


def _worker_reads(env: dict[str, str]) -> dict[str, Any] | str:
    with mock.patch.dict(os.environ, env, clear=True):
        try:
            return dataclasses.asdict(WorkerSettings.from_env())
        except ValueError:
            return "refused"


@settings(max_examples=600, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES[1:]), TEXTS, max_size=4))
@example({"RETRY_MAX_SECONDS": "43200.0"})
@example({"LEASE_SECONDS": "1", "HTTP_ATTEMPTS": "1", "MAX_RECEIVE_COUNT": "1"})
@example({"CONFIRM_DELAY_SECONDS": "900", "CONFIRM_MAX_DELAY_SECONDS": "900", "HTTP_ATTEMPTS": "5"})
@example({"CONFIRM_GIVE_UP_SECONDS": "inf"})
@example({"HTTP_ATTEMPTS": "5.0"})
@example({"RETRY_BASE_SECONDS": "1" * 30})
def test_any_environment_reads_as_the_model_read_it(env: dict[str, str]) -> None:
    env = {"TABLE_NAME": "optout-table", **env}
    reference, worker = _reference_reads(env), _worker_reads(env)
    assert worker == reference
    if isinstance(worker, dict) and isinstance(reference, dict):  # 30 and 30.0 are not alike
        assert {k: type(v) for k, v in worker.items()} == {k: type(v) for k, v in reference.items()}


def test_unset_and_empty_variables_take_the_defaults() -> None:
    with mock.patch.dict(os.environ, {"TABLE_NAME": "t", "RETRY_BASE_SECONDS": ""}, clear=True):
        assert WorkerSettings.from_env() == WorkerSettings(table_name="t")


@pytest.mark.parametrize(
    ("name", "raw"),
    [("HTTP_ATTEMPTS", "6"), ("RETRY_MAX_SECONDS", "43201"), ("CONFIRM_DELAY_SECONDS", "-3"),
     ("MAX_RECEIVE_COUNT", "eight"), ("LEASE_SECONDS", "1.5"), ("HTTP_TIMEOUT_SECONDS", "nan")],
)  # fmt: skip
def test_a_bad_value_stops_the_function_naming_the_variable(name: str, raw: str) -> None:
    environ = mock.patch.dict(os.environ, {"TABLE_NAME": "t", name: raw}, clear=True)
    with environ, pytest.raises(ValueError, match=name) as refused:
        WorkerSettings.from_env()
    assert raw not in str(refused.value).replace(name, "")


def test_a_missing_table_name_stops_the_function() -> None:
    with mock.patch.dict(os.environ, {}, clear=True), pytest.raises(ValueError, match="TABLE"):
        WorkerSettings.from_env()


@pytest.mark.parametrize(
    "values",
    [{"http_attempts": True}, {"retry_base_seconds": "30"}, {"table_name": None},
     {"lease_seconds": 0}, {"retry_base_seconds": float("nan")}],
)  # fmt: skip
def test_settings_built_in_code_are_checked_too(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        WorkerSettings(**{"table_name": "t", **values})  # type: ignore[arg-type]
