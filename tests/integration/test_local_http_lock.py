"""The local stack runs the capture and admin functions in one process, and Powertools keeps the
request being resolved on its `BaseRouter` class, one for both: a capture request resolved
while an admin one runs must not make the admin's audit line name the capture's route and
caller (review s31 counsel F5: `export sealed ... route=GET /v1/requests/{request_id}
caller=unknown`). The two invocations are interleaved on purpose: the admin export waits, mid
route, for the capture request to finish (or, when the capture cannot start, a bounded while)."""

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from local.cfn_yaml import load_template
from local.environment import LOCAL_IAM_CALLER
from local.stack import _function
from tests.conftest import Aws
from tests.support.http_events import http_event
from tests.support.pipeline import Pipeline, build_pipeline

CAPTURE_WAIT = 2.0  # seconds the admin route waits for the capture request: not asserted
RANGE = {"from": "2026-12-01", "to": "2026-12-01"}


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def test_a_capture_request_during_an_admin_export_leaves_its_audit_line_right(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the capture and admin functions as the local stack loads them from template.yaml
    template = load_template("template.yaml")
    capture = _function(template, "CaptureFunction", "capture-f5")
    admin = _function(template, "AdminFunction", "admin-f5")
    module = sys.modules["local_fn_admin-f5"]
    export = module.services().export  # one per warm container
    real_range = export.range
    capture_done = threading.Event()
    answers: dict[str, Any] = {}

    def waiting_range(*args: Any) -> Any:
        """The range export, which first lets a capture request run (mid admin route)."""
        capture_done.wait(CAPTURE_WAIT)
        return real_range(*args)

    monkeypatch.setattr(export, "range", waiting_range)

    def public_read() -> None:
        started.wait()
        path = "/v1/requests/00000000-0000-4000-8000-000000000005"
        params = {"request_id": "00000000-0000-4000-8000-000000000005"}
        answers["capture"] = capture.invoke(http_event("GET", path, path_parameters=params))
        capture_done.set()

    started = threading.Event()
    reader = threading.Thread(target=public_read)
    reader.start()
    # When an operator's range export runs, and a public status read arrives during it
    original_operator_read = module._operator_read

    def operator_read(**scope: str) -> None:
        original_operator_read(**scope)
        started.set()  # the admin's route is resolving: the capture request may start now

    monkeypatch.setattr(module, "_operator_read", operator_read)
    event = http_event("POST", "/v1/admin/exports/range", RANGE, iam=True)
    answers["admin"] = admin.invoke(event)
    reader.join()
    # Then each got its own answer, and the export's audit lines name its route and signer
    assert answers["admin"]["statusCode"] == 200, answers["admin"]["body"]
    assert answers["capture"]["statusCode"] == 404, answers["capture"]["body"]
    (sealed,) = [r for r in caplog.records if r.getMessage() == "export sealed"]
    said = (getattr(sealed, "route", None), getattr(sealed, "caller", None))
    assert said == ("POST /v1/admin/exports/range", LOCAL_IAM_CALLER)
