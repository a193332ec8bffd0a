"""Limit the use of sensitive personal information (CCPA §7027) end to end over moto:
capture -> stream -> resolver -> state and the systems that declared they act on it."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Aws
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

DEVICE = "dev-limit-sensitive-0001"
EMAIL = "sam.limit@example.com"
CUSTOMER = "cust-limit-0001"
# The default systems.json: the systems whose `purposes` list limit_sensitive. Braze also acts
# on customer ids but does not list it, so it must get no job.
LIMIT_SYSTEMS = {"webhook", "segment"}


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def jobs_of(pipe: Pipeline, request_id: str) -> dict[str, dict[str, Any]]:
    return {i["system"]: i for i in pipe.items(f"REQ#{request_id}") if i["sk"].startswith("JOB#")}


def test_a_banner_limit_reaches_only_the_systems_that_act_on_it(pipe: Pipeline) -> None:
    # Given a banner choice that limits sensitive data and nothing else, on a page that knows
    # the customer id (segment and braze act on customer ids, webhook on devices too)
    body = {"device_id": DEVICE, "opt_out": {"limit_sensitive": True},
            "identity": {"customer_id": CUSTOMER}}  # fmt: skip
    answer = pipe.post("/v1/consent", body)
    # When the resolver sees it
    pipe.resolve()
    # Then the device's effective state says so, and no sale/share purpose changed
    state = pipe.get(f"/v1/consent/{DEVICE}", device_id=DEVICE)
    assert state["opt_out"] == {
        "sale": False, "share": False, "targeted_advertising": False, "profiling": False,
        "limit_sensitive": True,
    }  # fmt: skip
    # ... and only systems declaring limit_sensitive get a job, for that purpose only
    jobs = jobs_of(pipe, answer["request_id"])
    assert set(jobs) == LIMIT_SYSTEMS
    assert all(job["purposes"] == ["limit_sensitive"] for job in jobs.values())


def test_gpc_does_not_limit_sensitive_data(pipe: Pipeline) -> None:
    # Given a browser sending Global Privacy Control and no choice
    pipe.post("/v1/consent", {"device_id": DEVICE, "gpc": True})
    # When it is resolved
    pipe.resolve()
    # Then sale, sharing and targeted advertising are opted out, sensitive data is not limited
    opt_out = pipe.get(f"/v1/consent/{DEVICE}", device_id=DEVICE)["opt_out"]
    assert [p for p, v in opt_out.items() if v] == ["sale", "share", "targeted_advertising"]


def test_a_webform_opt_out_without_purposes_does_not_limit_sensitive_data(
    pipe: Pipeline,
) -> None:
    # Given a webform opt-out that names no purposes, for a device
    answer = pipe.post("/v1/opt-out", {"device_id": DEVICE})
    pipe.resolve()
    # Then the four sale/share purposes are set, limit_sensitive is not
    opt_out = pipe.get(f"/v1/consent/{DEVICE}", device_id=DEVICE)["opt_out"]
    assert opt_out["limit_sensitive"] is False
    assert all(opt_out[p] for p in ("sale", "share", "targeted_advertising", "profiling"))
    assert "limit_sensitive" not in jobs_of(pipe, answer["request_id"])["webhook"]["purposes"]


def test_a_webform_limit_by_email_reaches_a_device_linked_later(pipe: Pipeline) -> None:
    # Given a webform request that asks only to limit sensitive data, by email
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["limit_sensitive"]})
    pipe.resolve()
    # When a log-in links a browser to that email (a signed identity token: verified)
    pipe.post(
        "/v1/consent",
        {"device_id": DEVICE, "identity_token": token_for(email=EMAIL, device_id=DEVICE)},
    )
    pipe.resolve()
    # Then the browser reads the limit, and nothing else
    opt_out = pipe.get(f"/v1/consent/{DEVICE}", device_id=DEVICE)["opt_out"]
    assert [p for p, v in opt_out.items() if v] == ["limit_sensitive"]
