"""A stream batch whose every record fails is answered, not raised (review s12-pii 3):
Powertools' exception for it holds each record's exception text, which Lambda would log."""

import json

import pytest

from tests.integration.test_resolver import DEVICE_A, EMAIL, pipe  # noqa: F401 - the fixture
from tests.support.pipeline import Pipeline

PLANTED = "zqpiimark1@example.com"


def test_a_batch_whose_every_record_fails_reports_each_and_logs_no_exception_text(
    pipe: Pipeline,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given two events, and a resolver whose every record raises with a value in its message
    pipe.post("/v1/consent", {"device_id": DEVICE_A, "opt_out": {"sale": True}})
    pipe.post("/v1/opt-out", {"email": EMAIL})
    batch = pipe.event_records()

    def refuse(*_: object) -> None:
        raise ValueError(f"value {PLANTED} refused")

    monkeypatch.setattr(pipe.resolver.resolver(), "process", refuse)
    caplog.clear()
    capsys.readouterr()

    # When the resolver processes the batch: it returns (the old one raised
    # BatchProcessingError, whose text Lambda logs as errorMessage)
    answer = pipe.resolve(batch)

    # Then every record is reported failed, so the stream retries them (ReportBatchItemFailures)
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in batch]
    }
    # And each failure is logged by class only: the planted value is nowhere
    failed = [r for r in caplog.records if r.getMessage() == "event failed"]
    assert [r.error for r in failed] == ["ValueError", "ValueError"]
    out = capsys.readouterr()
    logged = json.dumps([vars(r) for r in caplog.records], default=str) + out.out + out.err
    assert PLANTED not in logged
