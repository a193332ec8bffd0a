"""What each system has received, per identity: "delivered" means the system confirmed it.

`DELIVERY#<system>` under an identity holds its marks. `inflight`: the purposes a job carries
(or carried); beside them `job_<purpose>` names that job, so no second job is made for them
and a later request that needs no job of its own cites it as its proof, and `until_<purpose>`
is that job's `expires_at`, so the resolver cites it only if it outlives the citing request's
record (docs/decisions.md, "A cited job must outlive the request that cites it"). The job's own item
says how it ended: a mark is not rewritten when its job is done (docs/decisions.md, "The
receipt is the done mark"), so "confirmed" is read from the named jobs (`settled`). `done`:
purposes confirmed before that change (still read). A job that fails for good frees its
purposes from `inflight`, so the next event for that person sends them again; it is also
listed under `FAILED#<system>` for an operator's replay. A `no_record` job ("no such person")
frees them too, without that listing: it is a receipt for its own request only, since the
person may become the vendor's customer afterwards (docs/decisions.md, "No record is a
receipt for one request"). That free also stamps the mark with when the vendor answered and
by which job (`no_record_at`, `no_record_job`): for a short quiet period the resolver asks
that vendor nothing more about this identity (docs/decisions.md, "A no_record answer
quiets that identity for a day"). Set ADD/DELETE are commutative and
idempotent: concurrent jobs of one identity, and a worker that records twice, cannot corrupt
the sets.
"""

import math
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from optout.purposes import ALL_PURPOSES
from optout.store import keys, query
from optout.store.batch import batch_get
from optout.store.codec import Item, deserialize, serialize
from optout.store.conditional import conditional, conditional_once
from optout.store.retired import made_at_or_before
from optout.store.table import Table

ENDED = ("done", "no_record", "failed")  # a job's final statuses


def job_attribute(purpose: str) -> str:
    """The mark's attribute naming the job that carries a purpose: 'job_sale'."""
    return f"job_{purpose}"


def until_attribute(purpose: str) -> str:
    """The mark's attribute holding the expiry (epoch seconds) of the job `job_<purpose>`
    names: 'until_sale'. Not under the `job_` prefix, which `named_jobs` reads as names."""
    return f"until_{purpose}"


def stored_flights(
    identifiers: list[Item], flights: list[Item], purposes: Sequence[str]
) -> list[Item]:
    """A new job's `flights` as stored: beside `identifiers` (one flight each, same order) a
    flight leaves out the identity's `pk` (its identifier's) and `purposes` when they are the
    job's, so a job for k identities does not repeat k keyed hashes (docs/decisions.md, "Job
    items under 1 KB"). `flights_of` reads both forms back alike."""
    if len(identifiers) != len(flights):
        return flights
    stored: list[Item] = []
    for identifier, flight in zip(identifiers, flights, strict=True):
        if flight["pk"] != keys.identity_pk(identifier["type"], identifier["key"]):
            return flights  # not one flight per identifier in order: the long form
        kept = {} if set(flight["purposes"]) == set(purposes) else {"purposes": flight["purposes"]}
        stored.append(kept)
    return stored


def flights_of(job: Item) -> list[Item]:
    """What the job marked in flight, per identity: [{"pk", "purposes"}], from either form
    (`stored_flights`; jobs stored before it name both in every flight)."""
    identifiers = job.get("identifiers", [])
    found: list[Item] = []
    for n, flight in enumerate(job.get("flights", [])):
        pk = flight.get("pk")
        if pk is None:
            if n >= len(identifiers):
                continue  # cannot happen for a job written whole; nothing to name
            pk = keys.identity_pk(identifiers[n]["type"], identifiers[n]["key"])
        purposes = flight["purposes"] if "purposes" in flight else list(job.get("purposes", []))
        found.append({"pk": pk, "purposes": purposes})
    return found


def mark_flight(
    table: Table,
    system: str,
    flight: Item,
    now: str,
    expires_at: int | None,
    job_id: str,
    *,
    keep_expiry: bool = False,
    until: int | None = None,
    take_before: int | None = None,
    retired_at: str | None = None,
    fresh: bool = False,
) -> bool:
    """Mark one identity's purposes in flight for `job_id`, unless another job already
    carries one of them (that condition is what keeps two resolvers from making the same job
    twice), and name the job that carries them. False when the condition failed.

    A purpose the mark already names `job_id` for is ours: a write that committed but whose
    answer was lost is retried by botocore, and that retry must succeed, not report the
    purposes taken (the resolver would then delete its job and leave a mark naming nothing).
    The job item is written before its marks (resolver/service.py), so a mark never names a
    job that does not exist.

    `keep_expiry` (a replay, whose job is older than the mark may be): `expires_at` is set
    only on a mark that has none, and a mark that exists keeps its own.

    `until`: the job's own `expires_at`, written per purpose beside its name
    (`until_<purpose>`). `take_before` (the citing request's record expiry): a purpose another
    job carries may be taken too when that job expires before it, or its expiry is not on the
    mark (marks written before it was kept): the resolver does not cite such a job
    (`fanout.Member.carried`), so without this its own job could never mark the purpose. Two
    resolvers taking the same purpose still make one job: the first writes a later `until`.

    `retired_at` (the system's retirement, when it is configured again): a mark last written
    by then names only jobs of the retired contract (resolver/derive.py `before_retirement`).
    It is replaced, not merged into (`_replace_retired`): a merge would leave the purposes this
    job does not carry naming the retired job under a fresh `updated_at`, and later requests
    would cite it (review s18 diff B1).

    A no_record stamp goes (in the same write): this job's answer is the identity's newest
    word from the vendor, so a quiet period lengthened later cannot silence it by an older
    "no such person".

    `fresh` (the resolver marking the job it has just made, not a replay): refused, too, when
    the mark names `job_id` for a purpose not in flight: the job has already ended and its
    worker freed it (`_free`). One event resolved twice at once (the sweep's redrive and its
    late stream record) lets the second resolver send the job before the first marks it; the
    first's mark then named an ended job in flight and removed its no_record stamp, so later
    requests cited it (review s22 race R5). A freed mark naming an earlier ended job is made
    to name `job_id` by that free's fallback (`_name_over_older`), so it refuses too (s23
    diff A1). A stale mark replaced (`retired_at`) named the
    retired job, not this one, so the job is read after that write instead, and the mark
    freed again if it ended (`free_if_ended`): False then, as if refused (diff A3)."""
    purposes: list[str] = flight["purposes"]
    values: Item = {":p": set(purposes), ":now": now, ":kind": "delivery", ":job": job_id}
    update = _in_flight_for(purposes, values, until)
    if expires_at:
        values[":exp"] = expires_at
        update += ", expires_at = " + ("if_not_exists(expires_at, :exp)" if keep_expiry else ":exp")
    update += " REMOVE no_record_at, no_record_job"
    condition = _free_or_ours(purposes, values, take_before)
    if fresh:
        condition = f"({condition}) AND NOT ({_ended_here(purposes)})"
    if retired_at is None:
        return _write_mark(table, system, flight, update, condition, values)
    # A mark absent or written since the retirement: the usual write. Only a stale one fails
    # it and costs the second write, once per identity.
    values[":retired"] = retired_at
    condition = f"(attribute_not_exists(pk) OR updated_at > :retired) AND ({condition})"
    if _write_mark(table, system, flight, update, condition, values):
        return True
    if not _replace_retired(table, system, flight, now, expires_at, job_id, until, retired_at):
        return False
    # The stale mark named the retired job, so the worker's free of an ended `job_id` wrote
    # nothing to it, and `fresh` could not refuse: read the job after the write instead
    # (once per identity after a re-add) and undo the mark if the job ended (diff A3).
    return not (fresh and free_if_ended(table, system, job_id, now) is not None)


def _replace_retired(
    table: Table,
    system: str,
    flight: Item,
    now: str,
    expires_at: int | None,
    job_id: str,
    until: int | None,
    retired_at: str,
) -> bool:
    """A mark last written by `retired_at` (or with no `updated_at`: `before_retirement` reads
    it as stale too) made this job's alone: its purposes in flight for `job_id`, every other
    purpose's job name and expiry and the legacy `done` set gone. False when the mark is not
    stale (any more): another resolver took it first, or it was fresh all along."""
    purposes: list[str] = flight["purposes"]
    values: Item = {":p": set(purposes), ":now": now, ":kind": "delivery", ":job": job_id,
                    ":retired": retired_at}  # fmt: skip
    update = "SET inflight = :p, updated_at = :now, kind = :kind" + _name_job(purposes)
    if until:
        values[":until"] = until
        update += "".join(f", {until_attribute(p)} = :until" for p in purposes)
    if expires_at:
        values[":exp"] = expires_at
        update += ", expires_at = :exp"
    others = [p for p in ALL_PURPOSES if p not in purposes]
    gone = [a for p in others for a in (job_attribute(p), until_attribute(p))]
    update += " REMOVE " + ", ".join(["no_record_at", "no_record_job", "done", *gone])
    condition = "attribute_not_exists(updated_at) OR updated_at <= :retired"
    return _write_mark(table, system, flight, update, condition, values)


def take_flight(
    table: Table,
    system: str,
    flight: Item,
    now: str,
    expires_at: int | None,
    job_id: str,
    chain: str,
    *,
    until: int | None = None,
) -> bool:
    """A backfill with `--resend` (a destination changed under the system's name): mark one
    identity's purposes in flight for `job_id` whatever job the mark names for them, unless
    that is a job of this backfill (its job ids start with `chain`; another of its events
    reached the same cluster first) other than `job_id`. The old jobs' receipts are for the
    old destination, so they no longer count: the purposes leave the legacy `done` set, and a
    no_record stamp (the old destination's answer) goes. A job made after the change that the
    mark named is overwritten: it carries the current destination too (one more send; its
    own free, if it fails, names it and leaves this mark alone). False when the condition
    failed. `until`: the job's own expiry, written per purpose as `mark_flight` does."""
    purposes: list[str] = flight["purposes"]
    values: Item = {":p": set(purposes), ":now": now, ":kind": "delivery", ":job": job_id,
                    ":chain": chain}  # fmt: skip
    update = _in_flight_for(purposes, values, until)
    if expires_at:
        values[":exp"] = expires_at
        update += ", expires_at = :exp"
    update += " REMOVE no_record_at, no_record_job DELETE done :p"
    clauses = [f"(NOT begins_with({job_attribute(p)}, :chain) OR {job_attribute(p)} = :job)"
               for p in purposes]  # fmt: skip
    condition = " AND ".join(clauses) if len(clauses) > 1 else clauses[0][1:-1]
    return _write_mark(table, system, flight, update, condition, values)


def _in_flight_for(purposes: list[str], values: Item, until: int | None) -> str:
    """The update's start: the purposes in flight, named for `:job`, with the job's expiry
    per purpose (`until_<purpose>`) when known."""
    update = "ADD inflight :p SET updated_at = :now, kind = :kind" + _name_job(purposes)
    if until:
        values[":until"] = until
        update += "".join(f", {until_attribute(p)} = :until" for p in purposes)
    return update


def _write_mark(
    table: Table, system: str, flight: Item, update: str, condition: str, values: Item
) -> bool:
    """One identity's mark for `system`, written only under `condition`; False if it failed."""
    written = conditional(
        lambda: table.client.update_item(
            TableName=table.name,
            Key={"pk": {"S": flight["pk"]}, "sk": {"S": keys.delivery_sk(system)}},
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=serialize(values),
        )
    )
    return written is not None


def _free_or_ours(purposes: list[str], values: Item, take_before: int | None = None) -> str:
    """The condition that no other job carries any of `purposes`: each is not in flight or
    is named for `:job` already (or, with `take_before`, its job expires before that or has
    no expiry on the mark). Adds the placeholders to `values`."""
    clauses = []
    if take_before:
        values[":cut"] = take_before
    for n, purpose in enumerate(purposes):
        values[f":p{n}"] = purpose
        clause = f"NOT contains(inflight, :p{n}) OR {job_attribute(purpose)} = :job"
        if take_before:
            until = until_attribute(purpose)
            clause += f" OR attribute_not_exists({until}) OR {until} < :cut"
        clauses.append(f"({clause})")
    each = clauses[0] if len(clauses) == 1 else "(" + " AND ".join(clauses) + ")"
    return "attribute_not_exists(inflight) OR " + each  # DynamoDB refuses redundant ()


def _ended_here(purposes: list[str]) -> str:
    """The condition that the mark names `:job` for one of `purposes` (`:p<n>`, as
    `_free_or_ours` sets them) that is not in flight: `:job` ended and was freed."""
    each = [f"{job_attribute(p)} = :job AND NOT contains(inflight, :p{n})"
            for n, p in enumerate(purposes)]  # fmt: skip
    # DynamoDB refuses redundant parentheses: one purpose's clause stands alone
    return each[0] if len(each) == 1 else " OR ".join(f"({e})" for e in each)


def _name_job(purposes: list[str]) -> str:
    return "".join(f", {job_attribute(p)} = :job" for p in purposes)


def record_delivered(
    table: Table,
    job: Item,
    status: str,
    now: str,
    receipt: Item | None = None,
    token: str | None = None,
) -> bool:
    """The marks' part of a job reaching a final status (the worker's `_finish`).

    done: nothing to write. The marks already name this job for its purposes, and the job's
    receipt is what says it was confirmed (`settled` reads it); the resolver treats a purpose in
    flight and one confirmed alike (no new job for either). Except the identities of a type the
    vendor refused inside the accepted call (the `receipt`'s `identifier_types_rejected`) or of
    a type not sent at all (not in its `identifier_types_sent`: the vendor held no record of
    it): they are freed as a failure's are, so no later request cites this job as their proof
    and the next event names them again (every identity of such a type: a partly refused type is
    sent again whole, which the vendor takes as a repeat). So are the identities never sent
    while another value of their type was (the receipt's `identities_unformed`, for lack of a
    form, and `identities_not_sent`, by the vendor's answer: a backfill step's job carries
    several people; review s28 P1). no_record: every purpose is
    freed, as a failure's, but the job is not listed for replay: the vendor answered this
    request, and held no such person then; a later request must ask it again (the person may
    have become its customer), so none cites this job as its proof. Each freed mark is
    stamped, in the same write, with when the vendor answered (the job's `completed_at`, epoch
    seconds) and the job: the resolver's quiet period reads it
    (`fanout.Member.heard_no_record`). failed: the
    purposes are freed from `inflight` (the next event sends them again), except those a later
    job took meanwhile (`_free`), and the job is listed for an operator's replay, last. Idempotent:
    a second call for the same failure changes nothing.

    True when this call listed a failure not listed before (the listing's `failed_at` is the
    job's `completed_at`, so a failure after an operator replay is a new one): the worker counts
    `JobsFailed` then, once per failure however often these steps run (a message back after a
    crash between the job's write and these steps runs them again). A retry of the listing's
    own write (its answer lost) finds its own `listed_by` and is still the one that listed it.
    `token`: the listing's `listed_by` (a fresh one if not given), for the caller to tell its
    own listing afterwards (`listed_again_after_replay`).
    """
    free_ended(table, job, status, now, receipt)
    return _list_failed(table, job, now, token) if status == "failed" else False


def free_ended(
    table: Table,
    job: Item,
    status: str,
    now: str,
    receipt: Item | None = None,
    only: set[str] | None = None,
) -> None:
    """The frees of `record_delivered` alone, never the listing: for a replay that finds the
    job it just marked ended meanwhile (resolver `_mark_replayed`, review s22 race R3). Its
    worker lists the failure, and only the run that lists it counts `JobsFailed`: a replay
    listing it first left the failure uncounted by the failed-jobs alarm (review s22 diff A5).
    `only`: the identity pks whose marks may be written (None: all the job's), for a re-open
    freeing a shared job again for one request (review s28 p1 F3)."""
    if only is not None:
        job = {**job, "flights": [f for f in flights_of(job) if f["pk"] in only]}
    if status == "no_record":
        # A repeated message frees again: the stamp is still the answer's time, not this call's,
        # rounded up to the second: the quiet period's `answered_at` (resolver `_not_asked`)
        # is read from it, and a proof's time must never precede the answer (review s26
        # counsel F9: cut, it read up to a second before it).
        answered = datetime.fromisoformat(str(job.get("completed_at") or now))
        _free_flights(table, job, now, no_record_at=math.ceil(answered.timestamp()))
    elif status == "failed":
        _free_flights(table, job, now)
    else:
        unproven = _unproven_types(job, receipt or {})
        # and the identities never sent, whatever other value of their type was (a job of
        # several people's: review s28 P1), stamped in the same write as a "no such person"
        # answer is (review s28 p1 F4: else the person's next request made a job that only
        # answered so, then the quiet period began): a job for that value alone would have
        # answered no_record (no form: no call; no UID2, no profile: the vendor's answer)
        unsent = {str(pk) for name in keys.UNSENT_LISTS for pk in (receipt or {}).get(name) or ()}
        if unsent:
            answered = datetime.fromisoformat(str(job.get("completed_at") or now))
            _free_flights(table, job, now, set(), math.ceil(answered.timestamp()), pks=unsent)
        if unproven:
            rest = [f for f in flights_of(job) if f["pk"] not in unsent]
            _free_flights(table, {**job, "flights": rest}, now, unproven)


def free_if_ended(table: Table, system: str, job_id: str, now: str) -> Item | None:
    """The job `job_id` (one strongly consistent GetItem), and if it has ended, its frees run
    again (`free_ended`): for a mark written over another job's name (a stale or takeable mark),
    which the worker's free of this job could not name, so it wrote nothing there and a job
    sent and answered before that mark would stay named in flight (review s22 diff A3). The
    ended job, or None while it is still in flight."""
    job = get_job(table, job_id.rsplit(":", 1)[0], system)
    if job is None or job.get("status") not in ENDED:
        return None
    free_ended(table, job, str(job["status"]), now, job.get("receipt"))
    return job


def _list_failed(table: Table, job: Item, now: str, token: str | None = None) -> bool:
    """The job under `FAILED#<system>` (see record_delivered); True when newly listed.

    Written only if this failure is not listed yet (another `failed_at`, or none) or listed by
    this very write (`listed_by`: a retry after its answer was lost): of two runs listing one
    failure at once, exactly one is told it listed it, whichever answer was lost (review s17
    N5: both could read the other's token and say no)."""
    failed = str(job.get("completed_at") or now)
    token = token or uuid.uuid4().hex  # this write's: two runs in one millisecond are two
    marker: Item = {":job": job["job_id"], ":req": job["request_id"], ":failed": failed,
                    ":by": token, ":kind": "failed_job"}  # fmt: skip
    update = (
        "SET job_id = :job, request_id = :req, failed_at = :failed, listed_by = :by, kind = :kind"
    )
    if job.get("expires_at"):
        marker[":exp"] = job["expires_at"]
        update += ", expires_at = :exp"
    answer = conditional(
        lambda: table.client.update_item(
            TableName=table.name,
            Key={"pk": {"S": keys.failed_pk(job["system"])}, "sk": {"S": job["job_id"]}},
            UpdateExpression=update,
            ConditionExpression=(
                "attribute_not_exists(failed_at) OR failed_at <> :failed OR listed_by = :by"
            ),
            ExpressionAttributeValues=serialize(marker),
        )
    )
    return answer is not None


def listed_again_after_replay(job: Item, failed_at: str, token: str) -> bool:
    """`job` as read after a run of its after-steps listed its failure at `failed_at` with
    `token`: True when a replay has reset it from that failure (its last `failures` entry)
    having read another run's listing (`replayed_listing`). That run listed the failure
    first and counted it; the replay then dropped its listing, so this run's write found none
    and listed it again, late (race24, the A6 leftover): not a new failure, not counted again.
    False when the replay read this run's listing, or when it cannot tell (no token kept: a
    replay from before session 24, or one of a failure never listed; or replayed again since)."""
    failures = job.get("failures") or []
    if not failures or str(failures[-1].get("failed_at") or "") != failed_at:
        return False
    replayed = job.get("replayed_listing")
    return bool(replayed) and replayed != token


def note_message_of_failed(table: Table, job: Item, now: str) -> bool:
    """A message of a failed job reached the worker (a DLQ redrive, a duplicate) after its
    failure was listed: noted on the listing, once per failure (`message_of`: its `failed_at`;
    `message_by` recognises this write's own lost answer). True the first time, so the worker
    counts `FailedJobsNeedReplay` once per failed job however many of its messages come (review
    s17 diff-worker N4). A write only on this path; False if the job is no longer listed."""
    failed = str(job.get("completed_at") or now)
    values: Item = {":failed": failed, ":by": uuid.uuid4().hex}
    answer = conditional(
        lambda: table.client.update_item(
            TableName=table.name,
            Key={"pk": {"S": keys.failed_pk(job["system"])}, "sk": {"S": job["job_id"]}},
            UpdateExpression="SET message_of = :failed, message_by = :by",
            ConditionExpression="failed_at = :failed AND (attribute_not_exists(message_of)"
            " OR message_of <> :failed OR message_by = :by)",
            ExpressionAttributeValues=serialize(values),
        )
    )
    return answer is not None


def _unproven_types(job: Item, receipt: Item) -> set[str]:
    """The job's identifier types its `done` receipt is no proof for: those the vendor refused,
    and those it was not sent at all (no record of that identifier: a Braze customer id with
    no profile while the email had one). A receipt that names no type sent (a connector that
    does not say) frees only what it says was refused."""
    unproven = {str(t) for t in receipt.get("identifier_types_rejected") or ()}
    sent = {str(t) for t in receipt.get("identifier_types_sent") or ()}
    if sent:
        unproven |= {keys.split_identity_pk(str(f["pk"]))[0] for f in flights_of(job)} - sent
    return unproven


def _free_flights(
    table: Table,
    job: Item,
    now: str,
    types: set[str] | None = None,
    no_record_at: int = 0,
    pks: set[str] | None = None,
) -> None:
    """The job's purposes out of its identities' `inflight` (those of `types` only, and of the
    identities `pks`, if given); `no_record_at`: the vendor's "no such person" answered then
    (epoch seconds), stamped."""
    system: str = job["system"]
    expires_at = job.get("expires_at")
    for flight in flights_of(job):
        purposes: list[str] = flight.get("purposes") or []
        wanted = (types is None or flight["pk"].split("#")[1] in types
                  or flight["pk"] in (pks or ()))  # fmt: skip
        if not purposes or not wanted:
            continue
        key = (flight["pk"], keys.delivery_sk(system))
        if not _free(table, key, purposes, job["job_id"], now, expires_at, no_record_at):
            for purpose in purposes:  # some were taken by a later job: free the others alone
                if not _free(table, key, [purpose], job["job_id"], now, expires_at, no_record_at):
                    _name_over_older(table, key, purpose, job["job_id"], now, expires_at,
                                     no_record_at)  # fmt: skip


def _free(
    table: Table,
    key: tuple[str, str],
    purposes: list[str],
    job_id: str,
    now: str,
    expires_at: int | None,
    no_record_at: int = 0,
) -> bool:
    """`purposes` out of `inflight`, if the mark still names `job_id` for each (or no job:
    marks older than the names); one a later job carries (a replay of an old job over it)
    keeps it. False when the condition failed (nothing written). With `no_record_at`, the
    same write stamps the mark with it and the job (the resolver's quiet period), unless the
    mark names a job made after this one (`_no_newer_job`): that job's mark cleared the
    stamps before it, and its answer, later than this one or still to come, is the vendor's
    newest word on the person, which an older "no such person" must not silence (review s22
    race R1: a job of another purpose marked while this one was in flight, then done, and
    the next request's new purpose was never asked). Then the purposes are freed unstamped."""
    values: Item = {":now": now, ":flown": set(purposes), ":job": job_id}
    # A mark naming no job for a purpose (none yet: the resolver that made the job has not
    # marked it) is left naming this one, freed: `mark_flight(fresh=True)` then refuses to
    # mark an ended job in flight (review s22 race R5). One that names it already keeps it.
    # One naming an earlier ended job refuses this write: `_name_over_older` (s23 diff A1).
    update = "SET updated_at = :now" + "".join(
        f", {job_attribute(p)} = if_not_exists({job_attribute(p)}, :job)" for p in purposes
    )
    if expires_at:
        values[":exp"] = expires_at
        update += ", expires_at = :exp"
    ours = [f"(attribute_not_exists({job_attribute(p)}) OR {job_attribute(p)} = :job)"
            for p in purposes]  # fmt: skip
    condition = " AND ".join(ours) if len(ours) > 1 else ours[0][1:-1]
    if no_record_at:
        stamped = {**values, ":heard": no_record_at}
        stamp = ", no_record_at = :heard, no_record_job = :job"
        guard = _no_newer_job(stamped, expires_at)
        # each clause of `ours` keeps its parentheses beside the guard (OR inside AND)
        guarded = " AND ".join(ours) + guard if guard else condition
        if _update_mark(table, key, update + stamp, guarded, stamped):
            return True
        if not guard:
            return False
        return _update_mark(table, key, update, condition, values)
    # A failure's free, or a done job's unproven types': the mark as it was comes back, so
    # one that named no job for a purpose (this job's resolver never marked it) shows an
    # earlier no_record stamp its mark would have removed (race24)
    old = _update_mark_old(table, key, update, condition, values)
    if old is None:
        return False
    if "no_record_at" in old and any(job_attribute(p) not in old for p in purposes):
        _drop_older_stamp(table, key, expires_at)
    return True


def _drop_older_stamp(table: Table, key: tuple[str, str], expires_at: int | None) -> None:
    """An earlier no_record stamp removed from a mark a failed (or unproven) job was first
    named on by its own free: the job's own mark, had its resolver written it before the job
    ended, would have removed it (`mark_flight`), and the person's next request inside that
    answer's quiet period was not asked, where the serial order asks it (race24: the same
    event resolved twice at once, the earlier job answering "no such person" in between).
    Not when the mark names a job made after this one (`_no_newer_job`): its stamp, if it is
    that job's, is the newer word. One conditional write, on that path only."""
    values: Item = {}
    guard = _no_newer_job(values, expires_at)
    if not guard:
        return  # this job's age is unknown: nothing to compare
    conditional(
        lambda: table.client.update_item(
            TableName=table.name,
            Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
            UpdateExpression="REMOVE no_record_at, no_record_job",
            ConditionExpression="attribute_exists(no_record_at)" + guard,
            ExpressionAttributeValues=serialize(values),
        )
    )


def _name_over_older(
    table: Table,
    key: tuple[str, str],
    purpose: str,
    job_id: str,
    now: str,
    expires_at: int | None,
    no_record_at: int = 0,
) -> bool:
    """A free refused (the mark names another job for `purpose`): the mark names `job_id`
    instead, freed, when the job it names is older (expires no later: `until_<purpose>`) and
    not in flight, i.e. an earlier job of the person that ended. Else the resolver that made
    `job_id` and has not marked it yet (the same event resolved twice at once) would mark it
    in flight after its end: `mark_flight(fresh=True)` refuses only a freed mark naming it,
    and the person's next opt-out cited the ended job (review s23 diff A1, race R5). Only on
    this refused path, so the usual free's condition stays as it was. With `no_record_at`
    the stamp is written too, unless the mark names a newer job (`_no_newer_job`, as `_free`).
    Without it (a failure, or a done job's unproven types) an earlier no_record stamp goes in
    the same write, unless the mark names a newer job: as the job's own mark would have
    removed it (`mark_flight`), had it been written before the job ended. Else it stayed beside
    the failed job's name, and the person's next request inside the earlier answer's quiet
    period was not asked, where the serial order asks it (race24). False when nothing was
    written."""
    if not expires_at:
        return False  # its age is unknown: nothing to compare
    job_name, until = job_attribute(purpose), until_attribute(purpose)
    values: Item = {":now": now, ":flown": {purpose}, ":job": job_id, ":exp": expires_at}
    update = f"SET updated_at = :now, {job_name} = :job, {until} = :own, expires_at = :exp"
    freed = f"attribute_exists({job_name}) AND NOT contains(inflight, :p)"
    values[":p"] = purpose
    if no_record_at:
        stamped = {**values, ":heard": no_record_at}
        guard = _no_newer_job(stamped, expires_at)  # includes this purpose's own `until`
        stamp = ", no_record_at = :heard, no_record_job = :job"
        if _update_mark(table, key, update + stamp, freed + guard, stamped):
            return True
    else:
        unstamped = {**values}
        guard = _no_newer_job(unstamped, expires_at)  # includes this purpose's own `until`
        gone = " REMOVE no_record_at, no_record_job"
        if _update_mark(table, key, update + gone, freed + guard, unstamped):
            return True
    values[":own"] = expires_at
    older = f" AND (attribute_not_exists({until}) OR {until} <= :own)"
    return _update_mark(table, key, update, freed + older, values)


def _no_newer_job(values: Item, expires_at: int | None) -> str:
    """The condition (to AND, with its leading " AND ") that the mark names no job made after
    the job expiring at `expires_at`: every `until_<purpose>` (a named job's expiry, its
    creation time plus a fixed span) is at most it. Empty when the job's expiry is unknown.
    Adds its placeholder to `values`."""
    if not expires_at:
        return ""
    values[":own"] = expires_at
    each = [f"(attribute_not_exists({until_attribute(p)}) OR {until_attribute(p)} <= :own)"
            for p in ALL_PURPOSES]  # fmt: skip
    return " AND " + " AND ".join(each)


def _update_mark(
    table: Table, key: tuple[str, str], update: str, condition: str, values: Item
) -> bool:
    """One conditional update of a mark that frees `:flown`; False if the condition failed."""
    return _mark_update(table, key, update, condition, values) is not None


def _update_mark_old(
    table: Table, key: tuple[str, str], update: str, condition: str, values: Item
) -> Item | None:
    """`_update_mark`, answering the mark as it was before the write ({} when there was
    none), or None if the condition failed."""
    written = _mark_update(table, key, update, condition, values, "ALL_OLD")
    return None if written is None else deserialize(written.get("Attributes") or {})


def _mark_update(
    table: Table,
    key: tuple[str, str],
    update: str,
    condition: str,
    values: Item,
    returning: Literal["NONE", "ALL_OLD"] = "NONE",
) -> Mapping[str, Any] | None:
    """The update both of the above make; None if the condition failed."""
    return conditional(
        lambda: table.client.update_item(
            TableName=table.name,
            Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
            UpdateExpression=update + " DELETE inflight :flown",
            ConditionExpression=condition,
            ExpressionAttributeValues=serialize(values),
            ReturnValues=returning,
        )
    )


def marks_of(items: Iterable[Item]) -> dict[str, Item]:
    """The `DELIVERY#` marks among an identity partition's items, by system."""
    prefix = keys.DELIVERY_PREFIX
    return {str(i["sk"])[len(prefix) :]: i for i in items if str(i["sk"]).startswith(prefix)}


class Settled(NamedTuple):
    """One identity's purposes at one system, as `settled` reads them."""

    confirmed: set[str]
    in_flight: set[str]
    # The jobs that found no such person, each {"job_id", "completed_at", "purposes"}: a
    # receipt for that request only, neither confirmed nor in flight.
    no_record: tuple[Item, ...] = ()
    # Purposes whose job was not done when the system was retired (optout/retire.py): no
    # longer owed, so neither confirmed nor in flight (review s14 operator 8).
    retired: frozenset[str] = frozenset()
    # The failed jobs the mark still names for a purpose nothing confirmed or carries now,
    # each {"job_id", "completed_at", "purposes"}: the system may hold the person and was
    # not told (review s34 proof F1: a per-person view that left it out read as "not there").
    failed: tuple[Item, ...] = ()


def settled(
    table: Table, marks: dict[str, Item], now: float | None = None,
    retired: dict[str, str] | None = None, jobs: dict[str, Item] | None = None,
) -> dict[str, Settled]:  # fmt: skip
    """Per system, one identity's (confirmed, in flight, no_record) purposes, from its marks
    and the jobs they name (one strongly consistent BatchGetItem): a purpose is confirmed when
    its job is done, and no_record (with that job and when it answered) when the job the mark
    names for it found no such person, whether still in flight (a mark the worker has not
    freed yet, or written before no_record freed marks) or freed.

    A named job that no longer exists counts as confirmed only once the mark's `expires_at`
    (epoch seconds; `now` defaults to the clock) has passed: every write of a mark sets it
    to its own time plus the retention, or to its job's, and jobs (written before their
    marks, each with at least that retention) are deleted only by the TTL, so by then the job
    has outlived its retention, long after its receipt (as the mark's `done` set said before
    a receipt became the mark; a mark without `expires_at` counts as past it). Before that a
    missing job proves nothing was confirmed: the purpose counts in flight.

    `retired` (system -> retired_at, `retire.retirements`): a purpose in flight whose job was
    made at or before its system's retirement is `retired`, as the request's status reads it.
    `jobs`: those jobs, already read by `named_job_items` (the caller needs them too)."""
    jobs = named_job_items(table, marks) if jobs is None else jobs
    clock = time.time() if now is None else now
    found: dict[str, Settled] = {}
    for system, mark in marks.items():
        done, flying = {str(p) for p in mark.get("done", ())}, set[str]()
        none: dict[str, Item] = {}
        outlived = int(mark.get("expires_at") or 0) <= clock
        inflight = {str(p) for p in mark.get("inflight", ())}
        named_here = named_jobs(mark)
        for purpose, job_id in named_here.items():
            job = jobs.get(job_id)
            if job is not None and job.get("status") == "no_record":
                at = job.get("completed_at")
                entry = none.setdefault(
                    job_id, {"job_id": job_id, "purposes": [], "completed_at": at}
                )
                entry["purposes"].append(purpose)
        retired_at = (retired or {}).get(system)
        gone = set[str]()
        for purpose in inflight:
            job_id = named_here.get(purpose, "")
            job = jobs.get(job_id) if job_id else None
            if job is not None and job.get("status") == "no_record":
                continue
            finished = job.get("status") == "done" if job is not None else bool(job_id) and outlived
            if not finished and job is not None and made_at_or_before(job, retired_at):
                gone.add(purpose)
                continue
            (done if finished else flying).add(purpose)
        no_record = tuple({**e, "purposes": sorted(e["purposes"])} for _, e in sorted(none.items()))
        failed = _failed_here(named_here, jobs, done | flying | gone, retired_at)
        found[system] = Settled(done, flying - done, no_record, frozenset(gone - done), failed)
    return found


def _failed_here(
    named: dict[str, str], jobs: dict[str, Item], accounted: set[str], retired_at: str | None
) -> tuple[Item, ...]:
    """The failed jobs `named` still names for purposes not in `accounted` (confirmed, in
    flight or retired), one entry per job; a job made by a retirement's time is no longer
    owed (optout/retire.py), so it is left out."""
    found: dict[str, Item] = {}
    for purpose, job_id in sorted(named.items()):
        job = jobs.get(job_id)
        if purpose in accounted or job is None or job.get("status") != "failed":
            continue
        if retired_at and made_at_or_before(job, retired_at):
            continue
        entry = found.setdefault(
            job_id, {"job_id": job_id, "purposes": [], "completed_at": job.get("completed_at")}
        )
        entry["purposes"].append(purpose)
    return tuple(e for _, e in sorted(found.items()))


def named_job_items(table: Table, marks: dict[str, Item]) -> dict[str, Item]:
    """The jobs one identity's marks name, by job id (one strongly consistent BatchGetItem);
    a job past its retention is absent."""
    named = {job_id: keys.job_item_key(system, job_id)
             for system, mark in marks.items() for job_id in named_jobs(mark).values()}  # fmt: skip
    found = batch_get(table, set(named.values()), consistent=True) if named else {}
    return {job_id: found[key] for job_id, key in named.items() if key in found}


def named_jobs(mark: Item) -> dict[str, str]:
    """The job a mark names per purpose (`job_<purpose>`), in flight or freed."""
    prefix = job_attribute("")
    return {str(name)[len(prefix) :]: str(job) for name, job in mark.items()
            if str(name).startswith(prefix) and job}  # fmt: skip


def failed_jobs(table: Table, system: str, after: str = "") -> Iterator[Item]:
    """A system's listed failed jobs in job-id order, after the listing `after` if given;
    lazily, so a replay that stops at its bound reads no further page."""
    condition = "pk = :pk AND sk > :after" if after else "pk = :pk"
    values: dict[str, Any] = {":pk": {"S": keys.failed_pk(system)}}
    if after:
        values[":after"] = {"S": after}
    return query.items(table, KeyConditionExpression=condition,
                       ExpressionAttributeValues=values, ConsistentRead=True)  # fmt: skip


def _failure_of(job: Item, replayed_at: str) -> Item:
    """The failed attempt a replay starts over from, kept on the job as evidence."""
    return {"receipt": job.get("receipt") or {}, "failed_at": job.get("completed_at"),
            "attempts": job.get("attempts", 0), "replayed_at": replayed_at}  # fmt: skip


def reset_for_replay(
    table: Table,
    job: Item,
    identifiers: list[Item],
    now: str,
    replay_id: str,
    listed_failed_at: str | None = None,
    listed_by: str | None = None,
) -> list[Item] | None:
    """A failed job back to pending: the first of a replay's writes (docs/decisions.md,
    "A replay writes the job, then its marks, then its message"). One conditional update of
    the job alone (still `failed`), whatever its size; None when the condition failed (it was
    replayed meanwhile). A retry of this very write (the first committed, its answer was lost)
    finds the job pending and replayed at `now`: that is ours, not another replay's, and its
    flights are returned as if the first answer had come (else nobody would send the job).
    Returns the flights it is to mark, which the job's `flights` become. The job names the
    replay that re-sent it (`replayed_by`: the replay's request id, whose record says who
    asked), in the same write.

    Its failed receipt moves to `failures` (with when it failed and when it was replayed): the
    new attempt's receipt replaces `receipt`, and the record still shows it failed first. A
    final job keeps no identifier values (PII lifecycle), so the caller passes them back in,
    read from the identities' nodes. Only the purposes no other job carries are planned (read
    first, strongly consistent): a purpose a later job carries or confirmed keeps its name, so
    the replay cannot hide that job's receipt, nor free it from `inflight` if it fails again.
    The job stays listed under `FAILED#` until its message is sent (`forget_failed`).

    `listed_failed_at` (the listing's `failed_at`, when it has one): the reset is written only
    if the job's failure is no later than that (its `completed_at`). A job that failed again
    since its listing was written has a failure its worker has not listed yet: that worker's
    after-steps are still to run (or to be run again by its message), and would free the marks
    of a round started now and list a pending job (review s22 race R2). Not equality: a listing
    written before 8308004 (2026-12-01) has the time its after-steps ran as `failed_at`, later
    than the job's end when they ran again (a redriven message, a retry), and would never be
    replayed (review s22 diff A1).

    `listed_by`: the token of the listing the replay read (`_list_failed`), kept on the job
    (`replayed_listing`; removed when not given), so a worker whose late after-steps list the
    failure again can tell it was listed, and counted, by another run first
    (`listed_again_after_replay`)."""
    system: str = job["system"]
    job_id: str = job["job_id"]
    wanted = [f for f in flights_of(job) if f.get("purposes")]
    found = batch_get(table, {(f["pk"], keys.delivery_sk(system)) for f in wanted},
                      consistent=True) if wanted else {}  # fmt: skip
    flights: list[Item] = []
    for flight in wanted:
        mark = found.get((flight["pk"], keys.delivery_sk(system)), {})
        inflight = set(mark.get("inflight", ()))
        free = [p for p in flight["purposes"]
                if p not in inflight or mark.get(job_attribute(p)) == job_id]  # fmt: skip
        if free:
            flights.append({"pk": flight["pk"], "purposes": free})
    values: Item = {":pending": "pending", ":now": now, ":one": 1, ":failed": "failed",
                    ":ids": identifiers, ":flights": flights, ":none": [], ":by": replay_id,
                    ":failure": [_failure_of(job, now)]}  # fmt: skip
    condition = "#status = :failed"
    listing = ", replayed_listing = :listing" if listed_by else ""
    if listed_by:
        values[":listing"] = listed_by
    if listed_failed_at is not None:
        values[":listed"] = listed_failed_at
        condition += " AND completed_at <= :listed"
    written = conditional_once(
        lambda: table.client.update_item(
            TableName=table.name,
            Key={"pk": {"S": keys.request_pk(job["request_id"])}, "sk": {"S": keys.job_sk(system)}},
            UpdateExpression="SET #status = :pending, updated_at = :now, replayed_at = :now,"
            " replayed_by = :by, identifiers = :ids, flights = :flights,"
            " failures = list_append(if_not_exists(failures, :none), :failure)"
            + listing
            + " ADD replays :one REMOVE lease_until, completed_at"
            + ("" if listed_by else ", replayed_listing"),
            ConditionExpression=condition,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize(values),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        lambda old: old.get("status") == "pending" and old.get("replayed_at") == now,
    )
    return flights if written else None


def mark_replayed(table: Table, job: Item, flights: list[Item], now: str) -> list[Item]:
    """A replayed job's purposes in flight again, one identity at a time, each write
    conditional as `mark_flight`'s: no other job carries the purpose, or it is named for this
    job already (a second run of the same replay). A purpose another job took since
    `reset_for_replay` read the marks keeps that job's name: the flight is tried purpose by
    purpose, and what this job could not mark leaves its `flights` (rewritten while it is
    still pending, before its message is sent), so a second failure frees nothing of the
    other job's. Returns the flights it marked."""
    system: str = job["system"]
    marked: list[Item] = []
    for flight in flights:
        if _mark_replayed(table, job, flight["pk"], flight["purposes"], now):
            marked.append(flight)
            continue
        if len(flight["purposes"]) == 1:
            continue  # its write was the whole answer: taken
        kept = [p for p in flight["purposes"]
                if _mark_replayed(table, job, flight["pk"], [p], now)]  # fmt: skip
        if kept:
            marked.append({"pk": flight["pk"], "purposes": kept})
    if marked != flights:
        conditional(
            lambda: table.client.update_item(
                TableName=table.name,
                Key={
                    "pk": {"S": keys.request_pk(job["request_id"])},
                    "sk": {"S": keys.job_sk(system)},
                },
                UpdateExpression="SET flights = :flights",
                ConditionExpression="#status = :pending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=serialize({":flights": marked, ":pending": "pending"}),
            )
        )
    return marked


def mark_again(table: Table, job: Item, now: str) -> None:
    """A job in flight (pending or submitted) marked in flight again for its `flights`, each
    write conditional as `mark_flight`'s (a purpose another job took since keeps that job's
    name): after an earlier round's after-steps, run late, freed its marks (the worker's
    `_after_final`, review s22 race R4). Writes only marks, never the job."""
    for flight in flights_of(job):
        purposes = [str(p) for p in flight.get("purposes") or ()]
        if not purposes or _mark_replayed(table, job, flight["pk"], purposes, now):
            continue
        for purpose in purposes if len(purposes) > 1 else ():
            _mark_replayed(table, job, flight["pk"], [purpose], now)


def _mark_replayed(table: Table, job: Item, pk: str, purposes: list[str], now: str) -> bool:
    """One identity's mark for a replayed job. A mark this makes (none was left) expires with
    the job; one that exists keeps its own `expires_at`."""
    expires = int(job["expires_at"]) if job.get("expires_at") else None
    flight = {"pk": pk, "purposes": purposes}
    return mark_flight(table, job["system"], flight, now, expires, job["job_id"],
                       keep_expiry=True, until=expires)  # fmt: skip


# A job as its resolver wrote it: no worker has answered or tried it (`attempts` counts the
# attempts that ended), so the resolver may still write it again or delete it.
UNTRIED = "#status = :pending AND attempts = :zero"


def replace_pending_job(table: Table, job: Item) -> bool:
    """A resolver's job written again whole (a later round of `_make_job`, with what is left
    for it), only while it is untried. False when it moved on (another run of the same event
    sent it, and a worker answered or tried it: review s22 diff A7): it stands as it is. A
    retry of this write (its answer lost) finds the item it wrote, untried, and writes again."""
    written = conditional(
        lambda: table.client.put_item(
            TableName=table.name,
            Item=serialize(job),
            ConditionExpression=UNTRIED,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize({":pending": "pending", ":zero": 0}),
        )
    )
    return written is not None


def delete_pending_job(table: Table, key: tuple[str, str]) -> bool:
    """A resolver's job deleted (`_make_job`: nothing left for it to carry), only while it is
    untried; False when it moved on, as `replace_pending_job`. A retry of this delete (its
    answer lost) finds no item: that is its own delete, True."""
    return conditional_once(
        lambda: table.client.delete_item(
            TableName=table.name,
            Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
            ConditionExpression=UNTRIED,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=serialize({":pending": "pending", ":zero": 0}),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
        lambda old: not old,
    )


def get_job(table: Table, request_id: str, system: str) -> Item | None:
    answer = table.client.get_item(
        TableName=table.name,
        Key={"pk": {"S": keys.request_pk(request_id)}, "sk": {"S": keys.job_sk(system)}},
        ConsistentRead=True,
    )
    raw = answer.get("Item")
    return deserialize(raw) if raw else None


def forget_failed(table: Table, marker: Item) -> None:
    """A listed job that needs no replay any more (finished, sent again, or nothing left to
    send): drop it from the list, unless it failed again since `marker` was read (the worker
    wrote a new `failed_at`): that failure stays listed for the next replay."""
    values: Item = {":at": marker.get("failed_at", "")}
    conditional(
        lambda: table.client.delete_item(
            TableName=table.name,
            Key={"pk": {"S": str(marker["pk"])}, "sk": {"S": str(marker["sk"])}},
            ConditionExpression="attribute_not_exists(failed_at) OR failed_at = :at",
            ExpressionAttributeValues=serialize(values),
        )
    )
