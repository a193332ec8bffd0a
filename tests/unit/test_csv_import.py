"""`optout import`'s state and side files (review s19 SC5): rejected rows are appended beside
the CSV as they arrive, the state file keeps progress and totals only, and a resume after a
crash lists each row once."""

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from optout_cli import csv_import
from optout_cli.errors import CliError

TARGET = "http://127.0.0.1:3000"
REQUEST_ID = "00000000-0000-4000-8000-{:012d}"


class Killed(BaseException):
    """The process dying (nothing in the CLI catches it)."""


class Target:
    base_url = TARGET


class FakeApi:
    """The import route: every `bad_every`-th line rejected, the others taken, in line order."""

    target = Target()

    def __init__(self, bad_every: int = 10) -> None:
        self.bad_every = bad_every
        self.posts = 0

    def post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        self.posts += 1
        rows = body["rows"]
        bad = [r["line"] for r in rows if r["line"] % self.bad_every == 0]
        good = [r for r in rows if r["line"] % self.bad_every]
        reason = {"field": "email", "code": "invalid_field", "reason": "not an email address"}
        taken = [(r["line"], r["external_id"]) for r in good]
        return {
            "stored": len(good),
            "duplicates": 0,
            "rejected": [{"line": line, **reason} for line in bad],
            "request_ids": [
                {"line": line, "external_id": e, "request_id": REQUEST_ID.format(line)}
                for line, e in taken
            ],
        }

    def call(self, method: str, route: str, expect: tuple[int, ...]) -> dict[str, Any]:
        return {"request_id": route.rsplit("/", 1)[-1]}  # the stack still holds it


def write_csv(path: Path, rows: int) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", "received_at", "email"])
        writer.writerows([f"ext-{n}", "2026-06-01", f"user{n}@example.com"] for n in range(rows))
    return path


def listed_lines(path: Path) -> list[int]:
    with path.open(newline="") as handle:
        return [int(r["line"]) for r in csv.DictReader(handle)]


def bad_lines(rows: int, every: int = 10) -> list[int]:
    return [line for line in range(2, rows + 2) if line % every == 0]


def good_lines(rows: int, every: int = 10) -> list[int]:
    return [line for line in range(2, rows + 2) if line % every]


def crash_on_save(monkeypatch: pytest.MonkeyPatch, save_number: int) -> None:
    """The process dies on the `save_number`-th state save, before it is written: that
    batch's rows are already appended to the side files."""
    saves = 0
    save = csv_import._save_state

    def dying(source: Path, state: csv_import.ImportState) -> None:
        nonlocal saves
        saves += 1
        if saves == save_number:
            raise Killed
        save(source, state)

    monkeypatch.setattr(csv_import, "_save_state", dying)


def test_a_crash_between_the_append_and_the_state_save_lists_each_rejected_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 1,000 rows (1 in 10 rejected), the process dying as it saves batch 4's state
    source = write_csv(tmp_path / "history.csv", 1_000)
    with monkeypatch.context() as patch:
        crash_on_save(patch, 4)
        with pytest.raises(Killed):
            csv_import.run_import(FakeApi(), source, False, lambda n: None)
    # Then the rejections of batches 1-4 are on disk already (before the end of the run)
    rejected = csv_import.rejected_path(source)
    assert listed_lines(rejected) == bad_lines(400)
    # ... and the state file holds progress and totals, no row
    saved = json.loads(csv_import.state_path(source).read_text())
    assert (saved["line_done"], saved["rejected_rows"]) == (301, 30)
    assert "rejected" not in saved
    # When the crash also left half a line (a write cut short) and the run is resumed
    with rejected.open("a") as handle:
        handle.write("411,ema")
    state = csv_import.run_import(FakeApi(), source, False, lambda n: None)
    # Then each rejected row is listed once, in line order, and counted once
    assert listed_lines(rejected) == bad_lines(1_000)
    assert state.rejected_rows == len(bad_lines(1_000))
    assert rejected.read_text().count("\n") == len(bad_lines(1_000)) + 1
    # ... and each taken row's request id once (batch 4 was sent again)
    assert listed_lines(csv_import.request_ids_path(source)) == good_lines(1_000)


def test_a_crash_after_the_state_save_resumes_with_nothing_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_csv(tmp_path / "history.csv", 500)
    api = FakeApi()
    with monkeypatch.context() as patch:
        crash_on_save(patch, 3)  # batches 1-2 saved
        with pytest.raises(Killed):
            csv_import.run_import(api, source, False, lambda n: None)
    resumed = FakeApi()
    state = csv_import.run_import(resumed, source, False, lambda n: None)
    assert (state.resumed_from, resumed.posts) == (201, 3)
    assert listed_lines(csv_import.rejected_path(source)) == bad_lines(500)
    assert listed_lines(csv_import.request_ids_path(source)) == good_lines(500)


def test_the_bytes_written_per_batch_stay_flat_as_rejections_pile_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 30,000 rows, 1 in 10 rejected (300 batches), each batch's writes measured: the
    # state file written whole, plus what the side files grew (review s19 SC5: the state
    # file held every rejected row, so batch 300 wrote 300 times batch 1's rejections)
    source = write_csv(tmp_path / "history.csv", 30_000)
    sides = (csv_import.rejected_path(source), csv_import.request_ids_path(source))
    per_batch: list[int] = []
    before = [0]
    save = csv_import._save_state

    def measured(path: Path, state: csv_import.ImportState) -> None:
        save(path, state)
        grown = sum(p.stat().st_size for p in sides if p.is_file())
        per_batch.append(csv_import.state_path(path).stat().st_size + grown - before[0])
        before[0] = grown

    monkeypatch.setattr(csv_import, "_save_state", measured)
    csv_import.run_import(FakeApi(), source, False, lambda n: None)
    # Then the last 50 batches write no more than the first 50 (after the headers), give or
    # take the digits of the growing line numbers and totals
    assert len(per_batch) == 300
    assert max(per_batch[-50:]) <= max(per_batch[1:51]) + 300
    assert csv_import.state_path(source).stat().st_size < 400


def old_state(source: Path, line_done: int, rejected: list[int]) -> None:
    """A state file as `optout` wrote it before session 19: every rejected row inside."""
    rows = [{"line": n, "field": "email", "code": "invalid_field",
             "reason": "not an email address"} for n in rejected]  # fmt: skip
    state = {"digest": csv_import._digest(source), "target": TARGET, "line_done": line_done,
             "stored": 180, "duplicates": 0, "rejected": rows}  # fmt: skip
    csv_import.state_path(source).write_text(json.dumps(state))


def test_a_state_file_of_the_old_format_is_migrated_and_resumes(tmp_path: Path) -> None:
    # Given a 500-row import killed by an older optout after batch 2 was noted; batch 2 had
    # been answered twice (sent again after an earlier crash) and batch 3 answered but not
    # noted, so its request-ids file lists lines 2-201, 102-201 again, and 202-301
    source = write_csv(tmp_path / "history.csv", 500)
    old_state(source, 201, bad_lines(200))
    ids = csv_import.request_ids_path(source)
    with ids.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "external_id", "request_id"])
        for line in [*good_lines(200), *good_lines(200)[90:], *good_lines(300)[180:]]:
            writer.writerow([line, f"ext-{line - 2}", REQUEST_ID.format(line)])
    # When it is resumed
    api = FakeApi()
    state = csv_import.run_import(api, source, False, lambda n: None)
    # Then it went on after line 201, with the old rejections kept and the totals carried
    assert (state.resumed_from, api.posts) == (201, 3)
    assert listed_lines(csv_import.rejected_path(source)) == bad_lines(500)
    assert state.rejected_rows == len(bad_lines(500))
    assert state.stored == 180 + len(good_lines(500)) - len(good_lines(200))
    # ... each taken row listed once, in order
    assert listed_lines(ids) == good_lines(500)
    # ... and the state file is of the new format: no rows in it
    saved = json.loads(csv_import.state_path(source).read_text())
    assert "rejected" not in saved and saved["rejected_rows"] == len(bad_lines(500))


def test_a_side_file_removed_since_the_state_was_saved_is_refused_naming_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_csv(tmp_path / "history.csv", 500)
    with monkeypatch.context() as patch:
        crash_on_save(patch, 3)
        with pytest.raises(Killed):
            csv_import.run_import(FakeApi(), source, False, lambda n: None)
    csv_import.rejected_path(source).unlink()
    with pytest.raises(CliError) as refused:
        csv_import.run_import(FakeApi(), source, False, lambda n: None)
    assert "history.csv.rejected.csv is shorter than" in refused.value.message
    assert "--restart" in refused.value.message
    state = csv_import.run_import(FakeApi(), source, True, lambda n: None)
    assert listed_lines(csv_import.rejected_path(source)) == bad_lines(500)
    assert state.rejected_rows == len(bad_lines(500))
