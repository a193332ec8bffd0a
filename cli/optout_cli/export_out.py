"""`optout export`: an identity's or a date range's records, page by page, as JSONL or CSV,
sealed; `optout verify-export`: whether a file is still the one the export wrote.

JSONL keeps every record as the API gives it. CSV flattens each record to fixed columns
(`record`, `request_id`, `system`, `status`, `late`, `at`) and the rest as JSON in `detail`, so
a spreadsheet opens it, filters the late requests, and nothing is lost.

The seal (review s26 counsel F1; docs/evidence-integrity.md, "Exports"): a JSONL file ends
with an `export_seal` record; a CSV file's seal is the file beside it, `FILE.seal.json` (a
last row would be a record to every spreadsheet). It says what was asked (an identity by type
and keyed hash, a range by its days), when (the server's time of the first page), how many
records of each kind, the CLI's version, `sha256` (of the file's bytes before the seal line;
of the whole CSV) and `records_sha256`, the server's SHA-256 chain over the records
(optout.ops.export_seal), which the admin function logs (`export sealed`).
"""

import csv
import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, TextIO

from optout_cli.client import Api
from optout_cli.errors import CliError

Format = Literal["jsonl", "csv"]
SEAL_RECORD = "export_seal"
SEAL_SUFFIX = ".seal.json"
CHAIN_START = bytes(32)
RECORD_KIND = re.compile(r"[a-z_]{1,40}")  # a record's kind, as the export names them
# the columns a CSV row holds apart from `detail` (`at` repeats one of the record's times)
FIXED_COLUMNS = ("record", "request_id", "system", "status", "late")
CSV_COLUMNS = ("record", "request_id", "system", "status", "late", "at", "detail")
TIME_FIELDS = ("received_at", "completed_at", "denied_at", "resolved_at", "updated_at", "at",
               "answered_at")  # fmt: skip
PRIVATE_MODE = 0o600  # read and write by the owner only
OnPage = Callable[[dict[str, Any]], None]  # the page's progress block


@dataclass(frozen=True)
class Exported:
    records: int
    complete_through: str | None  # identity exports: requests received after it may be missing
    sha256: str  # the file's (JSONL: before its seal line)


def export(
    api: Api, route: str, body: dict[str, Any], out: Path, fmt: Format, on_page: OnPage
) -> Exported:
    """Every page into `out`, written beside it and renamed at the end: a failed export leaves
    no file that could pass for a complete one. The file is the owner's alone (0600): an
    identity export holds that person's identifier and history (review s18 S7). An existing
    `out` is replaced by it, so its old mode is not kept."""
    counts: Counter[str] = Counter()
    chain = CHAIN_START
    partial = out.with_name(out.name + ".part")
    sidecar = seal_path(out)
    partial_seal = sidecar.with_name(sidecar.name + ".part")
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
                    counts[str(record.get("record"))] += 1
                    chain = _link(chain, record)
                on_page(page.get("progress") or {})
                cursor = page.get("cursor")
                if not cursor:
                    break
            handle.flush()
            sha256 = _file_sha256(partial)
            seal = _seal(page.get("seal"), fmt, counts, chain, sha256)
            if fmt == "jsonl":
                handle.write(json.dumps(seal, sort_keys=True) + "\n")
        if fmt == "csv":
            with _owner_only(partial_seal) as seal_file:
                seal_file.write(json.dumps(seal, sort_keys=True, indent=1) + "\n")
            partial_seal.replace(sidecar)
        elif sidecar.exists():
            sidecar.unlink()  # an older CSV export's seal at this name would not be this file's
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        partial_seal.unlink(missing_ok=True)
        raise
    return Exported(sum(counts.values()), page.get("complete_through"), sha256)


def seal_path(out: Path) -> Path:
    """Where a CSV export's seal is: `FILE.seal.json`, beside it."""
    return out.with_name(out.name + SEAL_SUFFIX)


def _seal(
    server: Any, fmt: Format, counts: Counter[str], chain: bytes, sha256: str
) -> dict[str, Any]:
    """The closing record, once the server's seal says the same chain as the pages held (a
    record lost or changed on the way, or a server that seals nothing, fails the export)."""
    if not isinstance(server, dict) or "records_sha256" not in server:
        raise CliError("the server sent no seal for this export (a stack older than this CLI?)")
    if server["records_sha256"] != chain.hex() or server.get("records") != sum(counts.values()):
        raise CliError("the records received do not match the server's seal of this export: "
                       "no file written, export again")  # fmt: skip
    return {"record": SEAL_RECORD, "format": fmt, "export": server.get("export"),
            "exported_at": server.get("exported_at"), "records": sum(counts.values()),
            "by_record": dict(sorted(counts.items())), "sha256": sha256,
            "records_sha256": chain.hex(), "version": _version()}  # fmt: skip


def _version() -> str:
    try:
        return f"optout-bridge {metadata.version('optout-bridge')}"
    except metadata.PackageNotFoundError:
        return "optout-bridge (version unknown)"


def _canonical(record: dict[str, Any]) -> bytes:
    """A record's bytes in the chain, as optout.ops.export_seal.canonical makes them."""
    kept = {k: v for k, v in record.items() if not (k in FIXED_COLUMNS and v in (None, ""))}
    return json.dumps(kept, sort_keys=True).encode("ascii")


def _link(previous: bytes, record: dict[str, Any]) -> bytes:
    return hashlib.sha256(previous + _canonical(record)).digest()


def _file_sha256(path: Path, size: int | None = None) -> str:
    """The SHA-256 of the file's first `size` bytes (all of them if None)."""
    digest = hashlib.sha256()
    left = size
    with path.open("rb") as raw:
        while left is None or left > 0:
            chunk = raw.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            digest.update(chunk)
            left = None if left is None else left - len(chunk)
    return digest.hexdigest()


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


# -- verify ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    records: int
    sha256: str
    records_sha256: str


def verify(path: Path) -> Verified:
    """Whether `path` is still the file an export wrote: its seal is there (JSONL: its last
    line, and only there; CSV: `FILE.seal.json`), the records of each kind are as many as it
    says, and both digests are the file's. Fails naming what does not match, by line number
    and record kind only (records hold personal data)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CliError(f"{path}: {error.strerror}") from None
    if _is_csv(data):
        seal, records, sha256 = _read_csv(path, data)
    else:
        seal, records, sha256 = _read_jsonl(path, data)
    counts: Counter[str] = Counter()
    chain = CHAIN_START
    for record in records:
        counts[str(record.get("record"))] += 1
        chain = _link(chain, record)
    wrong = []
    if seal.get("records") != sum(counts.values()):
        wrong.append(f"{sum(counts.values())} records where the seal says {seal.get('records')}")
    by_record = seal.get("by_record")
    said: dict[str, Any] = by_record if isinstance(by_record, dict) else {}
    for kind in sorted(set(said) | set(counts)):
        if said.get(kind, 0) != counts.get(kind, 0):
            name = kind if RECORD_KIND.fullmatch(kind) else "unknown"  # never a value
            wrong.append(f"{counts.get(kind, 0)} {name} records where the seal says "
                         f"{said.get(kind, 0)}")  # fmt: skip
    if seal.get("sha256") != sha256:
        wrong.append(f"the file's sha256 is {sha256}, the seal says {seal.get('sha256')}")
    if seal.get("records_sha256") != chain.hex():
        wrong.append(f"the records' chain is {chain.hex()}, the seal says "
                     f"{seal.get('records_sha256')}")  # fmt: skip
    if wrong:
        raise CliError(f"{path}: does not match its seal: " + "; ".join(wrong))
    return Verified(sum(counts.values()), sha256, chain.hex())


def _is_csv(data: bytes) -> bool:
    return data.startswith(",".join(CSV_COLUMNS).encode())


def _read_jsonl(path: Path, data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    lines = data.splitlines(keepends=True)
    if not lines:
        raise CliError(f"{path}: empty, no seal")
    seal = _record(lines[-1])
    if seal is None or seal.get("record") != SEAL_RECORD:
        raise CliError(f"{path}: no seal as its last line (cut short, appended to, or not an "
                       "export of this version)")  # fmt: skip
    records = []
    for number, line in enumerate(lines[:-1], start=1):
        record = _record(line)
        if record is None:
            raise CliError(f"{path}: line {number} is not an export record")
        if record.get("record") == SEAL_RECORD:
            raise CliError(f"{path}: line {number} is a seal before the last line")
        records.append(record)
    before = len(data) - len(lines[-1])
    return seal, records, hashlib.sha256(data[:before]).hexdigest()


def _record(line: bytes) -> dict[str, Any] | None:
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _read_csv(path: Path, data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    sidecar = seal_path(path)
    try:
        seal = _record(sidecar.read_bytes())
    except OSError:
        raise CliError(f"{path}: no seal ({sidecar.name} is missing)") from None
    if seal is None or seal.get("record") != SEAL_RECORD or seal.get("format") != "csv":
        raise CliError(f"{path}: {sidecar.name} is not a CSV export's seal")
    csv.field_size_limit(1 << 30)  # a job's failures can make a long `detail`
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        raise CliError(f"{path}: not a CSV export") from None
    return seal, list(_csv_records(path, rows)), hashlib.sha256(data).hexdigest()


def _csv_records(path: Path, rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Each row's record again, as the chain hashed it: `detail` and the fixed columns that
    are not empty (`late` as true or false)."""
    for number, row in enumerate(rows, start=1):
        try:
            record = json.loads(row.get("detail") or "")
        except ValueError:
            record = None
        if not isinstance(record, dict) or None in row:
            raise CliError(f"{path}: row {number} is not an export row")
        for column in FIXED_COLUMNS:
            value = row.get(column) or ""
            if value and column == "late":
                record[column] = {"true": True, "false": False}.get(value, value)
            elif value:
                record[column] = value
        yield record
