"""Worker configuration, validated once per cold start from the environment."""

import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

SQS_MAX_VISIBILITY_SECONDS = 43_200  # 12 h: the most ChangeMessageVisibility accepts
SQS_MAX_DELAY_SECONDS = 900  # 15 min: the most SendMessage's DelaySeconds accepts


class WorkerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    table_name: str
    systems_config: str = "config/systems.json"
    # Production runs one worker per system and sets this; the local stack runs every system
    # in one process and leaves it empty, so the system always comes from the message.
    system_name: str | None = None
    max_receive_count: Annotated[int, Field(ge=1)] = 8  # = the queue's redrive maxReceiveCount
    retry_base_seconds: Annotated[float, Field(gt=0)] = 30
    retry_max_seconds: Annotated[float, Field(gt=0, le=SQS_MAX_VISIBILITY_SECONDS)] = 3600
    http_timeout_seconds: Annotated[float, Field(gt=0)] = 10
    # Tries of one vendor call before its failure fails the attempt (connectors/http.py).
    http_attempts: Annotated[int, Field(ge=1, le=5)] = 3
    # A status check of a submitted job holds it for this long (other checks wait); shorter
    # than the queue's visibility timeout, so a check redelivered after a crash can take it.
    lease_seconds: Annotated[int, Field(ge=1)] = 60
    local_secrets_file: str | None = None
    # Submitted (asynchronous) jobs: the first status check after this long, then doubling up
    # to the cap (a delayed SQS message each time, never a sleeping Lambda); a job still not
    # final after confirm_give_up_seconds fails ("vendor did not confirm within ...").
    confirm_delay_seconds: Annotated[float, Field(gt=0, le=SQS_MAX_DELAY_SECONDS)] = 60
    confirm_max_delay_seconds: Annotated[float, Field(gt=0, le=SQS_MAX_DELAY_SECONDS)] = 900
    confirm_give_up_seconds: Annotated[float, Field(gt=0)] = 7 * 24 * 3600

    @classmethod
    def from_env(cls) -> "WorkerSettings":
        env = os.environ
        values = {n: env[n.upper()] for n in cls.model_fields if env.get(n.upper(), "") != ""}
        return cls.model_validate(values)
