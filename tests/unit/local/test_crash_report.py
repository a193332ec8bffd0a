"""The local stack's crash line: class and location on the console, never the message."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from local import crash_report

SECRET = "jane.doe@example.com"


def explode() -> None:
    raise RuntimeError(f"cannot handle {SECRET}")


def caught() -> RuntimeError:
    try:
        explode()
    except RuntimeError as error:
        return error
    raise AssertionError("explode() did not raise")


@pytest.fixture(autouse=True)
def no_debug_file() -> Iterator[None]:
    yield
    crash_report.configure(None)


def test_the_console_line_names_class_and_location_but_not_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a crash whose message carries an email
    error = caught()
    # When it is reported
    with caplog.at_level(logging.ERROR):
        crash_report.report(logging.getLogger("t"), "capture handler on GET /x", error)
    # Then the line says what crashed and where, as module:function:line, and no value
    line = caplog.records[0].getMessage()
    assert line.startswith("capture handler on GET /x raised RuntimeError at ")
    assert "tests.unit.local.test_crash_report:explode:" in line
    assert SECRET not in caplog.text


def test_a_crash_inside_a_library_also_names_the_projects_own_frame() -> None:
    # Given an error raised inside a library module, called from our code
    try:
        json.loads("{")
    except ValueError as error:
        where = crash_report.location(error)
    # Then the location is the library's frame, then (via) ours
    library, _, own = where.partition(" (via ")
    assert library.startswith("json.decoder:")
    assert own.startswith("tests.unit.local.test_crash_report:test_a_crash_inside_a_library")


def test_the_traceback_goes_to_the_debug_file_only_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    debug = tmp_path / "crashes.log"
    crash_report.report(logging.getLogger("t"), "resolver", caught())
    assert not debug.exists()
    # Given a debug file
    crash_report.configure(debug)
    # When a crash is reported
    crash_report.report(logging.getLogger("t"), "resolver", caught())
    # Then the full traceback is there (locally, on request), and still not on the console
    text = debug.read_text()
    assert "Traceback" in text and "explode" in text and SECRET in text
    assert SECRET not in caplog.text
