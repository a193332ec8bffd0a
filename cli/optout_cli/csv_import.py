"""`optout import FILE.csv`: historical opt-outs from another tool, in resumable batches.

Columns (docs/operations.md, "Importing"): `external_id` and `received_at` are required, with
at least one of `email`, `phone`, `customer_id`, `device_id` per row; optional `purposes`
(`;`-separated), `jurisdiction`, `source` (banner, webform, gpc, agent) and `completed_at`.

Batches of up to 100 rows (and under the API's 16 KiB body) go to `POST /v1/admin/imports`.
After each acknowledged batch a state file beside the CSV (`FILE.csv.import-state.json`)
records how far the file is done and the totals, so a run killed halfway resumes where it
stopped; a batch sent but not recorded is simply sent again, and the server's request ids
(derived from `external_id`) make it store nothing twice. Rejected rows are reported by line,
field and reason, never with their values, and appended to `FILE.csv.rejected.csv` batch by
batch. Every row taken (stored, or a duplicate of one stored before) is appended to
`FILE.csv.request-ids.csv` with its line, `external_id` and request id (no identifier value),
so an operator goes from the other tool's id to `optout status`.

Both side files are appended before the state file notes their batch, and the state file keeps
their sizes at that point: a resumed run cuts off whatever a batch appended after it (that
batch is sent again), so each line is listed once and no run reads or rewrites what earlier
batches wrote. Until session 19 the state file held every rejected row and was rewritten
whole after each batch: quadratic in the rejections (review s19 SC5). A state file of that
format is migrated when it is loaded.

The state file also names the target (the API's base URL: the local stack's, or a deployed
stack's `IamApiUrl`). Resuming against another target would skip rows it never got and report
success, so the CLI refuses and names `--restart` (review s18 newcomer F1). Against the same URL,
a resumed run first reads the last request id an earlier run listed: a stack that no longer
holds it (a restarted local stack keeps nothing) is refused the same way.
"""

import csv
import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
REJECTED_FIELDS = ("line", "field", "code", "reason")
REQUEST_ID_FIELDS = ("line", "external_id", "request_id")
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
    rejected_rows: int = 0  # the rows themselves are in FILE.csv.rejected.csv
    rejected_bytes: int = 0  # the side files' sizes when line_done was reached
    ids_bytes: int = 0
    resumed_from: int | None = None

    def to_json(self) -> str:
        return json.dumps({"digest": self.digest, "target": self.target,
                           "line_done": self.line_done,
                           "stored": self.stored, "duplicates": self.duplicates,
                           "rejected_rows": self.rejected_rows,
                           "rejected_bytes": self.rejected_bytes,
                           "ids_bytes": self.ids_bytes})  # fmt: skip


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
    rejected = _SideFile(rejected_path(source), REJECTED_FIELDS)
    ids = _SideFile(request_ids_path(source), REQUEST_ID_FIELDS)
    if state.line_done <= 1:  # a fresh run (or --restart) starts both files over
        rejected.cut_to(0, state_path(source))
        ids.cut_to(0, state_path(source))
    else:  # what a batch appended after the state last noted one: that batch goes again
        rejected.cut_to(state.rejected_bytes, state_path(source))
        ids.cut_to(state.ids_bytes, state_path(source))
    if state.resumed_from:
        _check_still_stored(api, source)
    for batch, last_line, refused_here in _batches(source, state.line_done):
        refused = list(refused_here)
        taken: list[dict[str, Any]] = []
        if batch:
            answer = api.post(ROUTE, {"rows": batch})
            state.stored += int(answer["stored"])
            state.duplicates += int(answer["duplicates"])
            refused += [dict(r) for r in answer["rejected"]]
            taken = answer.get("request_ids") or []  # an API before 2026-12-01 answers none
        # Appended (and closed, so flushed) before the state names the batch done
        state.rejected_bytes = rejected.add(refused)
        state.ids_bytes = ids.add(taken)
        state.rejected_rows += len(refused)
        handled = last_line - state.line_done
        state.line_done = last_line
        _save_state(source, state)
        progress(handled)
    return state


class _SideFile:
    """A CSV beside the source (`FILE.csv.rejected.csv`, `FILE.csv.request-ids.csv`), appended
    per batch in line order. The state file keeps its size after each batch it notes; a
    resumed run cuts it back to that size, which drops a batch appended but never noted (and
    any half-written line) without reading the file."""

    def __init__(self, path: Path, fields: tuple[str, ...]) -> None:
        self.path = path
        self.fields = fields

    def size(self) -> int:
        return self.path.stat().st_size if self.path.is_file() else 0

    def cut_to(self, size: int, state: Path) -> None:
        have = self.size()
        if have < size:  # removed or edited since: the rows it listed are gone
            raise CliError(
                f"{self.path} is shorter than {state} records (was it edited or removed?): "
                "pass --restart to send the whole file again (rows already imported are "
                "skipped as duplicates)"
            )
        if size == 0:
            self.path.unlink(missing_ok=True)
        elif have > size:
            os.truncate(self.path, size)

    def add(self, rows: list[dict[str, Any]]) -> int:
        """Appends `rows` (by line) and answers the file's size after them."""
        if rows:
            new = self.size() == 0
            with self.path.open("a", encoding="utf-8", newline="") as handle:
                writer = csv.writer(handle)
                if new:
                    writer.writerow(self.fields)
                ordered = sorted(rows, key=lambda r: int(r.get("line") or 0))
                writer.writerows([row.get(k) for k in self.fields] for row in ordered)
        return self.size()


def first_rejected(source: Path, count: int) -> list[dict[str, str]]:
    """The first `count` rows of `FILE.csv.rejected.csv` (it is in line order)."""
    path = rejected_path(source)
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(itertools.islice(csv.DictReader(handle), count))


def _batches(
    source: Path, line_done: int
) -> Iterator[tuple[list[dict[str, Any]], int, list[dict[str, Any]]]]:
    """(rows, last line, rows refused here) per batch, skipping lines already done; a row too
    big to send is refused here (with its line) and counts as handled."""
    batch: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
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
                refused.append(_local_reject(line, "row", "more cells than columns"))
                last = line
                continue
            cells = {k: v.strip() for k, v in row.items() if k and v and v.strip()}
            item = {"line": line, **cells}
            item_size = len(json.dumps(item, separators=(",", ":")).encode()) + 1
            if item_size > MAX_BODY_BYTES - 20:
                refused.append(_local_reject(line, "row", "row too long"))
                last = line
                continue
            if batch and (len(batch) == MAX_ROWS or size + item_size > MAX_BODY_BYTES):
                yield batch, last, refused
                batch, size, refused = [], 2, []
            batch.append(item)
            size += item_size
            last = line
    yield batch, last, refused


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
    state = ImportState(digest, target, line, int(saved.get("stored", 0)),
                        int(saved.get("duplicates", 0)), int(saved.get("rejected_rows", 0)),
                        int(saved.get("rejected_bytes", 0)), int(saved.get("ids_bytes", 0)),
                        resumed_from=line if line > 1 else None)  # fmt: skip
    if "rejected_bytes" not in saved:  # written before session 19: its rejected rows inside
        _migrate(source, state, list(saved.get("rejected") or []))
    return state


def _migrate(source: Path, state: ImportState, rejected: list[dict[str, Any]]) -> None:
    """An older state file into side files: its rejected rows (all noted, so all kept) make
    `FILE.csv.rejected.csv`, and `FILE.csv.request-ids.csv` (which it appended with no size
    noted) keeps each line up to `line_done` once, as its settle did at the end of a run."""
    rejected_file = _SideFile(rejected_path(source), REJECTED_FIELDS)
    rejected_file.cut_to(0, state_path(source))
    state.rejected_bytes = rejected_file.add(rejected)
    state.rejected_rows = len(rejected)
    state.ids_bytes = _once_per_line(request_ids_path(source), state.line_done)


def _once_per_line(path: Path, line_done: int) -> int:
    """Streams the file, keeping rows after the last line kept and up to `line_done`: the API
    answers a batch in line order, so a batch sent again after a crash repeats lines already
    kept, and one never noted has lines past `line_done` (it is sent again)."""
    if not path.is_file():
        return 0
    temporary = path.with_name(path.name + ".tmp")
    kept = 0
    with path.open(encoding="utf-8", newline="") as old, \
            temporary.open("w", encoding="utf-8", newline="") as new:  # fmt: skip
        writer = csv.DictWriter(new, fieldnames=REQUEST_ID_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in csv.DictReader(old):
            line = int(row.get("line") or 0)
            if kept < line <= line_done:
                writer.writerow(row)
                kept = line
    os.replace(temporary, path)
    return path.stat().st_size


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
    with path.open(encoding="utf-8", newline="") as handle:  # streamed: a line at a time
        listed = ((r.get("line") or "", r.get("request_id") or "") for r in csv.DictReader(handle))
        rows = ((int(n), i) for n, i in listed if n.isdigit() and REQUEST_ID.fullmatch(i))
        return max(rows, default=None)


def _save_state(source: Path, state: ImportState) -> None:
    """Atomically: a crash leaves the old state or the new one, never half of one."""
    path = state_path(source)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(state.to_json(), encoding="utf-8")
    os.replace(temporary, path)


def _local_reject(line: int, field_name: str, reason: str) -> dict[str, Any]:
    return {"line": line, "field": field_name, "code": "invalid_row", "reason": reason}
