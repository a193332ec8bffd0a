"""A customer id outside the workspace's own form is never sent to Segment (review s34
stranger M1): anyone may type a customer id into an opt-out, and Segment makes a billed
tracked user (MTU) of every userId its Tracking API is sent (docs/vendors.md, "Segment")."""

import json

import pytest

from optout.connectors.errors import ConfigError
from tests.unit.connectors.conftest import DEFAULT_OPTIONS, calls, make_connector, make_job

FORM = r"cust-[0-9]{1,8}"


def consent_with_form(server, mode: str = "consent"):
    options = {**DEFAULT_OPTIONS["segment"], "customer_id_pattern": FORM, "mode": mode}
    return make_connector(server, "segment", options=options)


def user_ids(server) -> list[str]:
    return [e["userId"] for c in calls(server, "segment")
            for e in json.loads(c["body"])["batch"]]  # fmt: skip


def test_a_made_up_customer_id_makes_no_tracked_user_and_a_real_one_is_sent(server):
    connector = consent_with_form(server)
    jobs = [make_job(("customer_id", "cust-1234"), request_id="r1", system="segment"),
            make_job(("customer_id", "made-up-69126669"), request_id="r2", system="segment"),
            make_job(("customer_id", "cust-1234x"), request_id="r3", system="segment")]  # fmt: skip

    by_job = {o.job_id: o for o in connector.deliver(jobs)}
    real, made_up, near = (by_job[f"r{n}:segment"] for n in (1, 2, 3))

    assert user_ids(server) == ["cust-1234"]
    assert real.status == "done"
    # Nothing sent, no vendor call: the receipt names the type as never sent for lack of a form
    for outcome in (made_up, near):
        assert outcome.status == "no_record" and outcome.http_status is None
        assert outcome.identifier_types_unformed == ("customer_id",)


def test_regulation_mode_regulates_only_the_customer_ids_of_the_form(server):
    connector = consent_with_form(server, mode="regulation")
    jobs = [
        make_job(("customer_id", "cust-7"), request_id="r1", system="segment"),
        make_job(("customer_id", "x" * 20), request_id="r2", system="segment"),
    ]

    by_job = {o.job_id: o for o in connector.deliver(jobs)}

    assert server.sandboxes["segment"].vendor.suppressed == {"cust-7"}
    assert by_job["r1:segment"].status == "submitted"
    assert by_job["r2:segment"].status == "no_record"


def test_without_a_form_every_customer_id_is_sent_as_before(server):
    connector = make_connector(server, "segment")

    connector.deliver([make_job(("customer_id", "made-up-1"), system="segment")])

    assert user_ids(server) == ["made-up-1"]


def test_a_form_that_is_not_a_regular_expression_is_refused_at_configuration(server):
    options = {**DEFAULT_OPTIONS["segment"], "customer_id_pattern": "cust-("}
    with pytest.raises(ConfigError, match="customer_id_pattern is not a regular expression"):
        make_connector(server, "segment", options=options)
