"""`optout export`: an identity's or a date range's records, page by page, as JSONL or CSV.

JSONL keeps every record as the API gives it. CSV flattens each record to fixed columns
(`record`, `request_id`, `system`, `status`, `late`, `at`) and the rest as JSON in `detail`, so
a spreadsheet opens it, filters the late requests, and nothing is lost.
"""

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from optout_cli.client import Api
from optout_cli.errors import CliError

Format = Literal["jsonl", "csv"]
CSV_COLUMNS = ("record", "request_id", "system", "status", "late", "at", "detail")
TIME_FIELDS = ("received_at", "completed_at", "denied_at", "resolved_at", "updated_at", "at",
               "answered_at")  # fmt: skip
PRIVATE_MODE = 0o600  # read and write by the owner only
OnPage = Callable[[dict[str, Any]], None]  # the page's progress block


@dataclass(frozen=True)
class Exported:
    records: int
    complete_through: str | None  # identity exports: requests received after it may be missing


def export(
    api: Api, route: str, body: dict[str, Any], out: Path, fmt: Format, on_page: OnPage
) -> Exported:
    """Every page into `out`, written beside it and renamed at the end: a failed export leaves
    no file that could pass for a complete one. The file is the owner's alone (0600): an
    identity export holds that person's identifier and history (review s18 S7). An existing
    `out` is replaced by it, so its old mode is not kept."""
    written = 0
    partial = out.with_name(out.name + ".part")
    try:
        handle = _owner_only(partial)
    except OSError as error:
        raise CliError(f"{out}: {error.strerror}") from None
    try:
        with handle:
            writer = _writer(handle, fmt)
            cursor: str | None = None
            while True:
                page = api.post(route, {**body, **({"cursor": cursor} if cursor else {})})
                for record in page.get("records", []):
                    writer(record)
                    written += 1
                on_page(page.get("progress") or {})
                cursor = page.get("cursor")
                if not cursor:
                    break
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Exported(written, page.get("complete_through"))


def _owner_only(path: Path) -> TextIO:
    """`path` opened for writing, created 0600 (and made so if a crashed run left it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
        return open(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise


def _writer(handle: TextIO, fmt: Format) -> Callable[[dict[str, Any]], None]:
    if fmt == "jsonl":

        def line(record: dict[str, Any]) -> None:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

        return line
    table = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
    table.writeheader()

    def row(record: dict[str, Any]) -> None:
        at = next((record[k] for k in TIME_FIELDS if record.get(k)), None)
        fixed = {"record", "request_id", "system", "status", "late"}
        detail = {k: v for k, v in record.items() if k not in fixed}
        late = record.get("late")  # request records only: true, false; else left empty
        table.writerow({"record": record.get("record"), "request_id": record.get("request_id"),
                        "system": record.get("system"), "status": record.get("status"),
                        "late": "" if late is None else str(bool(late)).lower(),
                        "at": at, "detail": json.dumps(detail, sort_keys=True)})  # fmt: skip

    return row
