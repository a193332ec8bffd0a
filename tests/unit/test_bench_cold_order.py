"""The cold-start stage probes its targets in interleaved rounds: the baseline and every
function share each stretch of the machine's time, so drift between stretches is not charged
to one target (the order the probes ran in is what these tests check)."""

from typing import Any

import pytest

from bench import cold_start
from bench.progress import Progress


@pytest.fixture
def order(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    ran: list[str] = []

    def probe(code: str, env: dict[str, str]) -> dict[str, float]:
        ran.append(code)
        return {"import_ms": 1.0, "init_ms": 1.0, "first_ms": 0.0, "cpu_ms": 2.0}

    monkeypatch.setattr(cold_start, "_probe", probe)
    return ran


CODES = {"base": "base", "a": "a", "b": "b"}


def _interleaved(repeats: int) -> dict[str, Any]:
    return cold_start._interleaved(CODES, {}, repeats, Progress(quiet=True))


def test_every_target_is_probed_once_per_round_after_an_uncounted_warm_up(
    order: list[str],
) -> None:
    # When three targets are probed for four rounds
    runs = _interleaved(4)
    # Then the first round warms up and is not counted; each target has four counted probes
    assert order[:3] == ["base", "a", "b"]
    assert {name: len(found) for name, found in runs.items()} == {"base": 4, "a": 4, "b": 4}
    # and every counted round holds each target exactly once
    counted = order[3:]
    assert all(sorted(counted[i : i + 3]) == ["a", "b", "base"] for i in range(0, 12, 3))


def test_the_order_rotates_so_no_target_always_runs_first(order: list[str]) -> None:
    # When three targets are probed for three rounds
    _interleaved(3)
    # Then each target leads one round
    counted = order[3:]
    assert [counted[i] for i in (0, 3, 6)] == ["base", "a", "b"]
