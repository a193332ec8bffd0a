"""Identity-graph edges: verified links (both ways) and asserted edges (one way)."""

from typing import Any

from optout.store import keys


def link_items(
    a_pk: str, b_pk: str, request_id: str, at: str, expires_at: int | None = None
) -> list[dict[str, Any]]:
    return [
        {"pk": a_pk, "sk": keys.edge_sk(keys.LINK_PREFIX, b_pk), "kind": "link",
         "request_id": request_id, "linked_at": at, "expires_at": expires_at},
        {"pk": b_pk, "sk": keys.edge_sk(keys.LINK_PREFIX, a_pk), "kind": "link",
         "request_id": request_id, "linked_at": at, "expires_at": expires_at},
    ]  # fmt: skip


def assertion_items(
    asserter_pk: str, asserted_pk: str, request_id: str, at: str, expires_at: int
) -> list[dict[str, Any]]:
    """The edge in both partitions: the asserter's finds whom to tell, the asserted one's
    carries what it is told (`carried`, set by the resolver)."""
    return [
        {"pk": asserter_pk, "sk": keys.edge_sk(keys.ASSERTS_PREFIX, asserted_pk),
         "kind": "asserts", "request_id": request_id, "asserted_at": at, "expires_at": expires_at},
        {"pk": asserted_pk, "sk": keys.edge_sk(keys.ASSERTED_PREFIX, asserter_pk),
         "kind": "asserted", "request_id": request_id, "asserted_at": at, "carried": [],
         "expires_at": expires_at},
    ]  # fmt: skip
