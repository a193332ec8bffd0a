"""One partition in one query: a request (event, resolution, jobs) or an identity; the
writes of a request's resolution (its first, and a re-open's cited jobs)."""

from typing import Any

from botocore.exceptions import ClientError

from optout.store import keys, query
from optout.store.batch import get_item, put_if_absent
from optout.store.codec import Item, deserialize, serialize
from optout.store.conditional import conditional
from optout.store.table import Table

# The RESOLUTION's `proof_rule`, what its citations mean (docs/decisions.md); a resolution
# keeps the meaning it was answered with. 2 (2026-11-30): a cited job must prove what it was
# cited for. 3 (2026-12-03): and only by the identities the request named or its citations
# came from (`cited_linked`, review s28 p1 F1); before it, a request reaching the job only
# through a link was proven by any identity the job carried. The resolver writes the latest.
STRICT_RULE = 2
CITED_RULE = 3
PROOF_RULE = CITED_RULE


def load_request(table: Table, request_id: str, *, consistent: bool = False) -> list[Item]:
    return load_partition(table, keys.request_pk(request_id), consistent=consistent)


def load_partition(table: Table, pk: str, *, consistent: bool = False) -> list[Item]:
    """Every item under one partition key (a request, or an identity with its links)."""
    return query.partition(table, pk, consistent=consistent)


# Two re-opens of one request at once (the sweep's and a retried redrive's, say) each read the
# RESOLUTION, then write what they add: a write is conditional on the attributes it rewrites
# being as read, and a refused one merges again from the item the refusal returns. Bounded:
# each refusal means another re-open wrote in between; past this, the redrive event is retried.
CITE_ATTEMPTS = 4
_MERGED = ("covered", "not_asked", "not_planned", "not_configured", "split_jobs")


def cite_more(
    table: Table,
    resolution: Item,
    covered: dict[str, list[str]],
    not_asked: dict[str, list[Item]] | None = None,
    not_planned: dict[str, str] | None = None,
    not_configured: dict[str, str] | None = None,
    linked: set[str] | None = None,
    split: dict[str, list[str]] | None = None,
    reopened: Item | None = None,
) -> None:
    """Jobs a re-opened request cites now (the resolver's `_reopen`), appended to those its
    RESOLUTION cited first, which stay as history (status leaves out those that proved
    nothing), and the recent no_record answers it relied on not to ask a system again (the
    quiet period: `not_asked`), and the systems it found nothing to plan for (`not_planned`:
    {system: when}, the person no longer opted out of their purposes; `not_configured`: those
    of them no longer in the systems config, so the record does not say the person opted back
    in), and the identities not named whose marks its citations came from (`linked`: those
    `cited_linked` lacks are appended, a job cited again included, so one missed there is
    repaired; review s29 cite R1), its further jobs (`split`, the RESOLUTION's `split_jobs`:
    one per further purpose set, resolver `_request_jobs`), and the re-open itself
    (`reopened`: {at, event_id, systems}, appended to `RESOLUTION.reopens` by a write that
    changes what settles a system: when the request was settled, review s31 counsel F1). Each
    is merged into what is stored, never replaces it: a concurrent re-open's additions stay
    (review s29 lead I3, I4). Nothing else ever rewrites a RESOLUTION."""
    at = (str(resolution["pk"]), keys.RESOLUTION_SK)
    key = {"pk": {"S": at[0]}, "sk": {"S": at[1]}}
    for attempt in range(1, CITE_ATTEMPTS + 1):
        write = _cite_write(resolution, covered, not_asked, not_planned, not_configured, linked,
                            split, reopened)  # fmt: skip
        if write is None:
            return
        try:
            table.client.update_item(TableName=table.name, Key=key, **write)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code != "ConditionalCheckFailedException" or attempt == CITE_ATTEMPTS:
                raise
            found = error.response.get("Item")  # the item as the refused write found it
        else:
            return
        # DynamoDB returns the item under ALL_OLD; without it, merging into the stale read
        # would drop what the other re-open wrote (review s29 lead I3): read it, consistent
        fresh = deserialize(found) if isinstance(found, dict) else get_item(table, at)
        if fresh is None:
            return  # no RESOLUTION any more (expired): nothing to add to
        resolution = fresh


def _cite_write(
    resolution: Item,
    covered: dict[str, list[str]],
    not_asked: dict[str, list[Item]] | None,
    not_planned: dict[str, str] | None,
    not_configured: dict[str, str] | None,
    linked: set[str] | None,
    split: dict[str, list[str]] | None = None,
    reopened: Item | None = None,
) -> dict[str, Any] | None:
    """The UpdateItem merging a re-open's additions into `resolution` as read, or None when
    it adds nothing. Each merged attribute is written whole (a path into a map the first
    resolution did not store is refused), on the condition that it is still as read."""
    first = resolution.get("covered") or {}
    lists = _appended(first, covered)
    split_first = resolution.get("split_jobs") or {}
    split_lists = _appended(split_first, split or {})
    heard = dict(resolution.get("not_asked") or {})
    for system, entries in sorted((not_asked or {}).items()):
        known = {e["job_id"] for e in heard.get(system, [])}
        if new_entries := [e for e in entries if e["job_id"] not in known]:
            heard[system] = [*heard.get(system, []), *new_entries]
    merged = {"covered": {**first, **lists}, "not_asked": heard,
              "not_planned": {**(not_planned or {}), **(resolution.get("not_planned") or {})},
              "not_configured": {**(not_configured or {}),
                                 **(resolution.get("not_configured") or {})},
              "split_jobs": {**split_first, **split_lists}}  # fmt: skip
    changed = [a for a in _MERGED if merged[a] != (resolution.get(a) or {})]
    reached = sorted(set(linked or ()) - {str(pk) for pk in resolution.get("cited_linked") or ()})
    if not changed and not reached:
        return None
    values: Item = {f":{a}": merged[a] for a in changed}
    sets = [f"{a} = :{a}" for a in changed]
    conditions = ["attribute_exists(pk)"]
    for a in changed:
        if a in resolution:
            values[f":was_{a}"] = resolution[a]
            conditions.append(f"{a} = :was_{a}")
        else:
            conditions.append(f"attribute_not_exists({a})")
    if reached or (changed and reopened):
        values[":none"] = []
    if reached:
        # Appended, not SET from what was read (review s29 cite R2). Readers take it as a set,
        # so a repeat is harmless.
        values[":linked"] = reached
        sets.append("cited_linked = list_append(if_not_exists(cited_linked, :none), :linked)")
    if changed and reopened:
        # In the same write, only when it changes what settles a system (a `cited_linked`
        # repair alone settles nothing): the status dates the request's completion by it
        values[":reopens"] = [reopened]
        sets.append("reopens = list_append(if_not_exists(reopens, :none), :reopens)")
    return {"UpdateExpression": "SET " + ", ".join(sets),
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": serialize(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}  # fmt: skip


def _appended(first: Item, added: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per system, the ids of `first` followed by those of `added` it lacks (only systems with
    one new)."""
    lists: dict[str, list[str]] = {}
    for system, ids in sorted(added.items()):
        if new := [j for j in ids if j not in first.get(system, [])]:
            lists[system] = [*first.get(system, []), *dict.fromkeys(new)]
    return lists


def put_resolution(table: Table, item: Item) -> bool:
    """A request's RESOLUTION, only if absent (a re-run keeps the first record), except that
    one of a run that carried on (not `denied`) replaces a `denied` one: two runs of the same
    event at once, the denial landing between their reads, let the one that saw it record
    "denied, no jobs" first while the other's jobs went out (review s22 diff C2). False when
    nothing was written."""
    if item.get("denied"):
        return put_if_absent(table, item)
    written = conditional(
        lambda: table.client.put_item(
            TableName=table.name, Item=serialize(item),
            ConditionExpression="attribute_not_exists(pk) OR denied = :denied",
            ExpressionAttributeValues=serialize({":denied": True}),
        )
    )  # fmt: skip
    return written is not None


def mark_rederived(
    table: Table, owner: str, marker: str, job_requests: set[str], systems: list[str],
    expires_at: int, kind: str = "rederived",
) -> set[str]:  # fmt: skip
    """The `REDERIVED#<marker>` item in `owner`'s partition naming jobs made under request
    ids of their own (`request_ids`; a backfill step's, one per purpose set), written before
    them. The ids are added to a set: a retry naming others keeps the first run's too.
    Returns that set, every run's ids (the step's watch reminder names them all).
    `kind` "split": a request's further jobs (resolver `_request_jobs`), which its
    RESOLUTION names; the sweep reads the marker, the proof views the RESOLUTION."""
    answer = table.client.update_item(
        TableName=table.name,
        Key=serialize({"pk": keys.request_pk(owner), "sk": keys.rederived_sk(marker)}),
        UpdateExpression="SET kind = :kind, request_id = :marker, systems = :systems, "
                         "expires_at = :exp ADD request_ids :ids",
        ExpressionAttributeValues=serialize({":kind": kind, ":marker": marker,
                                             ":systems": systems, ":exp": expires_at,
                                             ":ids": set(job_requests)}),
        ReturnValues="ALL_NEW",  # the whole small item: the set whether this run changed it or not
    )  # fmt: skip
    named = deserialize(answer.get("Attributes") or {}).get("request_ids")
    return {str(r) for r in named} if named else set(job_requests)


def rederived_markers(table: Table, owner: str) -> list[Item]:
    """The `REDERIVED#` markers in `owner`'s partition, one Query: what names the jobs made
    under request ids of their own beside its own (its further jobs' marker, `kind` "split",
    among them)."""
    return list(query.items(
        table, KeyConditionExpression="pk = :pk AND begins_with(sk, :marker)",
        ExpressionAttributeValues={":pk": {"S": keys.request_pk(owner)},
                                   ":marker": {"S": keys.REDERIVED_PREFIX}},
    ))  # fmt: skip


def marker_id(marker: Item) -> str:
    """The id a `REDERIVED#` marker is kept under (its sort key's tail): the flush's or a
    backfill step's jobs' reminder is written with it (`ops.reminders.remind_jobs`)."""
    return str(marker["sk"]).removeprefix(keys.REDERIVED_PREFIX)


def marked_requests(marker: Item) -> list[str]:
    """The request ids a `REDERIVED#` marker names: its `request_ids`, or (a marker naming one,
    as the flush's and, before 2026-12-03, a backfill step's) the id in its sort key."""
    named = marker.get("request_ids")
    if named:
        return sorted(str(r) for r in named)
    return [str(marker["sk"]).removeprefix(keys.REDERIVED_PREFIX)]


def note_under_way(table: Table, request_id: str, denial_sk: str, systems: list[str]) -> bool:
    """Add `systems` to the request's denial record (`systems_under_way`, a set): the systems
    whose jobs of this request were made, and may reach their vendor, although it was denied
    (docs/decisions.md, "A denial landing while the request is resolved"). Never creates a
    denial: False when there is none. Added to a set, so the deny route and the resolver can
    both write it, in any order, and a retry adds nothing."""
    if not systems:
        return False
    answer = conditional(
        lambda: table.client.update_item(
            TableName=table.name,
            Key=serialize({"pk": keys.request_pk(request_id), "sk": denial_sk}),
            UpdateExpression="ADD systems_under_way :systems",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=serialize({":systems": set(systems)}),
        )
    )
    return answer is not None
