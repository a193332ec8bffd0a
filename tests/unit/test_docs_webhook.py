"""The webhook contract's figures in docs/connectors.md, recomputed from the code."""

import re
from pathlib import Path

from optout.connectors.hashing import sha256_hex
from optout.delivery.retry import longest_visibility
from optout.delivery.settings import WorkerSettings
from optout.identifiers import normalise

ROOT = Path(__file__).resolve().parents[2]
CONNECTORS = (ROOT / "docs" / "connectors.md").read_text()


def words(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_how_long_a_202_receiver_is_asked_matches_the_worker_defaults() -> None:
    settings = WorkerSettings(table_name="t")
    waits = settings.max_receive_count - 1
    ceilings = [min(settings.retry_max_seconds, settings.retry_base_seconds * 2 ** (n - 1))
                for n in range(1, waits + 1)]  # fmt: skip
    leg = longest_visibility(settings.batch_window_seconds)
    doc = words(CONNECTORS)
    assert f"is asked again {waits} times" in doc
    listed = ", ".join(f"{c:,.0f}" for c in ceilings[:-1]) + f" and {ceilings[-1]:,.0f} s"
    assert f"full jitter up to {listed}" in doc
    # each wait at least base / 2 (delivery.retry.backoff_seconds): "between about 2"
    assert round(waits * settings.retry_base_seconds / 2 / 60) == 2
    assert round(sum(ceilings) / 60) == 64  # "and 64 minutes"
    mean = sum((settings.retry_base_seconds / 2 + c) / 2 for c in ceilings)
    assert round(mean / 60) == 33  # "about 33 on average"
    assert f"legs of up to {leg:,} s, about {leg / 3600:.1f} h" in doc
    times = "\N{MULTIPLICATION SIGN}"
    assert f"never more than {waits} {times} {leg:,} s = {waits * leg:,} s" in doc
    assert f"(about {round(waits * leg / 3600)} h, {waits * leg / 86400:.1f} days)" in doc


def test_the_webhook_hash_vectors_are_what_the_connector_sends() -> None:
    vectors = re.findall(
        r"- (email|phone) `\"([^\"]*)\"` → `([^`]+)` →\s+`([0-9a-f]{64})`", CONNECTORS
    )
    assert [kind for kind, *_ in vectors] == ["email", "phone"]
    for kind, raw, normalised, digest in vectors:
        identifier = normalise(kind, raw)
        assert identifier.value == normalised
        assert sha256_hex(identifier.value) == digest
