"""What the resolver sends and records once per stream batch, not once per event.

Queue messages are grouped per system queue so SendMessageBatch carries up to ten, and state
items are written together after the sends. Each derived cluster's basis (the node versions
its state was computed from) is kept, so the flush can check afterwards that nothing changed
underneath (resolver/service.py). The events' RESOLUTION items wait here too: the resolver
writes them last, once the states are written and checked, so an event whose batch Lambda
gives up on stays unresolved and the sweep resolves it again.
"""

from dataclasses import dataclass, field

from optout.jobs_queue import JobQueue
from optout.store.batch import batch_put
from optout.store.codec import Item
from optout.store.table import Table

Basis = dict[str, int]  # member pk -> node version the derivation read


@dataclass
class Outbox:
    messages: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # queue key -> bodies
    states: dict[str, Item] = field(default_factory=dict)  # identity pk -> pending state item
    bases: dict[tuple[str, ...], Basis] = field(default_factory=dict)  # cluster -> basis
    resolutions: list[Item] = field(default_factory=list)  # written after the flush's check
    # The batch's requests' jurisdictions: what a job made for the batch as a whole carries
    # (resolver/service.py, `_rederived_jobs`).
    jurisdictions: set[str] = field(default_factory=set)
    # The latest of the batch's requests' `received_at`: when such a job's choice was made.
    chosen_at: str = ""
    # Per identity pk, the batch's requests whose derivation derived its cluster: 0, one of the
    # identities the request named or linked is in it; 1, reached only by a carry. A job the
    # flush makes for a cluster is that request's (`_rederived_jobs`), never another person's.
    derived_by: dict[str, dict[str, int]] = field(default_factory=dict)
    # Per request of the batch, the systems its own jobs were made (or sent again) for: the
    # flush reads each one's denial before it sends, so a denial that landed while the
    # request was resolved names them (resolver/service.py, `_denied_meanwhile`).
    under_way: dict[str, set[str]] = field(default_factory=dict)

    def note_derived(
        self, request_id: str, clusters: list[tuple[str, ...]], named: set[str]
    ) -> None:
        for cluster in clusters:
            tier = 0 if named.intersection(cluster) else 1
            for pk in cluster:
                by = self.derived_by.setdefault(pk, {})
                by[request_id] = min(by.get(request_id, tier), tier)

    def note_choice(self, received_at: str) -> None:
        self.chosen_at = max(self.chosen_at, received_at)  # one format (iso): sorts as time

    def add(self, queue_key: str, message: dict[str, str]) -> None:
        self.messages.setdefault(queue_key, []).append(message)

    def clear(self) -> None:
        self.messages.clear()
        self.states.clear()
        self.bases.clear()
        self.resolutions.clear()
        self.jurisdictions.clear()
        self.derived_by.clear()
        self.under_way.clear()
        self.chosen_at = ""

    def flush(self, queue: JobQueue, table: Table) -> None:
        for queue_key, messages in sorted(self.messages.items()):
            queue.send(queue_key, messages)
        batch_put(table, list(self.states.values()))
        self.messages.clear()
        self.states.clear()
