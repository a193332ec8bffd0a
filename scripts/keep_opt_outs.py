"""Remove `expires_at` from opted-out STATE items written before opt-outs were kept.

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
matches. It reads only keys and `opt_out`, never an identifier's value: the key it prints to
resume from is an identity's keyed hash (`ID#<type>#<HMAC>`), as in the table.
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

from optout.purposes import ALL_PURPOSES  # noqa: E402 - after the layer path
from optout.store import keys  # noqa: E402

PAGE = 1000  # items a Scan call reads (before its filter)


@dataclass
class Progress:
    pages: int = 0
    scanned: int = 0  # items read by the Scan
    found: int = 0  # opted-out STATE items with an expiry
    cleared: int = 0  # expiry removed (0 in a dry run)
    changed: int = 0  # no longer an opted-out STATE when written: left as they are
    after: dict[str, Any] | None = None  # the last key read; None: the scan is done

    def line(self, apply: bool) -> str:
        done = "cleared" if apply else "would clear"
        cursor = json.dumps(self.after, sort_keys=True) if self.after else "none (done)"
        return (f"page {self.pages}: scanned {self.scanned}, opted out with an expiry "
                f"{self.found}, {done} {self.cleared if apply else self.found}, changed since "
                f"{self.changed}; --start-after '{cursor}'")  # fmt: skip


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
    kwargs: dict[str, Any] = {
        "TableName": table, "Limit": page_size,
        "FilterExpression": f"{test} AND attribute_exists(expires_at)",
        "ProjectionExpression": "pk, sk", "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }  # fmt: skip
    if start_after:
        kwargs["ExclusiveStartKey"] = start_after
    progress = Progress(after=start_after)
    while max_pages is None or progress.pages < max_pages:
        page = client.scan(**kwargs)
        progress.pages += 1
        progress.scanned += int(page.get("ScannedCount", 0))
        for item in page.get("Items", []):
            progress.found += 1
            if apply:
                _clear(client, table, item, test, names, values, progress)
        progress.after = page.get("LastEvaluatedKey")
        report(progress.line(apply))
        if progress.after is None:
            break
        kwargs["ExclusiveStartKey"] = progress.after
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
        print(f"dry run: {progress.found} would be cleared; run again with --apply to write")
    return 0


if __name__ == "__main__":
    sys.exit(main())
