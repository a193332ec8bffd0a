"""A customer id outside the workspace's own form is never sent to Segment (review s34
stranger M1): anyone may type a customer id into an opt-out, and Segment makes a billed
tracked user (MTU) of every userId its Tracking API is sent (docs/vendors.md, "Segment").
The form is a prefix, listed characters and a length range, no regular expression (review s34
M1: an operator's regex could backtrack for seconds on an id anyone sends), and its examples
must be of it, or the configuration is refused (review s34 M2: a form that sends no one)."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from local.deployment import StackConfigError, plan
from local.iam import TEMPLATE
from optout.connectors.errors import ConfigError
from optout.connectors.segment import UNFORMED_METRIC, allowed_characters
from optout.systems import load_systems
from scripts import gen_template
from tests.unit.connectors.conftest import DEFAULT_OPTIONS, calls, make_connector, make_job

FORM = {"prefix": "cust-", "characters": "0-9", "min_length": 1, "max_length": 8,
        "examples": ["cust-20261204", "cust-7"]}  # fmt: skip


def with_form(server, form: dict[str, Any] = FORM, mode: str = "consent"):
    options = {**DEFAULT_OPTIONS["segment"], "customer_id_form": form, "mode": mode}
    return make_connector(server, "segment", options=options)


def user_ids(server) -> list[str]:
    return [e["userId"] for c in calls(server, "segment")
            for e in json.loads(c["body"])["batch"]]  # fmt: skip


def test_a_made_up_customer_id_makes_no_tracked_user_and_a_real_one_is_sent(server):
    connector = with_form(server)
    ids = ["cust-1234", "made-up-69126669", "cust-1234x", "cust-123456789", "cust-", "Cust-1"]
    jobs = [make_job(("customer_id", v), request_id=f"r{n}", system="segment")
            for n, v in enumerate(ids)]  # fmt: skip

    by_job = {o.job_id: o for o in connector.deliver(jobs)}

    assert user_ids(server) == ["cust-1234"]
    assert by_job["r0:segment"].status == "done"
    # Nothing sent, no vendor call: the receipt names the type as never sent for lack of a form
    for n in range(1, len(ids)):
        outcome = by_job[f"r{n}:segment"]
        assert outcome.status == "no_record" and outcome.http_status is None, ids[n]
        assert outcome.identifier_types_unformed == ("customer_id",)
    # and the worker's metric counts those jobs, no value
    assert connector.take_counts() == {UNFORMED_METRIC: len(ids) - 1}


def test_regulation_mode_regulates_only_the_customer_ids_of_the_form(server):
    connector = with_form(server, mode="regulation")
    jobs = [
        make_job(("customer_id", "cust-7"), request_id="r1", system="segment"),
        make_job(("customer_id", "x" * 20), request_id="r2", system="segment"),
    ]

    by_job = {o.job_id: o for o in connector.deliver(jobs)}

    assert server.sandboxes["segment"].vendor.suppressed == {"cust-7"}
    assert by_job["r1:segment"].status == "submitted"
    assert by_job["r2:segment"].status == "no_record"


def test_without_a_form_every_customer_id_is_sent_as_before_and_nothing_is_counted(server):
    connector = make_connector(server, "segment")

    connector.deliver([make_job(("customer_id", "made-up-1"), system="segment")])

    assert user_ids(server) == ["made-up-1"]
    assert not connector.take_counts()


@pytest.mark.parametrize(
    ("spelling", "allowed"),
    [("0-9", set("0123456789")), ("a-cX", {"a", "b", "c", "X"}), ("-a", {"-", "a"}),
     ("a-", {"a", "-"}), ("A-C._:", {"A", "B", "C", ".", "_", ":"}), ("5-5", {"5"}),
     ("a-c-e", {"a", "b", "c", "-", "e"})],
)  # fmt: skip
def test_the_characters_are_listed_or_ranges_of_one_kind(spelling, allowed):
    assert allowed_characters(spelling) == allowed


@pytest.mark.parametrize(
    ("form", "rule"),
    [({"characters": "9-0"}, "characters has a range"),
     ({"characters": "a-Z"}, "characters has a range"),
     ({"characters": "0-z"}, "characters has a range"),
     ({"characters": ""}, "characters must list"),
     ({"characters": "0-9+"}, "characters may hold only"),
     ({"characters": "[0-9]{1,8}"}, "characters may hold only"),  # a regex is not the spelling
     ({"prefix": "cust "}, "prefix may hold only"),
     ({"min_length": 9}, "min_length must be"),
     ({"min_length": -1}, "min_length must be"),
     ({"prefix": "c" * 120, "min_length": 9, "max_length": 9}, "exceed a customer id's 128"),
     ({"examples": []}, "examples must give one or more")],
)  # fmt: skip
def test_a_form_that_cannot_be_read_is_refused_at_configuration(server, form, rule):
    with pytest.raises(ConfigError, match=rule):
        with_form(server, {**FORM, **form})


SECRET_ID = "cust-98765x"


@pytest.mark.parametrize(
    ("example", "rule"),
    [("CUST-1234", "example 2 of 2 does not begin with the prefix"),
     ("cust-", "example 2 of 2 is shorter after the prefix than min_length"),
     ("cust-123456789", "example 2 of 2 is longer after the prefix than max_length"),
     (SECRET_ID, "example 2 of 2 has a character after the prefix outside characters")],
)  # fmt: skip
def test_a_form_one_of_whose_examples_is_not_of_it_is_refused_naming_the_rule_only(
    server, example, rule
):
    # A form matching none of the business's real ids would make every Segment job no_record
    with pytest.raises(ConfigError) as refused:
        with_form(server, {**FORM, "examples": ["cust-1", example]})

    assert rule in str(refused.value)
    assert example not in str(refused.value)  # the operator's own customer's id: not echoed


def test_an_example_that_is_no_customer_id_is_refused(server):
    form = {"prefix": "-", "characters": "0-9", "examples": ["-1"]}
    with pytest.raises(ConfigError, match="example 1 of 1 is not a customer id at all"):
        with_form(server, form)


def test_the_old_pattern_option_is_no_option(server):
    options = {**DEFAULT_OPTIONS["segment"], "customer_id_pattern": "cust-[0-9]{1,8}"}
    with pytest.raises(ConfigError, match="customer_id_pattern"):
        make_connector(server, "segment", options=options)


def test_a_form_without_examples_is_refused(server):
    form = {k: v for k, v in FORM.items() if k != "examples"}
    with pytest.raises(ConfigError, match=r"customer_id_form\.examples"):
        with_form(server, form)


ROOT = Path(__file__).resolve().parents[3]
URL = "http://127.0.0.1:3000"
ENV = {"LOCAL_STACK_URL": URL, "OPTOUT_LOCAL_MODE": "true"}
WRONG_FORM = {**FORM, "prefix": "CUST-"}  # the business's ids are lower-case


def test_make_template_refuses_a_form_whose_examples_are_not_of_it():
    (segment,) = [s for s in load_systems(ROOT / "layers" / "common" / "config" / "systems.json",
                                          environ={}).systems if s.name == "segment"]  # fmt: skip
    wrong = dataclasses.replace(
        segment, options={**segment.options, "customer_id_form": WRONG_FORM}
    )

    with pytest.raises(ValueError, match="example 1 of 2 does not begin with the prefix"):
        gen_template.check_options(wrong)


def test_the_local_stack_refuses_a_form_whose_examples_are_not_of_it(tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = json.loads((ROOT / "local" / "systems.json").read_text())
    (segment,) = [s for s in config["systems"] if s["name"] == "segment"]
    segment["options"]["customer_id_form"] = WRONG_FORM
    path = tmp_path / "systems.json"
    path.write_text(json.dumps(config))
    secrets = json.loads((ROOT / "local" / "secrets.json").read_text())

    with pytest.raises(StackConfigError, match="example 1 of 2 does not begin with the prefix"):
        plan(TEMPLATE, path, ENV, secrets, URL)
