"""`GET /_local/queues` and `POST /_local/queues/{name}/redrive`: the stack's SQS queues.

What an operator reads from CloudWatch and the SQS console on AWS: how many messages each
queue holds (visible, in flight, delayed) for every jobs queue, DLQ and the resolver's
on-failure queue, and a DLQ redrive (the console's "Start DLQ redrive": each message back to
its jobs queue). Local only; messages carry job references, never identifiers.
"""

from typing import Any

from local.http_types import Incoming, Outgoing, error_answer, json_answer

PATH = "/_local/queues"
COUNTS = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}
DLQ_SUFFIX = "-dlq"
JOBS_SUFFIX = "-jobs"


class QueuesView:
    def __init__(self, sqs: Any, prefix: str) -> None:
        self._sqs = sqs
        self._prefix = prefix + "-"

    def serve(self, request: Incoming) -> Outgoing:
        if request.method == "GET" and request.path == PATH:
            return json_answer(200, self.depths())
        name = request.path.removeprefix(PATH + "/").removesuffix("/redrive")
        if request.method == "POST" and request.path == f"{PATH}/{name}/redrive":
            return self._redrive(name)
        return error_answer(404, "not_found", "GET /_local/queues or POST .../{dlq}/redrive")

    def depths(self) -> dict[str, dict[str, int]]:
        """Queue name (without the stack prefix) -> message counts."""
        found: dict[str, dict[str, int]] = {}
        for name, url in sorted(self._queues().items()):
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=list(COUNTS.values())
            )["Attributes"]
            found[name] = {key: int(attributes.get(attr, 0)) for key, attr in COUNTS.items()}
        return found

    def _redrive(self, name: str) -> Outgoing:
        queues = self._queues()
        target = name.removesuffix(DLQ_SUFFIX) + JOBS_SUFFIX
        if not name.endswith(DLQ_SUFFIX) or name not in queues or target not in queues:
            return error_answer(404, "not_found", "no dead-letter queue with this name")
        moved = 0
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=queues[name], MaxNumberOfMessages=10, VisibilityTimeout=30
            ).get("Messages", [])
            if not messages:
                return json_answer(200, {"queue": name, "moved": moved, "to": target})
            for message in messages:
                self._sqs.send_message(QueueUrl=queues[target], MessageBody=message["Body"])
                self._sqs.delete_message(
                    QueueUrl=queues[name], ReceiptHandle=message["ReceiptHandle"]
                )
                moved += 1

    def _queues(self) -> dict[str, str]:
        urls = self._sqs.list_queues(QueueNamePrefix=self._prefix).get("QueueUrls", [])
        return {url.rsplit("/", 1)[-1].removeprefix(self._prefix): url for url in urls}
