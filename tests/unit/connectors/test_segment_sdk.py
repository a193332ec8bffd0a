"""Segment's regulation calls held to Segment's own Public API SDK.

`@segment/public-api-sdk-typescript` (npm, web/tests's devDependencies) is generated from
Segment's OpenAPI spec; its models carry each body's fields (attributeTypeMap) and enums at
run time. web/tests/check-segment-api.mjs walks them: a field, type or enum value the SDK does
not know is a problem. The bodies checked are the ones the connector builds (recorded by the
sandbox), and the status answers are the ones it parses.

npm's newest version (47.0.0-b8398) predates one type the connector accepts:
SUPPRESS_WITH_DELETE_INTERNAL entered the SDK's workspace, source and cloud-source enums in its
49.0.0-b8535 (segmentio/public-api-sdk-typescript commit 09789b33f, 2024-04-19) and is still
there in its repository's 73.2.0-b666 (2026-08-20), never published to npm. NEWER_THAN_NPM_SDK
names it; a test fails once the installed SDK has it, so the exception goes then.
"""

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, get_args

import pytest

from local.sandbox.segment import REGULATION_TYPES as SANDBOX_TYPES
from optout.connectors.base import Submitted
from optout.connectors.http import HttpClient, HttpResponse
from optout.connectors.segment import FINISHED, STILL_RUNNING, SUPPRESSING, RegulationType
from tests.unit.connectors.conftest import (
    CONNECTOR_TIMEOUT,
    calls,
    make_connector,
    make_job,
    secret_for,
)

WEB_TESTS = Path(__file__).resolve().parents[3] / "web" / "tests"
CHECKER = WEB_TESTS / "check-segment-api.mjs"
SDK_DIR = WEB_TESTS / "node_modules" / "@segment" / "public-api-sdk-typescript"
BODY = "CreateWorkspaceRegulationV1Input"  # POST /regulations (createWorkspaceRegulation)
CREATED = "CreateWorkspaceRegulation200Response"
READ = "GetRegulation200Response"  # GET /regulations/{regulateId} (getRegulation)
TYPES = f"{BODY}.RegulationTypeEnum"
NEWER_THAN_NPM_SDK = frozenset({"SUPPRESS_WITH_DELETE_INTERNAL"})
PURPOSE_SETS = [("sale",), ("share", "targeted_advertising"),
                ("sale", "share", "targeted_advertising", "profiling")]  # fmt: skip

Problem = list[str]  # [kind, path, detail]


def run_checker(*args: str, stdin: str = "") -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not SDK_DIR.is_dir():
        pytest.fail("node or @segment/public-api-sdk-typescript missing: run `make e2e-deps`")
    done = subprocess.run([node, str(CHECKER), *args], input=stdin, capture_output=True,
                          text=True, check=False, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def sdk_problems(*checks: tuple[str, Any]) -> list[list[Problem]]:
    """One list of problems per (model, value), from one node process."""
    results: list[list[Problem]] = run_checker("--batch", stdin=json.dumps(checks))["results"]
    return results


def sdk_enum(name: str) -> set[str]:
    return set(run_checker("--enum", name)["values"])


def but_newer(problems: list[Problem]) -> list[Problem]:
    """The problems left once the types newer than npm's SDK are allowed (module docstring)."""
    return [p for p in problems
            if not (p[:2] == ["enum", "$.regulationType"]
                    and p[2].split(" ")[0] in NEWER_THAN_NPM_SDK)]  # fmt: skip


def regulation_body(server: Any, kind: str, purposes: tuple[str, ...]) -> dict[str, Any]:
    """What the connector posts for two jobs (three customer ids) of these purposes."""
    connector = make_connector(server, "segment",
                               options={"mode": "regulation", "regulation_type": kind})  # fmt: skip
    jobs = [make_job(("customer_id", "cust-2"), ("customer_id", "cust-1"), request_id="r1",
                     system="segment", purposes=purposes),
            make_job(("customer_id", "cust-3"), request_id="r2", system="segment",
                     purposes=purposes)]  # fmt: skip
    outcomes = connector.deliver(jobs)
    assert [o.status for o in outcomes] == ["submitted", "submitted"]
    post = calls(server, "segment")[-1]  # this call: earlier ones are the same server's
    assert (post["method"], post["path"]) == ("POST", "/regulations")
    body: dict[str, Any] = json.loads(post["body"])
    return body


@pytest.mark.parametrize("kind", sorted(SUPPRESSING))
def test_segment_regulation_bodies_are_what_segments_sdk_types(server, kind):
    # Given every regulation type the connector sends, for jobs of any purposes
    bodies = [regulation_body(server, kind, purposes) for purposes in PURPOSE_SETS]
    # When each body is held to the SDK's createWorkspaceRegulation input
    results = sdk_problems(*((BODY, body) for body in bodies))
    # Then the SDK knows every field and value (the purposes do not change the body)
    assert [but_newer(problems) for problems in results] == [[]] * len(bodies)
    assert all(body == bodies[0] for body in bodies)
    assert bodies[0]["subjectIds"] == ["cust-1", "cust-2", "cust-3"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: {**b, "purposes": ["sale"]}, ["unknown", "$.purposes"]),
        (lambda b: {**b, "regulationType": "SUPPRESS_AND_DELETE"}, ["enum", "$.regulationType"]),
        (lambda b: {**b, "regulationType": "DELETE_ARCHIVE_ONLY"}, ["enum", "$.regulationType"]),
        (lambda b: {**b, "subjectType": "CUSTOMER_ID"}, ["enum", "$.subjectType"]),
        (lambda b: {**b, "subjectIds": b["subjectIds"][0]}, ["type", "$.subjectIds"]),
        (lambda b: {**b, "subjectIds": [1]}, ["type", "$.subjectIds[0]"]),
        (
            lambda b: {k: v for k, v in b.items() if k != "subjectType"},
            ["missing", "$.subjectType"],
        ),
        (lambda b: {**b, "regulation_type": b["regulationType"]}, ["unknown", "$.regulation_type"]),
    ],
)
def test_a_regulation_body_segments_sdk_does_not_type_is_caught(server, mutate, expected):
    # Given the connector's own body, changed the way a mistake would change it
    body = regulation_body(server, "SUPPRESS_ONLY", ("sale",))
    # When the original and the changed body are held to the SDK
    ok, wrong = sdk_problems((BODY, body), (BODY, mutate(body)))
    # Then only the changed one has a problem, and it names what changed
    assert ok == []
    assert [p[:2] for p in wrong] == [expected]


def test_the_regulation_types_the_connector_and_sandbox_know_are_segments():
    sdk_types = sdk_enum(TYPES)
    # The connector's configurable types and the sandbox's accepted ones: the SDK's, plus the
    # one newer than npm's SDK; DELETE_ARCHIVE_ONLY (source-scoped only) is neither's.
    assert set(get_args(RegulationType)) == sdk_types | NEWER_THAN_NPM_SDK
    assert set(SANDBOX_TYPES) == sdk_types | NEWER_THAN_NPM_SDK
    assert set(SUPPRESSING) <= sdk_types | NEWER_THAN_NPM_SDK
    assert sdk_enum(f"{BODY}.SubjectTypeEnum") >= {"USER_ID"}


def test_npms_segment_sdk_still_lacks_the_types_allowed_as_newer():
    # When an SDK that types them is installed, drop them from NEWER_THAN_NPM_SDK
    assert not NEWER_THAN_NPM_SDK & sdk_enum(TYPES)


def test_segment_reads_every_regulation_status_segments_sdk_has(server, monkeypatch):
    # Given every overallStatus the SDK's Regulation has, in an answer the SDK types
    statuses = sorted(sdk_enum("Regulation.OverallStatusEnum"))
    answers = {
        status: {"data": {"regulation": {
            "id": "reg_1", "workspaceId": "w1", "overallStatus": status,
            "createdAt": "2026-12-04T00:00:00Z", "finishedAt": "2026-12-04T01:00:00Z",
            "streamStatus": []}}}
        for status in statuses
    }  # fmt: skip
    assert sdk_problems(*((READ, a) for a in answers.values())) == [[]] * len(statuses)
    connector = make_connector(server, "segment", options={"mode": "regulation"})
    pending = [Submitted("r1:segment", "reg_1", ("customer_id",))]
    verdicts = {}
    for status in statuses:
        raw = json.dumps(answers[status]).encode()
        answer = HttpResponse(200, {}, raw)
        monkeypatch.setattr(connector.http, "send", lambda *a, _r=answer, **k: _r)
        # When the connector reads that status
        (verdicts[status],) = connector.confirm(pending)
    # Then the statuses it names are the SDK's, and every other one fails for good naming it
    assert {FINISHED, *STILL_RUNNING} <= set(statuses)
    assert verdicts.pop(FINISHED).status == "done"
    for status in STILL_RUNNING:
        assert verdicts.pop(status).status == "submitted"
    assert verdicts, "the SDK has failure statuses"
    for status, verdict in verdicts.items():
        assert verdict.status is None and not verdict.error.retryable
        assert verdict.error.reason == f"segment regulation: {status}"


def test_segment_sandboxs_regulation_answers_are_what_segments_sdk_types(server):
    # Given the sandbox's regulations of every type it accepts, forwarded ones with a
    # destination that cannot delete, and one that fails
    sandbox = server.sandboxes["segment"].vendor
    sandbox.unsupported_destination = True
    http = HttpClient(CONNECTOR_TIMEOUT)
    headers = {"Authorization": "Bearer " + secret_for("segment")["token"],
               "Content-Type": "application/vnd.segment.v1+json"}  # fmt: skip
    root = server.base_url("segment")
    answers: list[tuple[str, Any]] = []
    for n, kind in enumerate(sorted(sdk_enum(TYPES) | NEWER_THAN_NPM_SDK)):
        sandbox.fail_next = kind == "SUPPRESS_ONLY"
        body = {"regulationType": kind, "subjectType": "USER_ID", "subjectIds": [f"c{n}"]}
        made = http.send("POST", root + "/regulations", step="t", headers=headers,
                         body=json.dumps(body).encode())  # fmt: skip
        answers.append((CREATED, made.json()))
        ref = made.json()["data"]["regulateId"]
        for _ in range(3):  # INITIALIZED, RUNNING, then FINISHED or FAILED
            read = http.send("GET", f"{root}/regulations/{ref}", step="t", headers=headers)
            answers.append((READ, read.json()))
    # When every answer is held to the SDK's response models
    results = sdk_problems(*answers)
    # Then none has a field, type or status Segment's SDK does not know, nor lacks a field
    # but finishedAt while the regulation runs (npm's SDK declares it required even then; its
    # repository's newer Regulation makes it optional)
    running = [m == READ and a["data"]["regulation"]["overallStatus"] in STILL_RUNNING
               for m, a in answers]  # fmt: skip
    assert [
        [p for p in r if not (still and p[0] == "missing" and p[1].endswith(".finishedAt"))]
        for r, still in zip(results, running, strict=True)
    ] == [[]] * len(answers)
    statuses = {a["data"]["regulation"]["overallStatus"] for m, a in answers if m == READ}
    assert {"INITIALIZED", "RUNNING", "FINISHED", "FAILED"} <= statuses
