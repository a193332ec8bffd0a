"""Review s25 ops (an operator following docs/operations.md): CLI output (O2: one line
when piped, fixed)."""

import httpx
import pytest

from tests.support.cli import optout

RETIRED = {"system": "braze", "retired_at": "2026-12-02T14:48:32.154Z",
           "request_id": "36597a04-5ee6-4f35-8f70-d3ba5dbe65fa"}  # fmt: skip


def answer(request: httpx.Request) -> httpx.Response:
    assert request.url.path == "/v1/admin/systems/braze/retire"
    return httpx.Response(200, json=RETIRED)


def test_retire_prints_the_time_and_the_event_id_on_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("optout_cli.main.out.width", 80)  # what a pipe gets
    reason = "contract ended; braze removed from the config"
    transport = httpx.MockTransport(answer)
    ran = optout(capsys, transport, "--base-url", "http://127.0.0.1:3000", "retire", "braze",
                 "--reason", reason)  # fmt: skip
    assert ran.code == 0, ran.err
    # docs/operations.md: "Prints the time and the `retire` event's id"
    line = f"braze: retired at {RETIRED['retired_at']} ({RETIRED['request_id']})"
    assert line in ran.out.splitlines()
