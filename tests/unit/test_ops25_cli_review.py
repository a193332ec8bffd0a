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


REPLAY_ID = "5b0f6c0e-3c1a-4d5e-9a7b-2f8e1d4c6b3a"
DENIED_ID = "9d2e4f6a-1b3c-4d5e-8f7a-6b5c4d3e2f1a"


def replay_answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/v1/admin/systems/braze/redrive":
        return httpx.Response(200, json={"moved": 0, "remaining": 0, "request_id": None})
    if path == "/v1/admin/systems/braze/replay":
        return httpx.Response(202, json={"request_id": REPLAY_ID})
    assert path == f"/v1/admin/requests/{REPLAY_ID}"
    resolution = {"replayed": 1, "withdrawn_denied": 1, "withdrawn_requests": [DENIED_ID]}
    return httpx.Response(200, json={"resolution": resolution})


def test_replay_says_how_many_failed_jobs_of_denied_requests_it_withdrew(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # review s25 ops O4 (session 26): withdrawn, not re-sent, and the output says so
    monkeypatch.setattr("optout_cli.main.out.width", 80)
    transport = httpx.MockTransport(replay_answer)
    ran = optout(capsys, transport, "--base-url", "http://127.0.0.1:3000", "replay", "braze")
    assert ran.code == 0, ran.err
    line = ("withdrawn (denied): 1 failed job of denied requests not re-sent, ended for good: "
            f"{DENIED_ID}")  # fmt: skip
    assert line in ran.out.splitlines()
    assert "1 failed job re-sent to braze" in ran.out
