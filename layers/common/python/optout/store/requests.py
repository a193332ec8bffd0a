"""One partition in one query: a request (event, resolution, jobs) or an identity; the
writes of a request's resolution (its first, and a re-open's cited jobs)."""

from typing import Any

from botocore.exceptions import ClientError

from optout.store import keys, query
from optout.store.batch import put_if_absent
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


def cite_more(
    table: Table,
    resolution: Item,
    covered: dict[str, list[str]],
    not_asked: dict[str, list[Item]] | None = None,
    not_planned: dict[str, str] | None = None,
    not_configured: dict[str, str] | None = None,
    linked: set[str] | None = None,
) -> None:
    """Jobs a re-opened request cites now (the resolver's `_reopen`), appended to those its
    RESOLUTION cited first, which stay as history (status leaves out those that proved
    nothing), and the recent no_record answers it relied on not to ask a system again (the
    quiet period: `not_asked`, merged whole: the first resolution's map may not exist), and
    the systems it found nothing to plan for (`not_planned`: {system: when}, the person no
    longer opted out of their purposes; `not_configured`: those of them no longer in the
    systems config, so the record does not say the person opted back in), and the identities
    not named whose marks its citations came from (`linked`: those `cited_linked` lacks are
    appended, a job cited again included, so one missed there is repaired; review s29 cite
    R1). Nothing else ever rewrites a RESOLUTION."""
    first = resolution.get("covered") or {}
    lists = {s: [*first.get(s, []), *[j for j in ids if j not in first.get(s, [])]]
             for s, ids in sorted(covered.items())}  # fmt: skip
    lists = {s: ids for s, ids in lists.items() if ids != first.get(s)}
    heard = dict(resolution.get("not_asked") or {})
    for system, entries in sorted((not_asked or {}).items()):
        known = {e["job_id"] for e in heard.get(system, [])}
        heard[system] = [*heard.get(system, []), *[e for e in entries if e["job_id"] not in known]]
    unplanned = {**(not_planned or {}), **(resolution.get("not_planned") or {})}
    removed = {**(not_configured or {}), **(resolution.get("not_configured") or {})}
    reached = sorted(set(linked or ()) - {str(pk) for pk in resolution.get("cited_linked") or ()})
    if (not lists and not reached and heard == (resolution.get("not_asked") or {})
            and unplanned == (resolution.get("not_planned") or {})
            and removed == (resolution.get("not_configured") or {})):  # fmt: skip
        return
    whole = bool(lists) and "covered" not in resolution
    if not whole:  # one path per system: a concurrent re-open's others stay
        names = {f"#s{n}": system for n, system in enumerate(lists)}
        values: Item = {f":s{n}": ids for n, ids in enumerate(lists.values())}
        sets = [f"covered.#s{n} = :s{n}" for n in range(len(lists))]
    else:  # a first resolution that cited nothing stored no map: a path into it is refused
        names, values, sets = {}, {":covered": lists}, ["covered = :covered"]
    if heard != (resolution.get("not_asked") or {}):
        values[":quiet"] = heard
        sets.append("not_asked = :quiet")
    if unplanned != (resolution.get("not_planned") or {}):
        values[":unplanned"] = unplanned
        sets.append("not_planned = :unplanned")
    if removed != (resolution.get("not_configured") or {}):
        values[":removed"] = removed
        sets.append("not_configured = :removed")
    if reached:
        # Appended, not SET from what was read: two re-opens of one request at once each keep
        # theirs (review s29 cite R2). Readers take it as a set, so a repeat is harmless.
        values.update({":linked": reached, ":none": []})
        sets.append("cited_linked = list_append(if_not_exists(cited_linked, :none), :linked)")
    key = {"pk": {"S": str(resolution["pk"])}, "sk": {"S": keys.RESOLUTION_SK}}
    write: dict[str, Any] = {"TableName": table.name, "Key": key,
                             "UpdateExpression": "SET " + ", ".join(sets),
                             "ExpressionAttributeValues": serialize(values)}  # fmt: skip
    if names:  # DynamoDB refuses an empty ExpressionAttributeNames
        write["ExpressionAttributeNames"] = names
    if whole:  # another re-open may write the map first: then ours go by path into it
        write |= {"ConditionExpression": "attribute_not_exists(covered)",
                  "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}  # fmt: skip
    try:
        table.client.update_item(**write)
    except ClientError as error:
        if not whole or error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        found = error.response.get("Item")  # what the other re-open wrote (review s29 final F2)
        now = deserialize(found) if isinstance(found, dict) else {**resolution, "covered": {}}
        cite_more(table, now, covered, not_asked, not_planned, not_configured, linked)


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
