"""Key layout of the single table. Every identifier appears only as its keyed hash.

pk                      sk                      item
REQ#<request_id>        EVENT                   a captured event (stream -> resolver)
REQ#<request_id>        RESOLUTION              the resolver's outcome for the event
REQ#<request_id>        JOB#<system>            one downstream job and its receipt
REQ#<request_id>        LATER#<system>#<job id> a failed job of the request (own or cited) whose
                                                every flight later jobs took and the vendor
                                                confirmed, recorded once by the deadline watch
                                                (optout/ops/later.py)
REQ#<request_id>        REDERIVED#<request_id>  jobs the resolver's flush (or a backfill step)
                                                made under a request id of their own (no
                                                EVENT): the sweep checks them with this request
                                                (a backfill step's: the step's id, its jobs'
                                                ids in `request_ids`, one per purpose set)
ID#<type>#<hash>        NODE                    own choices, GPC, value; `version` counts every
                                                change a derived state reads (choices, links,
                                                opt-outs carried in)
ID#<type>#<hash>        STATE                   effective state (what GET /v1/consent reads)
ID#<type>#<hash>        LINK#<type>#<hash>      verified edge (written both ways)
ID#<type>#<hash>        ASSERTS#<type>#<hash>   asserted edge, in the asserter's partition
ID#<type>#<hash>        ASSERTED#<type>#<hash>  the same edge in the asserted identity's
                                                partition, carrying the asserter's opt-outs
ID#<type>#<hash>        DELIVERY#<system>       purposes a job carries or carried to the
                                                system (inflight), naming the job; the job's
                                                status says whether it was confirmed
HOLD                    <request_id>#<n>        a verified link held for review (cluster cap)
HOLD                    COUNT#ID#<type>#<hash>  an account's count of undecided login holds
                                                (store/holds.py `put_counted`; holds37)

Index ByDay (sparse: EVENT items only): day_pk = RCV#<yyyy-mm-dd>#<first hex digit of the
request id>, sort key received_at; projects request_id, deadline, source, event_type.
FAILED#<system>         <job_id>                a job that failed for good, for replay
RETIRED                 <system>                an operator's retirement of a system: its
                                                jobs made before `retired_at` and not done
                                                are no longer owed (optout/retire.py)
BACKFILL                <yyyy>#<backfill id>    an operator's backfill: system, resend, when
                                                (optout/ops/backfills.py)
BACKFILL                <yyyy>#<backfill id>#<hex>  one step's line: its jobs and the identities
                                                they carry (before 2026-12-03: `steps.<hex>`
                                                of the record)
"""

from optout.identifiers import IdType

EVENT_SK = "EVENT"
RESOLUTION_SK = "RESOLUTION"
NODE_SK = "NODE"
STATE_SK = "STATE"
JOB_PREFIX = "JOB#"
LINK_PREFIX = "LINK#"
ASSERTS_PREFIX = "ASSERTS#"
ASSERTED_PREFIX = "ASSERTED#"
DELIVERY_PREFIX = "DELIVERY#"
REDERIVED_PREFIX = "REDERIVED#"
LATER_PREFIX = "LATER#"
HOLD_PK = "HOLD"
RETIRED_PK = "RETIRED"
BACKFILL_PK = "BACKFILL"


def request_pk(request_id: str) -> str:
    return f"REQ#{request_id}"


def job_sk(system: str) -> str:
    return f"{JOB_PREFIX}{system}"


def job_item_key(system: str, job_id: str) -> tuple[str, str]:
    """The key of a job's item from its id, `<request id>:<system>` (the request id may be a
    further one, `<request>~<hex>`: the item is in that id's own partition)."""
    return request_pk(job_id.rsplit(":", 1)[0]), job_sk(system)


def later_sk(system: str, job_id: str) -> str:
    """A failed job's later delivery under a request that relies on it (ops/later.py)."""
    return f"{LATER_PREFIX}{system}#{job_id}"


def rederived_sk(request_id: str) -> str:
    return f"{REDERIVED_PREFIX}{request_id}"


# A request's further jobs' marker, `REDERIVED#<request>~split` (its `kind` too), written
# before they are made (resolver `_request_jobs`)
SPLIT_MARK = "split"


def split_marker_sk(request_id: str) -> str:
    return rederived_sk(own_request_id(request_id, SPLIT_MARK))


def identity_pk(id_type: IdType | str, key: str) -> str:
    return f"ID#{id_type}#{key}"


def link_sk(id_type: IdType | str, key: str) -> str:
    return f"{LINK_PREFIX}{id_type}#{key}"


def edge_sk(prefix: str, pk: str) -> str:
    """An edge's sort key names the other end: 'ASSERTS#' + 'email#ab12'."""
    return prefix + pk.split("#", 1)[1]


def edge_end(prefix: str, sk: str) -> str:
    """The identity pk an edge's sort key names: 'LINK#email#ab12' -> 'ID#email#ab12'."""
    return "ID#" + sk[len(prefix) :]


def delivery_sk(system: str) -> str:
    return f"{DELIVERY_PREFIX}{system}"


def failed_pk(system: str) -> str:
    return f"FAILED#{system}"


def retired_key(system: str) -> tuple[str, str]:
    """Where a system's retirement is kept: read with a request's cited jobs (`covering`)."""
    return (RETIRED_PK, system)


OWN_REQUEST_SEP = "~"  # '<owner>~<12 hex>': a request id of its own, for jobs no event made


def own_request_id(owner: str, token: str) -> str:
    """The request id of jobs made by `owner` outside its own event (a backfill step, jobs
    made after deriving again): their proof names who made them."""
    return f"{owner}{OWN_REQUEST_SEP}{token}"


def own_request_prefix(owner: str) -> str:
    """What every `own_request_id` of `owner` starts with (a backfill chain's jobs)."""
    return f"{owner}{OWN_REQUEST_SEP}"


def made_by(request_id: str) -> str | None:
    """The owner of a request id of its own; None for a request's own id."""
    owner, sep, _ = request_id.partition(OWN_REQUEST_SEP)
    return owner if sep else None


def backfill_sk(year: int | str, backfill_id: str) -> str:
    """A backfill's record, under the UTC year it started in: a year's backfills are one
    Query (`begins_with(sk, "<yyyy>#")`)."""
    return f"{year}#{backfill_id}"


def backfill_step_sk(record: str, step: str) -> str:
    """One step's line, right after its record (`record`: its `backfill_sk`) in the year's
    Query (ops/backfills.py `record_step`)."""
    return f"{record}#{step}"


def hold_sk(request_id: str, n: int) -> str:
    return f"{request_id}#{n:03d}"


def hold_id(sk: str) -> str:
    """The id operators use in URLs: '<request_id>.<n>' (no '#', which URLs reserve)."""
    request_id, n = sk.rsplit("#", 1)
    return f"{request_id}.{n}"


def hold_sk_of(hold_id_: str) -> str:
    request_id, n = hold_id_.rsplit(".", 1)
    return f"{request_id}#{n}"


def split_identity_pk(pk: str) -> tuple[str, str]:
    """'ID#email#ab12' -> ('email', 'ab12')."""
    _, id_type, key = pk.split("#", 2)
    return id_type, key


DAY_INDEX = "ByDay"
DAY_SHARDS = "0123456789abcdef"  # request ids are UUIDs: their first digit spreads the writes


def day_pk(day: str, request_id: str) -> str:
    """'2026-11-29', 'b3…' -> 'RCV#2026-11-29#b' (the ByDay index's partition)."""
    return f"RCV#{day}#{request_id[0]}"


# The receipt's lists of keyed identities (`identity_pk`) a job never sent: for lack of a form
# the vendor can match, and by the vendor's answer (delivery/receipts.py writes them, review
# s28 P1); read by the frees (store/delivery.py) and the proofs (status.py).
UNSENT_LISTS = ("identities_unformed", "identities_not_sent")

# The RESOLUTION's fields that name keyed identities (`identity_pk`): the identities not named
# whose marks its citations came from (resolver `_resolve`, read by status.py `proofs`). No
# view of a request shows them (admin `request_detail`, the export's resolution record): a
# derivation can reach identities of someone the requester named (review s28 p1 F1, F2).
RESOLUTION_KEYED = ("cited_linked",)
