"""A job too big for one DynamoDB item is sent as parts (docs/decisions.md, "A job item is
split by size").

DynamoDB refuses an item over 400 KB, and a job item grows after the resolver writes it: the
worker's claim adds a few fields, and its receipt (`delivery.receipts.receipt_of`) may name,
in `identities_unformed` and `identities_not_sent`, every identity of the job by its keyed
`pk`. `job_bytes` counts the item as written plus that worst receipt; a job over
`JOB_ITEM_BOUND` (300,000 bytes: 100 KB under the limit for the claim's fields, the vendor's
references and notes, and the estimate's own error) is split. Its identities go to
`k` parts by a hash of their `pk` (the smallest `k` of `PART_COUNTS` whose every part fits),
so the same identities make the same parts on every run of the event, whatever order they
were read in. A job under the bound (every job of a person's own cluster) is made as before.
"""

import hashlib
from collections.abc import Callable
from typing import Any

from optout.resolver.fanout import JobPlan
from optout.store import keys

JOB_ITEM_BOUND = 300_000
PART_COUNTS = (2, 4, 8, 16)  # 16 parts of 300 KB: far past what `MaxClusterSize` 99 allows
PARTS = tuple((j, k) for k in PART_COUNTS for j in range(k))  # every (part, of) an id may name
# What a receipt adds besides its unsent lists: status, note (200), references (512, or one
# per call for a submitted job), the identifier types, the worker's claim and times.
RECEIPT_FIXED = 4_096


def plain_size(value: Any) -> int:
    """DynamoDB's documented size of a plain value as `codec.serialize` stores it (as
    bench.counting.item_size counts the serialized form): strings by their UTF-8 bytes,
    numbers about one byte per two digits, lists and maps 3 bytes plus 1 per element."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float):
        return len(str(value).lstrip("-").replace(".", "")) // 2 + 2
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + 1 + plain_size(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return 3 + sum(1 + plain_size(v) for v in value)
    return len(bytes(value))


def job_bytes(item: dict[str, Any]) -> int:
    """The job item's size once its worker wrote the largest receipt it can: the item as
    written, and two keyed `pk`s per identifier (both unsent lists naming it)."""
    written = sum(len(name.encode()) + plain_size(v) for name, v in item.items())
    unsent = sum(
        2 * (1 + len(keys.identity_pk(str(i["type"]), str(i["key"]))))
        for i in item.get("identifiers", ())
    )
    return written + unsent + RECEIPT_FIXED


def part_of(pk: str, count: int) -> int:
    """Which of `count` parts an identity goes to: the same for every run and every order."""
    return int.from_bytes(hashlib.blake2b(pk.encode(), digest_size=8).digest(), "big") % count


def split_plan(
    plan: JobPlan, size: Callable[[JobPlan], int], bound: int | None = None
) -> dict[tuple[int, int], JobPlan]:
    """`plan` as parts ({(part, of): plan}, parts with no identity left out) when its job
    (`size`: `job_bytes` of the item it would write) is over `bound`; {} when it fits. Each
    part keeps the plan's purposes, citations and quiet jobs (the request's record reads them
    together: `fanout.merged`). Past the last `PART_COUNTS` (not reachable at `MaxClusterSize`
    99) the largest split is taken: a part still over the bound fails as a whole job did.
    `bound`: `JOB_ITEM_BOUND` unless given (read at each call)."""
    bound = JOB_ITEM_BOUND if bound is None else bound
    if not plan.needs or size(plan) <= bound:
        return {}
    parts: dict[tuple[int, int], JobPlan] = {}
    for count in PART_COUNTS:
        parts = {}
        for pk, need in plan.needs.items():
            j = part_of(pk, count)
            part = parts.get((j, count))
            if part is None:
                part = parts[(j, count)] = plan.copy({})
            part.needs[pk] = need
        if all(size(part) <= bound for part in parts.values()):
            break
    # One identity over the bound alone (not reachable: an identifier is at most 254
    # characters) gains nothing from a part: made whole, as before.
    return dict(sorted(parts.items())) if len(parts) > 1 else {}
