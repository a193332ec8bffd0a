"""Sends job references to each system's SQS queue, ten per SendMessageBatch call."""

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
else:
    SQSClient = Any

BATCH_LIMIT = 10


def job_message(request_id: str, system: str) -> dict[str, str]:
    """A job's message: a reference only, no identifier (delivery/messages.py reads it)."""
    return {"job_id": f"{request_id}:{system}", "request_id": request_id, "system": system}


class JobQueue:
    def __init__(self, client: SQSClient, url_template: str) -> None:
        """`url_template` holds `{queue_key}`, e.g. https://sqs.../123/stack-{queue_key}-jobs."""
        self._client = client
        self._template = url_template

    def url_for(self, queue_key: str) -> str:
        return self._template.replace("{queue_key}", queue_key)

    def send(self, queue_key: str, messages: list[dict[str, str]]) -> None:
        url = self.url_for(queue_key)
        for start in range(0, len(messages), BATCH_LIMIT):
            chunk = messages[start : start + BATCH_LIMIT]
            answer = self._client.send_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(n), "MessageBody": json.dumps(m, sort_keys=True)}
                    for n, m in enumerate(chunk)
                ],
            )
            if answer.get("Failed"):
                codes = sorted({f["Code"] for f in answer["Failed"]})
                raise RuntimeError(f"SendMessageBatch failed for {len(answer['Failed'])}: {codes}")

    def waiting(self, queue_key: str) -> int:
        """Messages visible on a system's queue (approximate): what may still hold the
        message of a job the watch names. Delayed ones are not counted: SQS delays at most
        15 minutes, and such a job is untouched a day past its `retry_at`, so a delayed
        message of its own would be visible or taken by now; the delayed ones are other
        jobs' status checks (the worker's scheduler), which are no backlog. In flight not
        counted: being worked on, or hidden out a retry's wait. One GetQueueAttributes,
        only for the watch's re-send of old pending jobs (resolver/service.py, `_resend`)."""
        answer = self._client.get_queue_attributes(
            QueueUrl=self.url_for(queue_key), AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(answer.get("Attributes", {}).get("ApproximateNumberOfMessages", "0"))
