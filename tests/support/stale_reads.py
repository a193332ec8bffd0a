"""A DynamoDB client whose eventually consistent reads come from a replica that lags.

moto is strongly consistent: every read sees every write. DynamoDB's default reads (GetItem,
Query, BatchGetItem without `ConsistentRead`, and every GSI Query) may be served by a replica
that has not yet applied the latest writes, for about a second. `LaggingClient` hides the
items at `unseen` (and shows the older copies in `older`, when given) from such reads only:
a strongly consistent read sees the table as it is. Two reads of one caller may reach two
replicas, one current and one behind, which is what lets a test put a fresh item beside a
stale one, as DynamoDB may.
"""

from typing import Any

from optout.store.codec import serialize

Key = tuple[str, str]


class LaggingClient:
    def __init__(
        self, client: Any, unseen: set[Key], older: dict[Key, dict[str, Any]] | None = None
    ) -> None:
        self._client = client
        self._unseen = set(unseen)
        self._older = dict(older or {})
        self.stale_reads = 0  # reads answered from the lagging replica with a difference

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _lag(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        if "pk" not in raw or "sk" not in raw:  # projected without its key: not ours to hide
            return raw
        key = (raw["pk"]["S"], raw["sk"]["S"])
        if key in self._unseen:
            self.stale_reads += 1
            return None
        if key in self._older:
            self.stale_reads += 1
            return serialize(self._older[key])
        return raw

    def _lagged(self, raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for raw in raws if (item := self._lag(raw)) is not None]

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        answer = self._client.get_item(**kwargs)
        if kwargs.get("ConsistentRead") or "Item" not in answer:
            return answer
        item = self._lag(answer["Item"])
        return {k: v for k, v in answer.items() if k != "Item"} | ({"Item": item} if item else {})

    def query(self, **kwargs: Any) -> dict[str, Any]:
        answer = self._client.query(**kwargs)
        if kwargs.get("ConsistentRead") and "IndexName" not in kwargs:
            return answer
        return answer | {"Items": self._lagged(answer.get("Items", []))}

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        answer = self._client.batch_get_item(**kwargs)
        responses = dict(answer.get("Responses", {}))
        for name, request in kwargs["RequestItems"].items():
            if not request.get("ConsistentRead") and name in responses:
                responses[name] = self._lagged(responses[name])
        return answer | {"Responses": responses}
