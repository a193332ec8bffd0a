"""Receipts as stored on the job: what the vendor answered, never an identifier value."""

import math

from optout.connectors.base import Outcome
from optout.store.codec import Item

COUNTER = {"done": "JobsDone", "no_record": "JobsNoRecord", "failed": "JobsFailed"}


def receipt_of(outcome: Outcome, keep_types: bool = False) -> Item:
    receipt: Item = {
        "http_status": outcome.http_status,
        "vendor_ref": outcome.vendor_ref,
        "note": outcome.note,
    }
    if outcome.identifier_types_sent or not keep_types:
        receipt["identifier_types_sent"] = list(outcome.identifier_types_sent)
    if outcome.identifier_types_attempted:
        receipt["identifier_types_attempted"] = list(outcome.identifier_types_attempted)
    if outcome.identifier_types_rejected:
        receipt["identifier_types_rejected"] = list(outcome.identifier_types_rejected)
    if outcome.records_changed:
        receipt["records_changed"] = list(outcome.records_changed)
    return receipt


def duration_text(seconds: float) -> str:
    if seconds >= 86_400 and seconds % 86_400 == 0:
        return f"{int(seconds // 86_400)} days"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} hours"
    return f"{math.ceil(seconds)} seconds"
