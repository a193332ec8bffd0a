"""The SQS job message's pydantic model: the one description of a valid message.

`optout.delivery.messages.read_job_message` reads the plain form our resolver and worker write
without it, and comes here for any other body (which this model accepts or refuses).
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from optout.delivery.messages import JobMessage
from optout.systems import NAME_PATTERN


class JobMessageModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    job_id: Annotated[str, Field(min_length=3, max_length=200)]
    request_id: Annotated[str, Field(min_length=1, max_length=100)]
    system: Annotated[str, Field(pattern=f"^{NAME_PATTERN}$")]
    confirm: Annotated[int | None, Field(ge=1)] = None

    @model_validator(mode="after")
    def _consistent(self) -> "JobMessageModel":
        if self.job_id != f"{self.request_id}:{self.system}":
            raise ValueError("job_id must be <request_id>:<system>")
        return self

    def message(self) -> JobMessage:
        return JobMessage(self.job_id, self.request_id, self.system, self.confirm)
