"""The public routes' examples a newcomer copies from README.md and docs/local-stack.md: each
body a curl example posts is taken as written (202: none names a jurisdiction the check of
2026-12-04 refuses, say), and each answer README sketches names the fields the route answers,
in its order (review s36 newcomer; the operator routes' sketches: test_operator_routes)."""

import re
import shlex
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from local.moto_guard import guarded
from tests.conftest import Aws
from tests.integration.test_operator_routes import readme_example, top_level_keys
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "local-stack.md"]
# The walk-throughs' shell variables (README's and docs/local-stack.md's)
VARIABLES = {
    "$DEVICE": "c0ffee00-1d2e-4f3a-8b4c-5d6e7f8a9b0c",
    "$EMAIL": "lee@example.com",
}
ROUTE = r"\$(?:B|OPTOUT_URL)/v1/(?:consent|opt-out)"  # README's base URLs: API, operator CLI
DEVICE = "3f1c2a9e-8b7d-4c1e-9f00-1a2b3c4d5e6f"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    with guarded():
        yield build_pipeline(aws, monkeypatch)


def public_posts(doc: Path) -> list[tuple[str, dict[str, str], str]]:
    """Each `curl -X POST $B/v1/consent` or `…/v1/opt-out` of the doc's sh blocks: its path,
    headers and body."""
    posts = []
    for block in re.findall(r"```sh\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
        for command in re.findall(r"curl (?:[^\n]*\\\n)*[^\n]*", block):
            if not re.search(ROUTE + r"\s", command) or "$TOKEN" in command:
                continue  # another route, or a demo login's token (its own test)
            words = shlex.split(command.replace("\\\n", " "), comments=True)
            route = next(w for w in words if re.fullmatch(ROUTE, w))
            headers = dict(
                (name.lower(), value.strip())
                for flag, header in pairwise(words)
                if flag == "-H"
                for name, _, value in [header.partition(":")]
            )
            body = words[words.index("-d") + 1]
            for name, value in VARIABLES.items():
                body = body.replace(name, value)
            posts.append((route[route.index("/v1/") :], headers, body))
    return posts


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_public_post_example_is_taken_as_written(pipe: Pipeline, doc: Path) -> None:
    posts = public_posts(doc)
    assert len(posts) >= 4, "the curl examples are no longer found"
    refused = []
    for path, headers, body in posts:
        answer = invoke(pipe.capture, http_event("POST", path, headers=headers, raw_body=body))
        if answer["statusCode"] != 202:
            refused.append((path, body, answer["statusCode"], answer["body"]))
    assert refused == []


def test_a_refused_example_would_be_seen(pipe: Pipeline) -> None:
    # The check above posts what it parsed: a body naming no real place is refused
    body = '{"email":"jane@example.com","jurisdiction":"ZZ"}'
    answer = invoke(pipe.capture, http_event("POST", "/v1/opt-out", raw_body=body))
    assert answer["statusCode"] == 422
    assert json_body(answer)["error"]["field"] == "jurisdiction"


def test_readmes_public_answer_sketches_name_every_field_in_order(pipe: Pipeline) -> None:
    # Given each public route's answer
    consent = pipe.post("/v1/consent", {"device_id": DEVICE, "opt_out": {"sale": True}})
    opt_out = pipe.post("/v1/opt-out", {"email": "jane@example.com", "jurisdiction": "US-CA"})
    link = {"a": {"type": "device_id", "value": DEVICE}, "b": {"type": "email", "value": "j@x.io"}}
    links = pipe.post("/v1/identity-links", {"links": [link]}, iam=True)
    pipe.resolve()
    state = pipe.get(f"/v1/consent/{DEVICE}", device_id=DEVICE)
    status = pipe.get(f"/v1/requests/{opt_out['request_id']}", request_id=opt_out["request_id"])
    answers: dict[str, dict[str, Any]] = {
        '# 202 {"request_id":"…","device_id":"3f1c…"': consent,
        '# 200 {"device_id":"3f1c…"': state,
        '# 202 {"request_id":"…","status":"received"': opt_out,
        '# 200 {"request_id":"…","status":"completed"': status,
        '# 202 {"request_id":"…","links_accepted"': links,
    }
    # Then README's sketch of each names its fields, in its order
    for first, answer in answers.items():
        assert top_level_keys(readme_example(first)) == list(answer), first
    # ... and the state's sketch every purpose, as the route answers them
    sketch = readme_example('# 200 {"device_id":"3f1c…"')
    purposes = re.search(r'"opt_out":\{([^}]*)\}', sketch)
    assert purposes and re.findall(r'"(\w+)":', purposes.group(1)) == list(state["opt_out"])
