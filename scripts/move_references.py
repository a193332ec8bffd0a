"""Move the request references written before session 19 (`REQREF#<received_at>#<request id>`
in the partition of each identity a request names) to their key now, `XREF#...`, which sorts
after every other item of the partition (review s19 SC2). The resolver, the admin lookup and
the identity export read an identity's graph as `sk < XREF#`: an old `REQREF#` sorts between
NODE and STATE, inside that range, so until it is moved every read of the identity still
reads it (an identity named by 50,000 requests: 13 MB a read, over a partition's 3,000 RCU/s).

    python scripts/move_references.py --table optout-bridge-table            # dry run: counts
    python scripts/move_references.py --table optout-bridge-table --apply    # writes

It scans the table (a Scan reads every item: see docs/deploy.md for the cost) for the items
whose sort key starts with `REQREF#`. For each page it puts every one of them again under its
new key with the same attributes (expiry included), unless an item is there already (a run
stopped half-way), then deletes the old ones: the new item is written before the old one is
deleted, so a run stopped anywhere loses no reference (the export lists a request once with
both there). It prints a line per page with the counts and the key to go on from:
`--start-after` resumes there, `--max-pages` bounds one run. Safe to run again: a moved
reference no longer matches. A reference holds a request id, its arrival, its event type and
expiry, under an identity's keyed hash (`ID#<type>#<HMAC>`): no identifier's value, and the
script prints none of them.
"""

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "common" / "python")]

from optout.ops import keys as ops_keys  # noqa: E402 - after the layer path
from optout.store.batch import batch_get, batch_put, batch_write  # noqa: E402
from optout.store.codec import Item, deserialize  # noqa: E402
from optout.store.scan import ScanProgress, pages  # noqa: E402
from optout.store.table import Table  # noqa: E402

PAGE = 1000  # items a Scan call reads (before its filter)


@dataclass
class Progress(ScanProgress):
    found: int = 0  # references under their old key
    written: int = 0  # put under the new key (0 in a dry run)
    there: int = 0  # already under the new key (a run stopped half-way): not written again
    deleted: int = 0  # old keys deleted (0 in a dry run)

    def line(self, apply: bool) -> str:
        cursor = json.dumps(self.after, sort_keys=True) if self.after else "none (done)"
        done = (f"written {self.written}, already there {self.there}, old deleted "
                f"{self.deleted}" if apply else f"would move {self.found}")  # fmt: skip
        return (f"page {self.pages}: scanned {self.scanned}, references under REQREF# "
                f"{self.found}, {done}; --start-after '{cursor}'")  # fmt: skip


def new_key(item: Item) -> tuple[str, str]:
    """'REQREF#<received_at>#<id>' -> 'XREF#<received_at>#<id>', in the same partition."""
    rest = str(item["sk"])[len(ops_keys.LEGACY_REF_PREFIX) :]
    return str(item["pk"]), ops_keys.REF_PREFIX + rest


def move(
    client: Any,
    table: str,
    apply: bool = False,
    start_after: dict[str, Any] | None = None,
    max_pages: int | None = None,
    page_size: int = PAGE,
    report: Callable[[str], None] = print,
) -> Progress:
    """Scan from `start_after` (a key as DynamoDB gives it) for at most `max_pages` pages."""
    kwargs: dict[str, Any] = {
        "TableName": table, "Limit": page_size,
        "FilterExpression": "begins_with(sk, :old)",
        "ExpressionAttributeValues": {":old": {"S": ops_keys.LEGACY_REF_PREFIX}},
    }  # fmt: skip
    progress = Progress(after=start_after)
    for found in pages(client, kwargs, progress, max_pages, lambda: report(progress.line(apply))):
        old = [deserialize(raw) for raw in found]
        progress.found += len(old)
        if apply and old:
            _move(Table(client, table), old, progress)
    return progress


def _move(table: Table, old: list[Item], progress: Progress) -> None:
    """Every reference under its new key first (those not there yet), then the old keys gone."""
    there = batch_get(table, [new_key(item) for item in old], fields=("kind",))
    moved = [item | {"sk": new_key(item)[1]} for item in old if new_key(item) not in there]
    batch_put(table, moved)
    batch_write(table, [], [(str(item["pk"]), str(item["sk"])) for item in old])
    progress.written += len(moved)
    progress.there += len(old) - len(moved)
    progress.deleted += len(old)


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
    progress = move(client, args.table, args.apply, start, args.max_pages, args.page_size)
    if not args.apply:
        print(f"dry run: {progress.found} references would move; run again with --apply")
    return 0


if __name__ == "__main__":
    sys.exit(main())
