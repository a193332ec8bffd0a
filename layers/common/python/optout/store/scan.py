"""A whole-table Scan an operator script runs page by page, resumable from the key it printed
(scripts/keep_opt_outs.py, scripts/move_references.py)."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class ScanProgress:
    pages: int = 0
    scanned: int = 0  # items read by the Scan (before its filter)
    after: dict[str, Any] | None = None  # the last key read; None: the scan is done


def pages(
    client: Any,
    request: dict[str, Any],
    progress: ScanProgress,
    max_pages: int | None,
    report: Callable[[], None],
) -> Iterator[list[dict[str, Any]]]:
    """The items (as DynamoDB gives them) of each page, from `progress.after`, for at most
    `max_pages` pages; `report` runs once a page's items have been handled, so the key it
    prints to resume from is never ahead of the work done."""
    request = dict(request)
    if progress.after:
        request["ExclusiveStartKey"] = progress.after
    while max_pages is None or progress.pages < max_pages:
        page = client.scan(**request)
        progress.pages += 1
        progress.scanned += int(page.get("ScannedCount", 0))
        yield page.get("Items", [])
        progress.after = page.get("LastEvaluatedKey")
        report()
        if progress.after is None:
            return
        request["ExclusiveStartKey"] = progress.after
