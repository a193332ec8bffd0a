"""Receipts as stored on the job: what the vendor answered, never an identifier value."""

import math

from optout.connectors.base import REF_SEPARATOR, Outcome
from optout.connectors.errors import clipped
from optout.store.codec import Item
from optout.store.keys import UNSENT_LISTS, identity_pk

COUNTER = {"done": "JobsDone", "no_record": "JobsNoRecord", "failed": "JobsFailed"}
# Bounds on the vendor text a receipt keeps (errors: REASON_MAX, 200), so that a vendor's
# answer cannot grow the job item towards DynamoDB's 400 KB, where the receipt's write fails
# after the vendor acted. A note is a few codes and counts; each reference is at most
# REFERENCE_MAX (128) already, and a job's references (one per part or call) are cut here.
NOTE_MAX = 200
VENDOR_REF_MAX = 512


def receipt_of(outcome: Outcome, keep_types: bool = False, job: Item | None = None) -> Item:
    """`job`: the job item sent (its identifiers, as `service.to_job` read them): the keyed
    identities of `outcome.unformed_at` and `not_sent_at`, never their values."""
    receipt: Item = {
        "http_status": outcome.http_status,
        "vendor_ref": bounded_ref(outcome.vendor_ref, outcome.status),
        "note": clipped(outcome.note, NOTE_MAX) if outcome.note else outcome.note,
    }
    if outcome.identifier_types_sent or not keep_types:
        receipt["identifier_types_sent"] = list(outcome.identifier_types_sent)
    if outcome.identifier_types_attempted:
        receipt["identifier_types_attempted"] = list(outcome.identifier_types_attempted)
    if outcome.identifier_types_rejected:
        receipt["identifier_types_rejected"] = list(outcome.identifier_types_rejected)
        # Always beside it (an empty list too): a receipt written before 2026-12-03 has no
        # such field, and the public view reads its refused types as the vendor's answer
        # (status.SystemProof.unformed).
        receipt["identifier_types_unformed"] = list(outcome.identifier_types_unformed)
    # Which identities were never sent, not only which types (review s28 P1): a job of
    # several people sent one's email and not another's. Keyed hashes, as on the job.
    valued = [i for i in (job or {}).get("identifiers") or () if i.get("value")]
    for name, at in zip(UNSENT_LISTS, (outcome.unformed_at, outcome.not_sent_at), strict=True):
        found = {identity_pk(valued[n]["type"], valued[n]["key"]) for n in at if n < len(valued)}
        if found:
            receipt[name] = sorted(found)
    if outcome.sent_to:  # the types went to another party than the system (a UID2 operator)
        receipt["sent_to"] = outcome.sent_to
    if outcome.records_changed:
        receipt["records_changed"] = list(outcome.records_changed)
    return receipt


def bounded_ref(refs: str | None, status: str | None) -> str | None:
    """A job's vendor references, whole ones only, at most VENDOR_REF_MAX characters. A
    submitted job's are kept whole: confirm() asks about each (Segment's and Google's, the
    asynchronous ones, send a job of at most 99 identifiers in one call: one reference, and
    Google one per 10 user lists)."""
    if refs is None or len(refs) <= VENDOR_REF_MAX or status == "submitted":
        return refs
    kept = refs[: VENDOR_REF_MAX - 2].rpartition(REF_SEPARATOR)[0]
    return f"{kept}{REF_SEPARATOR}…" if kept else None


def duration_text(seconds: float) -> str:
    """A limit in its largest whole unit, for a receipt's note a person reads."""
    if seconds >= 86_400 and seconds % 86_400 == 0:
        return _count(int(seconds // 86_400), "day")
    if seconds >= 3600 and seconds % 3600 == 0:
        return _count(int(seconds // 3600), "hour")
    return _count(math.ceil(seconds), "second")


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
