"""The local console: Powertools JSON lines rewritten to one readable line each."""

import io
import json
import re

from local.console import PrettyStream


def line(message: str, level: str = "INFO", **extras: object) -> str:
    stamp = "2026-11-30 07:00:00,123+0000"
    return json.dumps({"timestamp": stamp, "level": level, "message": message, **extras}) + "\n"


def test_a_json_log_line_becomes_one_readable_line_without_the_noise() -> None:
    out = io.StringIO()
    PrettyStream(out).write(line("resolved", request_id="r-1", service="resolver"))
    assert out.getvalue() == "07:00:00.123 INFO  resolver     resolved request_id=r-1\n"


def test_an_info_line_that_repeats_the_one_before_is_left_out() -> None:
    # Given the deadline watch's unchanged summary three times, then a request's line
    out = io.StringIO()
    stream = PrettyStream(out)
    for _ in range(3):
        stream.write(line("deadline watch", overdue=0, service="watch"))
    stream.write(line("resolved", request_id="r-1", service="resolver"))
    stream.write(line("deadline watch", overdue=0, service="watch"))
    # Then each shows once, and the watch again once something came between
    assert [re.sub(r"^\S+ \S+\s+\S+\s+", "", row) for row in out.getvalue().splitlines()] == [
        "deadline watch overdue=0", "resolved request_id=r-1", "deadline watch overdue=0",
    ]  # fmt: skip


def test_a_repeated_warning_is_always_shown() -> None:
    out = io.StringIO()
    stream = PrettyStream(out)
    for _ in range(2):
        stream.write(line("deadline watch", level="WARNING", overdue=1, service="watch"))
    assert len(out.getvalue().splitlines()) == 2
