"""Remove `expires_at` from opted-out STATE items written before opt-outs were kept, and
raise the expiry of imported requests' records written before imports counted it from the import.

Since the change that keeps opt-outs (docs/decisions.md, "An opt-out is kept: the STATE item,
not the node"), the resolver writes a STATE item that opts out of anything without an expiry,
and drops the expiry of an older one the next time it touches that identity. An identity it
never touches again would still lose its opt-out to DynamoDB's TTL: this script clears those.

    python scripts/keep_opt_outs.py --table optout-bridge-table            # dry run: counts
    python scripts/keep_opt_outs.py --table optout-bridge-table --apply    # writes

It scans the table (a Scan reads every item: see docs/deploy.md for the cost), keeps the
STATE items that still carry `expires_at` and opt out of some purpose, and removes
`expires_at` from each with an UpdateItem conditioned on the item still being an opted-out
STATE (an opt-in written meanwhile keeps its expiry; an item deleted meanwhile is not created
again). It prints a line per page with the counts and the key to go on from: `--start-after`
resumes there, `--max-pages` bounds one run. Safe to run again: a cleared item no longer
matches. Of STATE items it reads only keys and `opt_out`, never an identifier's value: the key
it prints to resume from is a request id or an identity's keyed hash (`ID#<type>#<HMAC>`).

The same Scan finds imported requests' EVENT items (`evidence.imported`, which only
`optout import` writes). Before 2026-12-01 (session 18, review s18 S1) an import's EVENT, and
the FOLDED and reference items that copy its expiry, expired RecordRetentionDays after the row's
old `received_at`: a row 700 days old at retention 731 kept its record 31 days. Its RESOLUTION,
written when it was resolved here, expires the retention after that. For each imported EVENT
whose `expires_at` is earlier than its RESOLUTION's (one consistent Query of the request's
partition), it sets the references' (under each identity the event names: `XREF#`, or
`REQREF#` while scripts/move_references.py has not moved them), the FOLDED's and last the
EVENT's `expires_at` to the RESOLUTION's, each with an UpdateItem conditioned on the item
existing and expiring earlier: it only raises, never creates an item nor gives one without
an expiry an expiry; the EVENT last, so a run stopped half-way finds the request again. An import
made since then expires seconds before its RESOLUTION and is raised by those seconds; an old
import not resolved yet is left (run the script again once it is). The watch's
reminder takes the EVENT's expiry at its next check. Of an imported EVENT's `identifiers` it uses
the types and keyed hashes only (it reads the list whole) and prints nothing.
"""

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "common" / "python")]

from optout.ops import keys as ops_keys  # noqa: E402 - after the layer path
from optout.purposes import ALL_PURPOSES  # noqa: E402
from optout.store import keys  # noqa: E402
from optout.store.scan import ScanProgress, pages  # noqa: E402

PAGE = 1000  # items a Scan call reads (before its filter)


@dataclass
class Progress(ScanProgress):
    found: int = 0  # opted-out STATE items with an expiry
    cleared: int = 0  # expiry removed (0 in a dry run)
    changed: int = 0  # no longer an opted-out STATE when written: left as they are
    imports: int = 0  # imported EVENTs expiring before their RESOLUTION
    raised: int = 0  # their EVENT, FOLDED and REQREF items raised (0 in a dry run)
    kept: int = 0  # of those, absent or already expiring as late: left as they are

    def line(self, apply: bool) -> str:
        done = "cleared" if apply else "would clear"
        cursor = json.dumps(self.after, sort_keys=True) if self.after else "none (done)"
        raised = f"items raised {self.raised}, left {self.kept}" if apply else "would raise"
        return (f"page {self.pages}: scanned {self.scanned}, opted out with an expiry "
                f"{self.found}, {done} {self.cleared if apply else self.found}, changed since "
                f"{self.changed}; imports expiring before their resolution {self.imports}, "
                f"{raised}; --start-after '{cursor}'")  # fmt: skip


def _opted_out() -> tuple[str, dict[str, str], dict[str, Any]]:
    """An expression true for a STATE item that opts out of any purpose."""
    names: dict[str, str] = {f"#p{n}": p for n, p in enumerate(ALL_PURPOSES)}
    test = " OR ".join(f"opt_out.{name} = :yes" for name in names)
    values: dict[str, Any] = {":state": {"S": keys.STATE_SK}, ":yes": {"BOOL": True}}
    return f"sk = :state AND ({test})", names, values


def keep(
    client: Any,
    table: str,
    apply: bool = False,
    start_after: dict[str, Any] | None = None,
    max_pages: int | None = None,
    page_size: int = PAGE,
    report: Callable[[str], None] = print,
) -> Progress:
    """Scan from `start_after` (a key as DynamoDB gives it) for at most `max_pages` pages."""
    test, names, values = _opted_out()
    imported, projection = _imported_events()
    kwargs: dict[str, Any] = {
        "TableName": table, "Limit": page_size,
        "FilterExpression": f"({test} AND attribute_exists(expires_at)) OR ({imported})",
        "ProjectionExpression": projection,
        "ExpressionAttributeNames": {**names, "#ev": "evidence"},
        "ExpressionAttributeValues": {**values, ":event": {"S": keys.EVENT_SK}},
    }  # fmt: skip
    progress = Progress(after=start_after)
    for found in pages(client, kwargs, progress, max_pages, lambda: report(progress.line(apply))):
        for item in found:
            if item["sk"]["S"] == keys.EVENT_SK:
                _raise_import(client, table, item, apply, progress)
                continue
            progress.found += 1
            if apply:
                _clear(client, table, item, test, names, values, progress)
    return progress


def _clear(
    client: Any, table: str, item: dict[str, Any], test: str, names: dict[str, str],
    values: dict[str, Any], progress: Progress,
) -> None:  # fmt: skip
    try:
        client.update_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]},
                           UpdateExpression="REMOVE expires_at", ConditionExpression=test,
                           ExpressionAttributeNames=names,
                           ExpressionAttributeValues=values)  # fmt: skip
        progress.cleared += 1
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        progress.changed += 1  # opted back in (or gone) since the scan read it


def _imported_events() -> tuple[str, str]:
    """The filter for an imported request's EVENT, and the Scan's projection. An import names
    each identity in `identifiers` (its asserts pair those, it has no links). The list is read
    whole: moto does not project `identifiers[n].key`, so a projection it cannot test is not
    relied on; only the types and keyed hashes are used, and nothing of it is printed."""
    test = "sk = :event AND attribute_exists(#ev.imported)"
    return test, "pk, sk, expires_at, request_id, received_at, identifiers"


def _raise_import(
    client: Any, table: str, event: dict[str, Any], apply: bool, progress: Progress
) -> None:
    """An imported EVENT expiring before its RESOLUTION: its records raised to the RESOLUTION's
    expiry, the EVENT last (a run stopped half-way finds it again)."""
    pk, expires = event["pk"], int(event.get("expires_at", {}).get("N", 0))
    found = client.query(
        TableName=table, KeyConditionExpression="pk = :pk", ConsistentRead=True,
        FilterExpression="sk IN (:res, :folded)", ProjectionExpression="sk, expires_at",
        ExpressionAttributeValues={":pk": pk, ":res": {"S": keys.RESOLUTION_SK},
                                   ":folded": {"S": ops_keys.FOLDED_SK}},
    )  # fmt: skip
    by_sk = {i["sk"]["S"]: i for i in found.get("Items", [])}
    resolution = by_sk.get(keys.RESOLUTION_SK, {}).get("expires_at", {}).get("N")
    if resolution is None or int(resolution) <= expires:
        return  # not resolved yet (a run after its resolution raises it), or kept as long
    progress.imports += 1
    if not apply:
        return
    received, request_id = event["received_at"]["S"], event["request_id"]["S"]
    # a reference is under its key of session 19 or, not moved yet, its older one
    reqref = (
        ops_keys.ref_sk(received, request_id),
        ops_keys.legacy_ref_sk(received, request_id),
    )
    named = dict.fromkeys(
        keys.identity_pk(i["M"]["type"]["S"], i["M"]["key"]["S"])
        for i in event.get("identifiers", {}).get("L", [])
    )
    targets = [[(owner, sk) for sk in reqref] for owner in named]
    targets += [[(pk["S"], ops_keys.FOLDED_SK)], [(pk["S"], keys.EVENT_SK)]]
    for forms in targets:
        if any(_raised(client, table, key, int(resolution)) for key in forms):
            progress.raised += 1
        else:
            progress.kept += 1  # absent (no FOLDED yet, deleted meanwhile) or already as late


def _raised(client: Any, table: str, key: tuple[str, str], expires: int) -> bool:
    """Set the item's expiry to `expires` if it exists and expires earlier (never lower it,
    never give an item kept for good an expiry, never create an item)."""
    try:
        client.update_item(TableName=table, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                           UpdateExpression="SET expires_at = :t",
                           ConditionExpression="attribute_exists(pk) AND expires_at < :t",
                           ExpressionAttributeValues={":t": {"N": str(expires)}})  # fmt: skip
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="the stack's table (<stack>-table)")
    parser.add_argument("--apply", action="store_true", help="write (default: a dry run)")
    parser.add_argument("--start-after", help="the key a previous run printed, to resume")
    parser.add_argument("--max-pages", type=int, help="stop after this many Scan pages")
    parser.add_argument("--page-size", type=int, default=PAGE, help="items per Scan call")
    parser.add_argument("--region", help="the stack's region (default: the AWS config's)")
    args = parser.parse_args(argv)
    client = boto3.client("dynamodb", region_name=args.region)
    start = json.loads(args.start_after) if args.start_after else None
    progress = keep(client, args.table, args.apply, start, args.max_pages, args.page_size)
    if not args.apply:
        print(
            f"dry run: {progress.found} would be cleared, {progress.imports} imported "
            "requests' records would be raised; run again with --apply to write"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
