"""The SQS job message (a reference only: no identifiers travel through the queue).

`confirm: n` marks the n-th delayed status check of a job the vendor accepted asynchronously
(`submitted`); only the newest check of a job acts, older duplicates are acknowledged.

Our resolver and worker write it; `read_job_message` reads that plain form directly and sends
any other body to the pydantic model in `message_model.py` (imported only then), which accepts
or refuses it: a worker's normal batch imports no pydantic (docs/decisions.md, "The systems
configuration without pydantic"; tests/unit/test_job_message.py holds the two together).
"""

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from optout.plain_text import pydantic_str, unique_keys
from optout.systems import NAME_PATTERN


class MalformedMessage(ValueError):
    """The body is not a job message (the message names nothing from the body)."""


@dataclass(frozen=True)
class JobMessage:
    job_id: str
    request_id: str
    system: str
    confirm: int | None = None

    def __post_init__(self) -> None:
        # The model's own rule; field checks are the reader's and the model's.
        if self.job_id != f"{self.request_id}:{self.system}":
            raise ValueError("job_id must be <request_id>:<system>")

    def to_json(self) -> str:
        """The body as the model dumped it (`model_dump_json(exclude_none=True)`)."""
        body: dict[str, Any] = {
            "job_id": self.job_id, "request_id": self.request_id, "system": self.system
        }  # fmt: skip
        if self.confirm is not None:
            body["confirm"] = self.confirm
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def read_job_message(body: str) -> JobMessage:
    """The message in `body`, or MalformedMessage."""
    plain = _plain(body)
    if plain is not None:
        return plain
    from pydantic import ValidationError  # noqa: PLC0415 - off the plain path only

    from optout.delivery.message_model import JobMessageModel  # noqa: PLC0415

    try:
        return JobMessageModel.model_validate_json(body).message()
    except ValidationError:
        raise MalformedMessage("malformed job message") from None


# The plain reader returns what the model makes of `body`, or None (then the model decides):
# exactly the model's fields, JSON's own types, texts pydantic takes as they are, no key twice.
_KEYS: Final = frozenset({"job_id", "request_id", "system", "confirm"})
_SYSTEM: Final = re.compile(NAME_PATTERN)
_MAX_CONFIRM: Final = 1_000_000  # far beyond any status check; a larger one is the model's


def _plain(body: str) -> JobMessage | None:
    try:
        data = json.loads(body, object_pairs_hook=unique_keys)
    except (ValueError, RecursionError):  # DuplicateKey too: a key twice is the model's to judge
        return None
    if type(data) is not dict or not _KEYS - {"confirm"} <= data.keys() <= _KEYS:
        return None
    job_id, request_id, system = data["job_id"], data["request_id"], data["system"]
    confirm = data.get("confirm")
    if not (_text(job_id, 3, 200) and _text(request_id, 1, 100) and _text(system, 1, 40)):
        return None
    if not _SYSTEM.fullmatch(system) or job_id != f"{request_id}:{system}":
        return None
    if confirm is not None and not (type(confirm) is int and 1 <= confirm <= _MAX_CONFIRM):
        return None
    return JobMessage(job_id, request_id, system, confirm)


def _text(value: Any, low: int, high: int) -> bool:
    return pydantic_str(value) and low <= len(value) <= high


def queue_url_from_arn(arn: str) -> str:
    """arn:aws:sqs:<region>:<account>:<name> -> the queue URL SQS answers to."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError("not an SQS queue ARN")
    _, partition, _, region, account, name = parts
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"
