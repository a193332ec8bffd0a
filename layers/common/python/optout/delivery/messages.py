"""The SQS job message (a reference only: no identifiers travel through the queue).

`confirm: n` marks the n-th delayed status check of a job the vendor accepted asynchronously
(`submitted`); only the newest check of a job acts, older duplicates are acknowledged.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class JobMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    job_id: Annotated[str, Field(min_length=3, max_length=200)]
    request_id: Annotated[str, Field(min_length=1, max_length=100)]
    system: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    confirm: Annotated[int | None, Field(ge=1)] = None

    @model_validator(mode="after")
    def _consistent(self) -> "JobMessage":
        if self.job_id != f"{self.request_id}:{self.system}":
            raise ValueError("job_id must be <request_id>:<system>")
        return self


def queue_url_from_arn(arn: str) -> str:
    """arn:aws:sqs:<region>:<account>:<name> -> the queue URL SQS answers to."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError("not an SQS queue ARN")
    _, partition, _, region, account, name = parts
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"
