"""Audit export (CCPA §7101): every event, link, state, job and receipt of one identity, or of
the requests received in a date range, as flat records (the CLI writes JSONL or CSV).

No identifier values leave here except the one an operator asked for (it is echoed once, in
the identity record): other identifiers appear as their type and keyed hash, IP addresses are
left out. Large answers come in pages: each answer holds a `cursor` to ask for the next one.

For one identity, its requests are found without a scan: the references the deadline watch
writes under every identity a request names (`XREF#`, and `REQREF#` until moved), the
requests its own choices and links name, and the identity's own partition. The first page
lists them all (for the count and the delivery records); a later page reads only the next
references after its cursor's position, never the whole partition again (review s19 SC2).
The cursor is a position in the identity's own list and names no request to read: a later
page finds the requests no reference lists in the identity's graph again (one small Query),
so a forged cursor can only move within this identity's requests, and its length does not
grow with them (review s19 diff B1, B2).
"""

import base64
import json
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any

from optout import identifiers as ids
from optout.api_models import RequestStatusOut
from optout.deadlines import answered_late, latest_date
from optout.errors import InvalidInput, NotFound
from optout.ops import keys as ops_keys
from optout.ops.contribution import (
    contribution_of,
    deadline_calendar,
    imported_answer,
    ledger_day,
)
from optout.ops.export_seal import Seal, plain, seal_key
from optout.ops.watch import enrolled_through
from optout.resolver.policy import OwnState
from optout.retire import retirement_view
from optout.status import (
    aggregate,
    failures_for,
    job_retirements,
    later_views,
    not_asked,
    not_taken,
    own_identities,
    proofs,
    receipt_for,
    retired_systems,
    skipped_systems,
    stored_calendar,
)
from optout.store import holds, keys
from optout.store.batch import batch_get
from optout.store.codec import Item, deserialize
from optout.store.delivery import (
    Settled,
    job_attribute,
    marks_of,
    named_job_items,
    named_jobs,
    settled,
)
from optout.store.identity import graph_items
from optout.store.proof import jobs_outcome, load_with_proof, marked_jobs
from optout.store.query import items as query_items
from optout.store.retired import last_retired_at, retirements
from optout.store.table import Table
from optout.sweep import SweepSettings
from optout.timestamps import iso

PAGE_REQUESTS = 25
# A range page also ends after this many day-shard Queries, or when the call's time runs low:
# a quiet range would otherwise Query every empty shard (16 a day) in one call and pass the
# admin function's 10 s (and the HTTP API's fixed 30 s) before it could answer with a cursor.
PAGE_QUERIES = 200
PAGE_TIME_MARGIN_SECONDS = 4.0  # left for the page's last request records and the answer
MAX_RANGE_DAYS = 800  # the records kept (24 months and more) fit in one range
EVENT_FIELDS = ("event_type", "source", "received_at", "deadline", "opt_out", "gpc",
                "confirm_opt_in", "operation")  # fmt: skip
JOB_FIELDS = ("status", "attempts", "purposes", "created_at", "updated_at", "submitted_at",
              "completed_at", "replays", "replayed_at", "replayed_by")  # fmt: skip
# An origin record's fields (`Exporter._origins`): how another request came and what it asked
ORIGIN_FIELDS = ("event_type", "source", "received_at", "opt_out", "gpc")
# Whose own choices reach this identity's state: its verified links, and the identities that
# assert it (their opt-outs are carried in) unless withdrawn; never those it asserts (review
# s31 last F1: a held account's export read the shared browser's other person's choices)
LINKED_PREFIXES = (keys.LINK_PREFIX, keys.ASSERTED_PREFIX)
NOT_EVIDENCE = ("source_ip",)  # personal data the export leaves out
EVERY_HOLD = 1_000_000  # the HOLD partition is read whole anyway (only links past the cap)
Listed = tuple[str, str, bool]  # an identity's request: (when, request id, from a reference)


# A request the ByDay index showed after the watch's cursor had passed its arrival is
# referenced only once the sweep's first check of it leaves the watch a reminder (its first
# checkpoint and window) and the watch's next run (every 5 minutes) folds it: the list is
# complete only this far behind the cursor (review s16 claims2 F4).
LATE_INDEX_MARGIN = min(SweepSettings().checkpoints) + SweepSettings().window + timedelta(minutes=5)


def complete_through(table: Table) -> str | None:
    """Every request received up to this time that names an identity is in its export."""
    through = enrolled_through(table)
    if through is None:
        return None
    return iso(datetime.fromisoformat(through) - LATE_INDEX_MARGIN)


class ExportService:
    def __init__(
        self,
        table: Table,
        hash_key: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._table = table
        self._secret = hash_key
        self._seal_key = seal_key(hash_key)
        self._clock = clock  # "today", for whether an open request is already late

    # -- the seal ------------------------------------------------------------------------------

    def _sealed(
        self,
        scope: dict[str, str],
        cursor: str | None,
        page_of: Callable[[str | None], dict[str, Any]],
    ) -> dict[str, Any]:
        """`page_of`'s page, its records folded into the export's chain (export_seal): the
        chain goes on in the next cursor, or, on the last page, ends in its `seal`. The
        first page's time is the export's."""
        name = json.dumps(scope, sort_keys=True)
        # The tag binds the chain to the position it was made for, too: a seal moved onto a
        # later position would skip pages and still be sealed (review s26 diff B F1)
        if cursor:
            position = _decode(cursor)
            token = position.pop("seal", None)
            seal = Seal.read(self._seal_key, name + json.dumps(position, sort_keys=True), token)
            cursor = _encode(position)
        else:
            seal = Seal(iso(self._clock()))
        page = page_of(cursor)
        page["records"] = [plain(record) for record in page["records"]]
        seal.fold(page["records"])
        if page["cursor"]:
            following = _decode(page["cursor"])
            bound = name + json.dumps(following, sort_keys=True)
            page["cursor"] = _encode(following | {"seal": seal.token(self._seal_key, bound)})
        else:
            page["seal"] = seal.view(scope)
        return page

    # -- one identity ------------------------------------------------------------------------

    def identity(self, id_type: ids.IdType, value: str, cursor: str | None) -> dict[str, Any]:
        """One page of the identity's export, sealed (`_sealed`): the export names it by its
        type and keyed hash, as the audit log does."""
        key = ids.lookup_key(self._secret, ids.normalise(id_type, value))
        scope = {"identifier_type": id_type, "identifier_key": key}
        return self._sealed(scope, cursor, lambda at: self._identity(id_type, value, at))

    def _identity(self, id_type: ids.IdType, value: str, cursor: str | None) -> dict[str, Any]:
        """One page: the identity's own records and its first PAGE_REQUESTS requests, or (with
        a cursor) its next PAGE_REQUESTS requests, oldest first."""
        identifier = ids.normalise(id_type, value)
        key = ids.lookup_key(self._secret, identifier)
        pk = keys.identity_pk(id_type, key)
        if cursor:
            position = _identity_position(_decode(cursor))
            records: list[Item] = []
            listed, graph_only = self._requests_after(pk, position)
        else:
            records, listed, legacy = self._first_page(id_type, identifier.value, key, pk)
            position = {"done": 0, "total": len(listed), "legacy": legacy}
            graph_only = []
        page = listed[:PAGE_REQUESTS]
        for _, request_id, _ in page:
            records += self._request_records(request_id)
        done = int(position["done"]) + len(page)
        more = len(listed) > PAGE_REQUESTS
        total = max(int(position["total"]), done) if more else done
        last = page[-1][:2] if page else ("", "")
        after = {"done": done, "total": position["total"], "legacy": position["legacy"],
                 "after": list(last),
                 # whether requests no reference lists (a link's or choice's only) may come:
                 # the next page then looks for them in the graph, which its Queries skip
                 "unreferenced": any(not referenced for _, _, referenced
                                     in listed[PAGE_REQUESTS:])
                                 or any(entry > last for entry in graph_only)}  # fmt: skip
        return {
            "records": records,
            "cursor": _encode(after) if more else None,
            "progress": {"done": done, "total": total, "unit": "requests"},
            # An identity's requests are found through references the deadline watch writes
            # a few minutes after they arrive: say up to when the list is complete.
            "complete_through": complete_through(self._table),
        }

    def _first_page(
        self, id_type: ids.IdType, value: str, key: str, pk: str
    ) -> tuple[list[Item], list[Listed], bool]:
        """The identity's records and every request that named it (the count, and the jobs
        its delivery marks name of requests not listed); whether references written before
        session 19 (`REQREF#`, in the graph's range) are still there."""
        items = graph_items(self._table, pk, consistent=True)  # as the lookup (review s34b C1)
        # A kept opt-out (a STATE whose node expired: docs/decisions.md, "An opt-out is kept")
        # is still a record of this identifier
        if not any(i["sk"] in (keys.NODE_SK, keys.STATE_SK) for i in items):
            raise NotFound("no record of this identifier", field="value")
        listed = _requests_of([*items, *self._references(pk, ops_keys.REF_PREFIX)])
        marks = marks_of(items)
        retired = retirements(self._table) if marks else {}
        at = {system: last_retired_at(r) for system, r in retired.items()}
        jobs = named_job_items(self._table, marks)  # read once, for both below
        deliveries = settled(self._table, marks, retired=at, jobs=jobs)
        records = _identity_records(id_type, value, key, items, marks, deliveries, retired)
        listed_ids = {rid for _, rid, _ in listed}
        records += _delivery_jobs(marks, jobs, listed_ids, {pk},
                                  self._split_jobs(marks, listed_ids))  # fmt: skip
        every_hold = holds.list_holds(self._table, EVERY_HOLD)
        records += _hold_records(id_type, key, every_hold)
        records += self._origins(items, records, listed_ids, every_hold)
        legacy = any(str(i["sk"]).startswith(ops_keys.LEGACY_REF_PREFIX) for i in items)
        return records, listed, legacy

    def _split_jobs(self, marks: dict[str, Item], listed: set[str]) -> set[str]:
        """The further jobs (`split_jobs`) of the listed requests whose `<request>~<hex>` jobs
        the marks name: those requests' own records list them (review s31 union F4). One
        BatchGetItem of their RESOLUTIONs, only when a mark names such a job."""
        owners = {owner for mark in marks.values() for job_id in named_jobs(mark).values()
                  if (owner := keys.made_by(job_id.rsplit(":", 1)[0])) in listed}  # fmt: skip
        if not owners:
            return set()
        # Strongly consistent, as those requests' own records (`_request_records`): a default
        # read that missed a RESOLUTION they read listed its further job twice (consistency34)
        found = batch_get(self._table, [(keys.request_pk(o), keys.RESOLUTION_SK) for o in owners],
                          consistent=True, fields=("split_jobs",))  # fmt: skip
        return {str(job) for item in found.values()
                for jobs in (item.get("split_jobs") or {}).values() for job in jobs}  # fmt: skip

    def _origins(
        self, items: list[Item], records: list[Item], listed: set[str], every_hold: list[Item]
    ) -> list[Item]:
        """An `origin` record for each request not among the export's own whose job it lists
        (`why: job`: a job of it carries this identity, an opt-out carried or linked to it;
        a job another request made names that maker only if its choice is read, below)
        or whose choice its state reads (`why: choice`: it set the own choice of an identity
        linked to this one): without it, why this identity went to a vendor, or is opted out
        with no choice of its own, was only in another person's export (review s31 counsel
        F3). What the request asked and how it came, and the holds it made; never another
        person's identifiers (types only). Reads each linked node (a Query: the function
        may Query an identity's partition, not BatchGetItem it), then the events."""
        why: dict[str, set[str]] = {}
        linked = sorted({keys.identity_pk(*str(i["sk"]).split("#", 2)[1:])
                         for i in items for prefix in LINKED_PREFIXES
                         if str(i["sk"]).startswith(prefix)
                         and not i.get("withdrawn")})  # fmt: skip
        chose: dict[str, set[str]] = {}
        for node in self._nodes(linked):
            for purpose, register in OwnState.from_item(node).choices.items():
                if register.value and register.request_id not in listed:
                    why.setdefault(register.request_id, set()).add("choice")
                    chose.setdefault(register.request_id, set()).add(str(purpose))
        for record in records:
            if record.get("record") != "job":
                continue
            # A job another request made (the flush's, a backfill step's, a further one) names
            # its maker as origin only when this identity's state reads that request's choice:
            # a flush's job made before 2026-12-03 was "made by" the batch's first request,
            # maybe another person's (review s31 last F1 (c))
            maker = record.get("made_by")
            origin = str(maker or record.get("request_id") or "")
            if origin and origin not in listed and (not maker or origin in chose):
                why.setdefault(origin, set()).add("job")
        if not why:
            return []
        events = batch_get(self._table, [(keys.request_pk(r), keys.EVENT_SK) for r in why])
        found: list[Item] = []
        for request_id in sorted(why):
            event = events.get((keys.request_pk(request_id), keys.EVENT_SK)) or {}
            found.append(
                {"record": "origin", "request_id": request_id, "why": sorted(why[request_id])}
                | {name: event.get(name) for name in ORIGIN_FIELDS}
                # its opt-outs only: another person's opt-ins never reach this identity
                | {"opt_out": {p: v for p, v in (event.get("opt_out") or {}).items() if v is True}}
                | {"identifier_types": sorted({str(i["type"])
                                               for i in event.get("identifiers") or ()}),
                   "chose": sorted(chose.get(request_id, ())),
                   "holds": [{"hold_id": keys.hold_id(str(h["sk"])), "status": h.get("status"),
                              "reason": h.get("reason", "cluster_cap"),
                              "held_at": h.get("held_at")}
                             for h in every_hold if h.get("request_id") == request_id]}
            )  # fmt: skip
        return found

    def _nodes(self, pks: list[str]) -> Iterator[Item]:
        for pk in pks:
            found = {":pk": {"S": pk}, ":sk": {"S": keys.NODE_SK}}
            condition = "pk = :pk AND sk = :sk"
            yield from query_items(
                self._table, KeyConditionExpression=condition, ExpressionAttributeValues=found
            )

    def _requests_after(
        self, pk: str, position: Item
    ) -> tuple[list[Listed], list[tuple[str, str]]]:
        """The next requests after the cursor's, in the first page's order: up to
        PAGE_REQUESTS + 1 of each reference prefix (one Query each, the old one only while
        such references were there) and, while some may come, those no reference lists, from
        the graph; and the graph's entries after the cursor's that no Query found."""
        after = (str(position["after"][0]), str(position["after"][1]))
        prefixes = [ops_keys.REF_PREFIX]
        if position["legacy"]:
            prefixes.append(ops_keys.LEGACY_REF_PREFIX)
        found: dict[str, str] = {}
        covered: tuple[str, str] | None = None  # how far the `XREF#` Query read (None: all)
        for prefix in prefixes:
            refs = self._references(pk, prefix, after, PAGE_REQUESTS + 1)
            for ref in refs:
                found[str(ref["request_id"])] = str(ref["received_at"])
            if prefix == ops_keys.REF_PREFIX and len(refs) > PAGE_REQUESTS:
                covered = (str(refs[-1]["received_at"]), str(refs[-1]["request_id"]))
        listed = sorted((stamp, rid, True) for rid, stamp in found.items())
        if not position["unreferenced"]:
            return listed, []
        graph = _requests_of(graph_items(self._table, pk))
        graph_only = [(stamp, rid) for stamp, rid, by_ref in graph
                      if not by_ref and (stamp, rid) > after and rid not in found]  # fmt: skip
        alone = self._unreferenced(pk, after, covered, listed, graph_only)
        return sorted(listed + alone), graph_only

    def _unreferenced(
        self,
        pk: str,
        after: tuple[str, str],
        covered: tuple[str, str] | None,
        referenced: list[Listed],
        graph_only: list[tuple[str, str]],
    ) -> list[Listed]:
        """Those of the graph's entries (a link, an edge or a choice register naming a
        request; oldest first) on this page that no reference lists. The graph, not the
        cursor, names them: a cursor names no request to read (review s19 diff B2). An entry
        whose request has an `XREF#` is ordered at that reference, by its Query: on this page
        or a later one, or an earlier one's when the request arrived before the cursor's
        position. Its arrival is read from its event (BatchGetItem); a reference is looked
        for (one Query) only outside what this page's `XREF#` Query read."""
        # past the page's PAGE_REQUESTS + 1st reference an entry cannot be on the page
        bound = referenced[PAGE_REQUESTS][:2] if len(referenced) > PAGE_REQUESTS else None
        entries = [entry for entry in graph_only if bound is None or entry < bound]
        wanted = [(keys.request_pk(rid), keys.EVENT_SK) for _, rid in entries]
        events = batch_get(self._table, wanted, fields=("received_at",))
        alone: list[Listed] = []
        for stamp, rid in entries:
            merged = sorted(referenced + alone)
            if len(merged) > PAGE_REQUESTS and (stamp, rid) > merged[PAGE_REQUESTS][:2]:
                break  # the page is full before it
            event = events.get((keys.request_pk(rid), keys.EVENT_SK))
            arrival = (str(event.get("received_at") or ""), rid) if event else None
            if arrival is None or (after < arrival and (covered is None or arrival <= covered)):
                alone.append((stamp, rid, False))  # no event, or its Query would have listed it
            elif not self._has_reference(pk, arrival):
                alone.append((stamp, rid, False))
        return alone

    def _has_reference(self, pk: str, arrival: tuple[str, str]) -> bool:
        """Whether the identity has the `XREF#` of this arrival (a Query: the admin function
        may Query `ID#` partitions, not GetItem them)."""
        query = {"KeyConditionExpression": "pk = :pk AND sk = :sk",
                 "ExpressionAttributeValues": {":pk": {"S": pk},
                                               ":sk": {"S": ops_keys.ref_sk(*arrival)}},
                 "ProjectionExpression": "sk"}  # fmt: skip
        return any(True for _ in query_items(self._table, **query))

    def _references(
        self, pk: str, prefix: str, after: tuple[str, str] | None = None, limit: int = 0
    ) -> list[Item]:
        """The references under `prefix` in key order (received_at, then request id), those
        after `after` only, at most `limit` (0: all)."""
        low = prefix + (f"{after[0]}#{after[1]}" if after else "")
        high = prefix[:-1] + chr(ord(prefix[-1]) + 1)  # 'XREF$': past every 'XREF#...'
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":low": {"S": low},
                                          ":high": {"S": high}},
            "ProjectionExpression": "sk, request_id, received_at",
        }  # fmt: skip
        if limit:
            query["Limit"] = limit + 1  # BETWEEN includes `after`'s own reference
        refs: Iterator[Item] = (r for r in query_items(self._table, **query) if r["sk"] != low)
        return list(islice(refs, limit) if limit else refs)

    # -- a date range ------------------------------------------------------------------------

    def range(
        self,
        first: date,
        last: date,
        cursor: str | None,
        seconds_left: Callable[[], float] | None = None,
    ) -> dict[str, Any]:
        """One page of the range's export, sealed (`_sealed`)."""
        scope = {"from": first.isoformat(), "to": last.isoformat()}
        return self._sealed(scope, cursor, lambda at: self._range(first, last, at, seconds_left))

    def _range(
        self,
        first: date,
        last: date,
        cursor: str | None,
        seconds_left: Callable[[], float] | None = None,
    ) -> dict[str, Any]:
        """One page: up to PAGE_REQUESTS requests, PAGE_QUERIES day-shard Queries, or until
        `seconds_left()` (the function's remaining time) falls under the margin, whichever
        comes first. A page may hold no records and still have a cursor (a quiet stretch)."""
        if last < first:
            raise InvalidInput("`to` is before `from`", field="to")
        if (last - first).days >= MAX_RANGE_DAYS:
            raise InvalidInput(f"at most {MAX_RANGE_DAYS} days per export", field="to")
        position: Item = _decode(cursor) if cursor else {"day": first.isoformat(), "shard": 0}
        day, shard = _position(position, first, last)
        start_key = position.get("key")
        records: list[Item] = []
        requests = queries = 0
        while day <= last and requests < PAGE_REQUESTS and queries < PAGE_QUERIES:
            if queries and seconds_left and seconds_left() < PAGE_TIME_MARGIN_SECONDS:
                break  # at least one Query per page, so every call moves the cursor on
            found, start_key = self._arrivals(day, shard, start_key, PAGE_REQUESTS - requests)
            queries += 1
            for indexed in found:
                records += self._request_records(str(indexed["request_id"]))
                requests += 1
            if start_key is None:  # this shard of this day is done
                shard += 1
                if shard == len(keys.DAY_SHARDS):
                    day, shard = day + timedelta(days=1), 0
        total = (last - first).days + 1
        done = min(total, (day - first).days)
        more = day <= last
        next_cursor = {"day": day.isoformat(), "shard": shard, "key": start_key}
        return {
            "records": records,
            "cursor": _encode(next_cursor) if more else None,
            "progress": {"done": done if more else total, "total": total, "unit": "days"},
        }

    def _arrivals(
        self, day: date, shard: int, start_key: Item | None, limit: int
    ) -> tuple[list[Item], Item | None]:
        kwargs: dict[str, Any] = {
            "TableName": self._table.name,
            "IndexName": keys.DAY_INDEX,
            "KeyConditionExpression": "day_pk = :pk",
            "ExpressionAttributeValues": {
                ":pk": {"S": keys.day_pk(day.isoformat(), keys.DAY_SHARDS[shard])}
            },
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        page = self._table.client.query(**kwargs)
        found = [deserialize(raw) for raw in page.get("Items", [])]
        return found, page.get("LastEvaluatedKey")

    # -- one request ---------------------------------------------------------------------------

    def _request_records(self, request_id: str) -> list[Item]:
        # Strongly consistent, as every view that states an outcome: a default read may reach
        # a replica that has not applied a further job's write while the RESOLUTION naming it
        # (written after it) was read from one that has, and the job left out made the system
        # `done` and the request `completed` while that job was pending (consistency34).
        items, covering = load_with_proof(self._table, request_id, consistent=True, quiet=True)
        records = request_records(request_id, items, covering, self._clock())
        if records and records[0].get("event_type") == "backfill":
            records += _backfill_jobs(self._table, request_id, items, records[0])
        return records


def is_late(
    status: RequestStatusOut,
    today: date,
    imported_at: str | None = None,
    jurisdiction: str | None = None,
    responded: str | None = None,
) -> bool:
    """Answered (completed, or denied) after its deadline's day, or not answered and that day
    has passed (`today`: the latest date now in the same calendar). Days are dates in the
    request's jurisdiction, not UTC dates, read at the latest local date there
    (deadlines.latest_date: the state's easternmost summer time; California's calendar when
    none is known): an answer at 17:00 PST on the deadline day is the next day in UTC, and on
    time; one at 00:40 PDT the day after is late. An imported request was answered
    by the other tool at `imported_at` (its `completed_at`), as the §7102 figures count it:
    this deployment's own completion of it comes months later and says nothing of that
    answer. `responded`: when the §7102 figures count it responded to (`Contribution.
    responded_at`): a partial compliance (failed, a system done) is answered at its last receipt
    (review s26 counsel F4)."""
    deadline = date.fromisoformat(status.deadline)
    answered = {"completed": status.completed_at, "denied": status.denied_at}
    at = imported_at if imported_at and status.status != "denied" else answered.get(status.status)
    at = at or responded
    if at is not None:
        return answered_late(at, deadline, jurisdiction)
    if status.status in answered:
        return False  # answered, with no time kept (never the case for a stored status)
    return today > deadline  # received, processing or failed: not complied with yet


def answered_at(
    status: RequestStatusOut, imported_at: str | None, responded: str | None = None
) -> str | None:
    """When the consumer's request was answered: the other tool's `completed_at` for an
    import, else this deployment's completion or denial, or for a partial compliance (failed,
    a system done) when the §7102 figures count it responded to, `responded` (its last receipt:
    review s26 counsel F4); None while open, or failed with no system done."""
    if imported_at and status.status != "denied":
        return imported_at
    found = {"completed": status.completed_at, "denied": status.denied_at}.get(status.status)
    return found or responded


def request_records(
    request_id: str,
    items: list[Item],
    covering: dict[tuple[str, str], Item],
    now: datetime | None = None,
) -> list[Item]:
    """A request's records: the request (with its status and whether it is `late`), its
    resolution, one per system (its own job and receipt, or the earlier receipts that satisfy
    it) and a denial. `now` (timezone-aware; the clock if None) decides whether an open
    request is late, by its date in the request's jurisdiction (`is_late`). The systems'
    proofs and the status are built once, for the records and the §7102 outcome alike
    (review s26 diff B F3: `contribution_of` built both again, ~3x the CPU)."""
    every = proofs(items, covering)
    status = aggregate(request_id, items, covering, every=every)
    by_sk = {item["sk"]: item for item in items}
    event = by_sk.get(keys.EVENT_SK)
    if status is None or event is None:
        return []  # expired since it was listed
    evidence = {k: v for k, v in (event.get("evidence") or {}).items() if k not in NOT_EVIDENCE}
    request: Item = {"record": "request", "request_id": request_id}
    request.update({name: event.get(name) for name in EVENT_FIELDS})
    # the day its year's figures count it under, which the range (UTC days) does not show
    request["received_on"] = ledger_day(event)
    request["identifiers"] = [
        {"type": i["type"], "key": i["key"], "role": i.get("role")}
        for i in event.get("identifiers", [])
    ]
    request.update(links=len(event.get("links", [])), evidence=evidence)
    request.update(status.model_dump(exclude={"request_id", "received_at", "deadline"}))
    calendar = stored_calendar(event)  # as stored with its answer; absent before 2026-12-01
    if calendar:
        request["deadline_jurisdiction"] = calendar
    imported_at = imported_answer(event)
    # the §7102 figures' outcome and response, which `answered_at` and `late` follow
    counted = contribution_of(items, covering, status, every)
    responded = counted.responded_at if counted else None
    outcome = None if counted is None else ("repeat" if counted.repeat else counted.outcome)
    request["outcome"] = outcome
    request["answered_at"] = answered_at(status, imported_at, responded)
    where = deadline_calendar(event)
    today = latest_date(now or datetime.now(UTC), where)
    request["late"] = is_late(status, today, imported_at, where, responded)
    # the systems done with part of it: a type named that one did not take (types only)
    request["not_taken"] = not_taken(every)
    # retired for it (open or refused when retired), which "complied_whole" does not show
    request["retired"] = retired_systems(every)
    resolution = by_sk.get(keys.RESOLUTION_SK)
    # every configured system not planned, and why (None: not recorded), and the config's hash
    request["systems_skipped"] = skipped_systems(resolution or {})
    request["systems_config"] = (resolution or {}).get("systems_sha256")
    # each re-open by the sweep that settled a system: when, by which redrive event, which
    # systems (the completion is dated by it; review s31 counsel F1); [] if none or before 12-03
    request["reopened"] = [{k: r.get(k) for k in ("at", "event_id", "systems")}
                           for r in (resolution or {}).get("reopens") or ()]  # fmt: skip
    records: list[Item] = [request]
    own = own_identities(items)  # a cited job's receipt lists no other person's (F2)
    if resolution:
        records.append({"record": "resolution", "request_id": request_id}
                       | {k: v for k, v in resolution.items()
                          if k not in ("pk", "sk", "kind", "expires_at",
                                       *keys.RESOLUTION_KEYED)})  # fmt: skip
    for proof in every:
        for mine in proof.own_jobs:  # its own job, and further ones (several people named)
            records.append(_job_record(request_id, mine, own))
        for earlier in proof.covering:
            record = _job_record(request_id, earlier, own) | {"record": "earlier_receipt"}
            if proof.no_proof(earlier):  # cited in flight, then ended as no proof for this one
                record["no_proof"] = True
            records.append(record)
        for later in later_views(proof):  # a failed job later jobs delivered (ops/later.py)
            records.append({"record": "later_delivery", "request_id": request_id,
                            "system": proof.system} | later)  # fmt: skip
        if proof.retired and proof.retirement:  # its open jobs no longer owed: who, when, why
            retired = {"record": "retirement", "request_id": request_id, "system": proof.system}
            records.append(retired | retirement_view(proof.retirement))
    # a system not asked: a recent no_record there (what that job recorded: status.not_asked)
    for quiet in not_asked(items, covering):
        records.append({"record": "not_asked", "request_id": request_id} | quiet)
    denial = by_sk.get(ops_keys.DENIAL_SK)
    if denial:
        # `systems_under_way`: its jobs made by then, or by a resolution it landed in (denial.py)
        under_way = sorted(denial.get("systems_under_way") or ())
        records.append({"record": "denial", "request_id": request_id}
                       | {k: denial.get(k) for k in ("denied_at", "denied_by", "reason_code",
                                                     "reason")}
                       | {"systems_under_way": under_way})  # fmt: skip
    return records


def _backfill_jobs(table: Table, request_id: str, items: list[Item], request: Item) -> list[Item]:
    """A backfill step's jobs, which live under a request id of their own (`<id>~<hex>`, named
    by the step's `REDERIVED#` marker) and so under no day of the ByDay index: their `job`
    records (`made_by` the step), and the step's status and counts from them (review s14
    operator 1: the export had only the step's request record, `systems_total 0`)."""
    marked = marked_jobs(table, items, consistent=True)  # as the request's own (above)
    if not marked:
        return []
    # A job its system's retirement left open is no longer owed (status.retired_job), as in
    # `optout status`: the retirements read only when a job is open.
    retired = job_retirements(table, [(system, job) for _, system, job in marked])
    request.update(jobs_outcome([
        "retired" if retirement is not None else str((job or {}).get("status") or "pending")
        for (_, _, job), retirement in zip(marked, retired, strict=True)]))  # fmt: skip
    return [_job_record(job_request, job) | {"made_by": request_id}
            for job_request, _, job in marked if job is not None]  # fmt: skip


def _delivery_jobs(
    marks: dict[str, Item], jobs: dict[str, Item], listed: set[str], own: set[str],
    split: Collection[str] = (),
) -> list[Item]:  # fmt: skip
    """The `job` record of each job the identity's delivery marks name (`job_<purpose>`: the
    job carrying that purpose now, or the last one that did, failed ones included) whose
    request is not among the export's requests: a backfill's or rederived job (request id
    `<id>~<hex>`, `made_by` the request that made it; it has no event and no reference under
    the identity) or a job of a linked identity's request. Without this the `delivery`
    record named a backfill's job the file did not hold (review s14 operator 1). `jobs`: the
    jobs the marks name, by id, as `named_job_items` read them (no read of its own). `own`:
    the exported identity's pk, the only entry their receipts' identity lists keep (F2).
    `split`: listed requests' further jobs, which their own records give."""
    named: dict[str, str] = {}  # job id -> its request id
    for _, mark in sorted(marks.items()):
        for _, job_id in sorted(named_jobs(mark).items()):
            job_request = job_id.rsplit(":", 1)[0]
            # that request's own records give its job (and its further ones)
            if job_request not in listed and job_id not in split:
                named.setdefault(job_id, job_request)
    records: list[Item] = []
    for job_id, job_request in named.items():
        job = jobs.get(job_id)
        if job is None:
            continue  # past its retention (the mark outlives it): nothing left to give
        record = _job_record(job_request, job, own)
        owner = keys.made_by(job_request)
        if owner is not None:
            record["made_by"] = owner
        records.append(record)
    return records


def _job_record(request_id: str, job: Item, own: set[str] | None = None) -> Item:
    """`own`: the keyed identities whose entries its receipts' identity lists keep (a record
    of one request or identity, `status.receipt_for`); None: all (a backfill step's own)."""
    return (
        {"record": "job", "request_id": request_id, "system": job.get("system"),
         "job_id": job.get("job_id")}
        | {name: job.get(name) for name in JOB_FIELDS}
        | {"identifier_types": sorted({i["type"] for i in job.get("identifiers", [])}),
           "receipt": receipt_for(job.get("receipt") or {}, own),
           "failures": failures_for(job, own)}
        # a copy's `done` that lost to this receipt (a race), beside it
        | ({"lost_answers": job["lost_answers"]} if job.get("lost_answers") else {})
    )  # fmt: skip


def _identity_records(
    id_type: str,
    value: str,
    key: str,
    items: list[Item],
    marks: dict[str, Item],
    deliveries: dict[str, Settled],
    retired: dict[str, Item] | None = None,
) -> list[Item]:
    by_sk = {item["sk"]: item for item in items}
    node = by_sk.get(keys.NODE_SK, {})
    own = OwnState.from_item(node)
    state = by_sk.get(keys.STATE_SK, {})
    records: list[Item] = [
        {"record": "identity", "type": id_type, "value": value, "key": key,
         "own_choices": {p: r.to_item() for p, r in own.choices.items()},
         "gpc": own.gpc.to_item() if own.gpc else None, "effective": state.get("opt_out", {}),
         "state_updated_at": state.get("updated_at"), "node_updated_at": node.get("updated_at")}
    ]  # fmt: skip
    for prefix, kind in ((keys.LINK_PREFIX, "verified_link"), (keys.ASSERTS_PREFIX, "asserts"),
                         (keys.ASSERTED_PREFIX, "asserted_by")):  # fmt: skip
        for sk, item in sorted(by_sk.items()):
            if sk.startswith(prefix):
                other_type, other_key = sk[len(prefix) :].split("#", 1)
                records.append({"record": "link", "kind": kind, "type": other_type,
                                "key": other_key, "request_id": item.get("request_id"),
                                "at": item.get("linked_at") or item.get("asserted_at"),
                                "carried": sorted(item.get("carried", ()))})  # fmt: skip
    for system, mark in sorted(marks.items()):
        confirmed, in_flight, no_record, gone, failed = deliveries[system]
        # `updated_at` is the mark's last write (a job made or replayed), not a confirmation
        # time: `jobs` names the job of each purpose, whose record has its `completed_at`.
        jobs = {str(p): str(mark[job_attribute(p)]) for p in sorted(mark.get("inflight", ()))
                if mark.get(job_attribute(p))}  # fmt: skip
        records.append({"record": "delivery", "system": system,
                        "confirmed": sorted(confirmed), "in_flight": sorted(in_flight),
                        "no_record": list(no_record), "failed": list(failed),
                        "updated_at": mark.get("updated_at"), "jobs": jobs})  # fmt: skip
        if gone and retired and system in retired:  # open jobs no longer owed: who, when, why
            records[-1] |= {"retired": sorted(gone), "retirement": retirement_view(retired[system])}
    return records


def _hold_records(id_type: str, key: str, held: list[Item]) -> list[Item]:
    """The links of this identity held at the cluster cap, and what an operator decided: a
    rejected pair is otherwise in no record of either identity."""
    mine = {"type": id_type, "key": key}
    return [
        {"record": "hold", "hold_id": keys.hold_id(str(hold["sk"])),
         "request_id": hold.get("request_id"), "status": hold.get("status"),
         "held_at": hold.get("held_at"),
         "other": {"type": other["type"], "key": other["key"]}, "cap": hold.get("cap"),
         "reason": hold.get("reason", "cluster_cap"),
         "decided_at": hold.get("decided_at"), "decided_by": hold.get("decided_by"),
         "release_request_id": hold.get("release_request_id")}
        for hold in held
        for side, other in (("a", hold["b"]), ("b", hold["a"]))
        if {"type": hold[side]["type"], "key": hold[side]["key"]} == mine
    ]  # fmt: skip


def _requests_of(items: list[Item]) -> list[Listed]:
    """Every request that named this identity, oldest first: a reference's time of arrival,
    else the first link's or choice's time naming it."""
    found: dict[str, str] = {}
    referenced: set[str] = set()
    for item in items:
        sk = str(item["sk"])
        if ops_keys.is_reference(sk):
            found[str(item["request_id"])] = str(item["received_at"])
            referenced.add(str(item["request_id"]))
        elif item.get("request_id"):
            stamp = item.get("linked_at") or item.get("asserted_at") or ""
            found.setdefault(str(item["request_id"]), str(stamp))
    node = next((i for i in items if i["sk"] == keys.NODE_SK), {})
    for register in OwnState.from_item(node).choices.values():
        stamp = register.to_item()
        if stamp.get("req"):
            found.setdefault(str(stamp["req"]), str(stamp.get("at") or ""))
    return sorted((found[rid], rid, rid in referenced) for rid in found)


def _identity_position(position: Item) -> Item:
    """A later page's cursor: how many requests are done of how many, the last one's (time,
    request id), whether unreferenced ones may still come and whether `REQREF#` ones were
    there."""
    after = position.get("after")
    if not (isinstance(position.get("done"), int) and isinstance(position.get("total"), int)
            and isinstance(position.get("legacy"), bool)
            and isinstance(position.get("unreferenced"), bool)
            and isinstance(after, list) and len(after) == 2
            and all(isinstance(v, str) for v in after)):  # fmt: skip
        raise InvalidInput("not a cursor of this export", field="cursor")
    return position


def _position(position: Item, first: date, last: date) -> tuple[date, int]:
    try:
        day = date.fromisoformat(str(position["day"]))
        shard = int(position["shard"])
    except (KeyError, ValueError, TypeError):
        raise InvalidInput("not a cursor of this export", field="cursor") from None
    if not first <= day <= last + timedelta(days=1) or not 0 <= shard < len(keys.DAY_SHARDS):
        raise InvalidInput("not a cursor of this export", field="cursor")
    return day, shard


def _encode(position: Item) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, sort_keys=True).encode()).decode()


def _decode(cursor: str) -> Item:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("not a cursor of this export", field="cursor") from None
    if not isinstance(decoded, dict):
        raise InvalidInput("not a cursor of this export", field="cursor")
    return decoded
