"""`optout import FILE.csv`: historical opt-outs from another tool, in resumable batches.

Columns (docs/operations.md, "Importing"): `external_id` and `received_at` are required, with
at least one of `email`, `phone`, `customer_id`, `device_id` per row; optional `purposes`
(`;`-separated), `jurisdiction`, `source` (banner, webform, gpc, agent) and `completed_at`.

Batches of up to 100 rows (and under the API's 16 KiB body) go to `POST /v1/admin/imports`.
After each acknowledged batch a state file beside the CSV (`FILE.csv.import-state.json`)
records how far the file is done and what was rejected, so a run killed halfway resumes where
it stopped; a batch sent but not recorded is simply sent again, and the server's request ids
(derived from `external_id`) make it store nothing twice. Rejected rows are reported by line,
field and reason, never with their values; all of them are written to `FILE.csv.rejected.csv`.
Every row taken (stored, or a duplicate of one stored before) is written to
`FILE.csv.request-ids.csv` with its line, `external_id` and request id (no identifier value),
so an operator goes from the other tool's id to `optout status`.

The state file also names the target (the API's base URL: the local stack's, or a deployed
stack's `IamApiUrl`). Resuming against another target would skip rows it never got and report
success, so the CLI refuses and names `--restart` (review s18 newcomer F1). Against the same URL,
a resumed run first reads the last request id an earlier run listed: a stack that no longer
holds it (a restarted local stack keeps nothing) is refused the same way.
"""

import csv
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optout_cli.client import Api
from optout_cli.errors import CliError

REQUIRED = ("external_id", "received_at")
IDENTIFIERS = ("email", "phone", "customer_id", "device_id")
OPTIONAL = ("purposes", "jurisdiction", "source", "completed_at")
COLUMNS = (*REQUIRED, *IDENTIFIERS, *OPTIONAL)
MAX_ROWS = 100
MAX_BODY_BYTES = 15_000  # the API refuses bodies over 16 KiB
ROUTE = "/v1/admin/imports"
REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Progress = Callable[[int], None]  # rows handled since the last call


@dataclass
class ImportState:
    """What the state file holds: the file's digest, the API it went to, the last line done,
    and the totals."""

    digest: str
    target: str
    line_done: int = 1  # the header
    stored: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: int | None = None

    def to_json(self) -> str:
        return json.dumps({"digest": self.digest, "target": self.target,
                           "line_done": self.line_done,
                           "stored": self.stored, "duplicates": self.duplicates,
                           "rejected": self.rejected})  # fmt: skip


def state_path(source: Path) -> Path:
    return source.with_name(source.name + ".import-state.json")


def rejected_path(source: Path) -> Path:
    return source.with_name(source.name + ".rejected.csv")


def request_ids_path(source: Path) -> Path:
    return source.with_name(source.name + ".request-ids.csv")


def count_rows(source: Path) -> int:
    """The data rows, after checking the header (so a wrong file fails before any bar shows)."""
    with _open(source) as handle:
        reader = csv.reader(handle)
        _check_header(next(reader, None), source)
        return sum(1 for _ in reader)


def run_import(api: Api, source: Path, restart: bool, progress: Progress) -> ImportState:
    state = _load_state(source, restart, api.target.base_url)
    if state.resumed_from:
        _check_still_stored(api, source)
    ids = _RequestIds(request_ids_path(source), fresh=state.line_done <= 1)
    for batch, last_line in _batches(source, state.line_done, state.rejected):
        if batch:
            answer = api.post(ROUTE, {"rows": batch})
            state.stored += int(answer["stored"])
            state.duplicates += int(answer["duplicates"])
            state.rejected += [dict(r) for r in answer["rejected"]]
            ids.add(answer.get("request_ids") or [])  # before the state: a re-sent batch
        handled = last_line - state.line_done
        state.line_done = last_line
        _save_state(source, state)
        progress(handled)
    _write_rejected(source, state.rejected)
    ids.settle()
    return state


class _RequestIds:
    """`FILE.csv.request-ids.csv`: line, external_id, request_id of each row taken, appended
    per batch as the API answers (a resumed run goes on with it; a fresh one starts it over).
    A batch answered but not noted in the state is sent again, so `settle` keeps each line
    once, in line order."""

    FIELDS = ("line", "external_id", "request_id")

    def __init__(self, path: Path, fresh: bool) -> None:
        self.path = path
        if fresh:
            path.unlink(missing_ok=True)

    def add(self, rows: list[dict[str, Any]]) -> None:
        if not rows:  # an API before 2026-12-01 answers no ids
            return
        new = not self.path.is_file()
        with self.path.open("a", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(self.FIELDS)
            writer.writerows([row.get(k) for k in self.FIELDS] for row in rows)

    def settle(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8", newline="") as handle:
            rows = {(r["line"], r["request_id"]): r for r in csv.DictReader(handle)}
        ordered = sorted(rows.values(), key=lambda r: int(r["line"] or 0))
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.FIELDS)
            writer.writeheader()
            writer.writerows(ordered)
        os.replace(temporary, self.path)


def _batches(
    source: Path, line_done: int, rejected: list[dict[str, Any]]
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """(rows, last line) per batch, skipping lines already done; a row too big to send is
    rejected here (with its line) and counts as handled."""
    batch: list[dict[str, Any]] = []
    size = 2
    last = line_done
    with _open(source) as handle:
        reader = csv.DictReader(handle)
        _check_header(reader.fieldnames, source)
        for row in reader:
            line = reader.line_num
            if line <= line_done:
                continue
            if None in row:  # more cells than the header names
                rejected.append(_local_reject(line, "row", "more cells than columns"))
                last = line
                continue
            cells = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
            item = {"line": line, **cells}
            item_size = len(json.dumps(item, separators=(",", ":")).encode()) + 1
            if item_size > MAX_BODY_BYTES - 20:
                rejected.append(_local_reject(line, "row", "row too long"))
                last = line
                continue
            if batch and (len(batch) == MAX_ROWS or size + item_size > MAX_BODY_BYTES):
                yield batch, last
                batch, size = [], 2
            batch.append(item)
            size += item_size
            last = line
    yield batch, last


def _check_header(fields: Any, source: Path) -> None:
    """Unknown columns are named by position, never by their text: a file saved without its
    header line has a data row here, and its first cell may be an email."""
    if not fields:
        raise CliError(f"{source.name}: empty file (the first line names the columns)")
    names = [str(f).strip() for f in fields]
    unknown = [n for n, name in enumerate(names, 1) if name not in COLUMNS]
    if unknown:
        raise CliError(
            f"{source.name}: the first line's column {unknown[0]} is not a column name "
            f"(is the header line missing? columns: {', '.join(COLUMNS)})"
        )
    repeated = [n for n, name in enumerate(names, 1) if name in names[: n - 1]]
    if repeated:
        # csv.DictReader would keep only the last of two equal names: a value lost unseen.
        name = names[repeated[0] - 1]
        raise CliError(
            f"{source.name}: column {name!r} appears twice (columns {names.index(name) + 1} "
            f"and {repeated[0]}); one column per name, one identifier per row"
        )
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise CliError(f"{source.name}: missing column {missing[0]!r}")
    if not any(n in names for n in IDENTIFIERS):
        raise CliError(f"{source.name}: no identifier column ({', '.join(IDENTIFIERS)})")


def _open(source: Path) -> Any:
    try:
        handle = source.open(encoding="utf-8-sig", newline="")
        handle.read(1)
        handle.seek(0)
    except FileNotFoundError:
        raise CliError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{source}: is a directory, not a CSV file") from None
    except UnicodeDecodeError:
        raise CliError(f"{source.name}: not UTF-8 text (save the CSV as UTF-8)") from None
    except OSError as error:
        raise CliError(f"{source}: {error.strerror}") from None
    return handle


def _digest(source: Path) -> str:
    sha = hashlib.sha256()
    with source.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _load_state(source: Path, restart: bool, target: str) -> ImportState:
    digest = _digest(source) if source.is_file() else ""
    path = state_path(source)
    if restart or not path.is_file():
        return ImportState(digest, target)
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise CliError(f"{path.name}: unreadable; pass --restart to start over") from None
    if saved.get("digest") != digest:
        raise CliError(
            f"{path.name} belongs to another version of {source.name}: pass --restart "
            "(rows already imported are skipped as duplicates)"
        )
    line = int(saved.get("line_done", 1))
    if line > 1 and saved.get("target") != target:  # no line skipped: no harm
        _refuse_other_target(path, saved.get("target"), target, line)
    return ImportState(digest, target, line, int(saved.get("stored", 0)),
                       int(saved.get("duplicates", 0)), list(saved.get("rejected", [])),
                       resumed_from=line if line > 1 else None)  # fmt: skip


def _refuse_other_target(path: Path, saved: Any, target: str, line: int) -> None:
    """Refuse rather than start over: an operator who ran the same command with the wrong
    `--base-url`/`--stack-name` learns it, and the other target's request-ids file stays."""
    lines = "line 2" if line == 2 else f"lines 2-{line}"
    whose = (
        f"{path} was written by an import into {saved}, not {target}"
        if saved
        else f"{path} does not say which stack its rows went to (an older optout wrote it)"
    )
    raise CliError(
        f"{whose}: resuming would skip {lines} on {target}. Pass --restart to send the "
        f"whole file there (rows it already holds are skipped as duplicates)"
    )


def _check_still_stored(api: Api, source: Path) -> None:
    """One status read of the last request id an earlier run listed: a stack that lost its
    data (or another stack at the same URL) must not have those rows skipped."""
    last = _last_listed(request_ids_path(source))
    if last is None:  # nothing was taken yet (or an API before 2026-12-01 listed no ids)
        return
    line, request_id = last
    answer = api.call("GET", f"/v1/admin/requests/{request_id}", expect=(200, 404))
    if isinstance(answer, dict) and "error" in answer:
        raise CliError(
            f"{api.target.base_url} holds no request {request_id} (line {line} of "
            f"{source.name}, stored by an earlier run): the stack lost its data (a restarted "
            "local stack keeps none) or is not the one the rows went to, so resuming from "
            f"{state_path(source)} would skip rows it never kept. Pass --restart to send the "
            "whole file again (rows it already holds are skipped as duplicates)"
        )


def _last_listed(path: Path) -> tuple[int, str] | None:
    """(line, request id) of the highest line in the request-ids file, if any."""
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        listed = [(r.get("line") or "", r.get("request_id") or "") for r in csv.DictReader(handle)]
    rows = [(int(n), i) for n, i in listed if n.isdigit() and REQUEST_ID.fullmatch(i)]
    return max(rows) if rows else None


def _save_state(source: Path, state: ImportState) -> None:
    """Atomically: a crash leaves the old state or the new one, never half of one."""
    path = state_path(source)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(state.to_json(), encoding="utf-8")
    os.replace(temporary, path)


def _write_rejected(source: Path, rejected: list[dict[str, Any]]) -> None:
    path = rejected_path(source)
    if not rejected:
        path.unlink(missing_ok=True)
        return
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["line", "field", "code", "reason"])
        writer.writeheader()
        for row in sorted(rejected, key=lambda r: int(r.get("line") or 0)):
            writer.writerow({k: row.get(k) for k in ("line", "field", "code", "reason")})


def _local_reject(line: int, field_name: str, reason: str) -> dict[str, Any]:
    return {"line": line, "field": field_name, "code": "invalid_row", "reason": reason}
