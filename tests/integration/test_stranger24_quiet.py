"""Review s24 stranger, finding Q1: an asserted email's carried opt-outs tell a stranger, by the
public count, whether a vendor holds that person.

A browser's own opt-outs are carried to an email it names without a token (an asserted edge),
and the resolver plans jobs for them; but the quiet period's "no such person" answers are
recorded (`not_asked`, counted as done in the public view) only for the purposes the request
itself asked (s23's fix). So a consent that names someone's email and asks nothing, or asks a
purpose a vendor does not serve, counts the systems that hold the person and leaves out those
that answered "no such person" in the last day: 6 systems against 4 on the local stack
(Braze and Salesforce), 6 against 5 when the request asks `profiling` (Braze)."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from optout.status import REPLAY_CAP
from tests.conftest import Aws
from tests.integration.test_resolver_delivery import Vendor, work
from tests.support.pipeline import Pipeline, build_pipeline

NOBODY = {"salesforce", "braze"}  # as the sandboxes answer for an `unknown…` address


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def _answer_all(pipe: Pipeline, nobody: set[str]) -> None:
    pipe.resolve()
    for key in pipe.queue_urls:
        work(pipe, key, Vendor(status="no_record" if key in nobody else "done"))


def _strangers_count(pipe: Pipeline, email: str, device: str, asks: dict[str, bool],
                     nobody: set[str]) -> tuple[Any, ...]:  # fmt: skip
    """An opt-out of sale names the email (the vendors answer), a browser opts itself out of
    share, then names the email without a token: that request's public status."""
    pipe.post("/v1/opt-out", {"email": email, "purposes": ["sale"]})
    _answer_all(pipe, nobody)
    pipe.post("/v1/consent", {"device_id": device, "opt_out": {"share": True}})
    _answer_all(pipe, nobody)
    body: dict[str, Any] = {"device_id": device, "identity": {"email": email}}
    request_id = pipe.post("/v1/consent", {**body, **({"opt_out": asks} if asks else {})})[
        "request_id"
    ]
    _answer_all(pipe, nobody)
    later = datetime.now(UTC) + REPLAY_CAP
    status = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    return status["status"], status["systems_total"], status["systems_done"]


@pytest.mark.parametrize("asks", [{}, {"profiling": True}], ids=["asks-nothing", "asks-profiling"])
def test_naming_an_email_from_an_opted_out_browser_does_not_show_which_vendors_hold_it(
    pipe: Pipeline, asks: dict[str, bool]
) -> None:
    # Given two emails a stranger opted out of sale: Salesforce and Braze hold the first
    # person and answered "no such person" for the second
    held = _strangers_count(pipe, "s24-held@example.com", "s24-device-held-0001", asks, set())
    # When the stranger's own browser, opted out of share, names each email without a token
    not_held = _strangers_count(
        pipe, "unknown-s24@example.com", "s24-device-nobody-01", asks, NOBODY
    )
    # Then the two public answers read the same
    assert held == not_held


def _carried_count(
    pipe: Pipeline, email: str, device: str, before: list[str], route: str, asks: list[str]
) -> tuple[Any, ...]:
    """The email opted out of `before` (every vendor holds the person), then a browser opted
    out of share names it without a token (a consent, or a webform opt-out with its device id)
    asking `asks`: that request's public status."""
    pipe.post("/v1/opt-out", {"email": email, "purposes": before})
    _answer_all(pipe, set())
    pipe.post("/v1/consent", {"device_id": device, "opt_out": {"share": True}})
    _answer_all(pipe, set())
    if route == "consent":
        body: dict[str, Any] = {"device_id": device, "identity": {"email": email}}
        body |= {"opt_out": dict.fromkeys(asks, True)} if asks else {}
    else:
        body = {"email": email, "device_id": device, "purposes": asks}
    request_id = pipe.post(f"/v1/{route}", body)["request_id"]
    _answer_all(pipe, set())
    later = datetime.now(UTC) + REPLAY_CAP
    status = pipe.get_at(later, f"/v1/requests/{request_id}", request_id=request_id)
    return status["status"], status["systems_total"], status["systems_done"]


@pytest.mark.parametrize(
    ("route", "asks"),
    [("consent", []), ("consent", ["sale"]), ("opt-out", ["limit_sensitive"])],
    ids=["asks-nothing", "asks-sale", "webform-limit-sensitive"],
)
def test_naming_an_email_from_an_opted_out_browser_does_not_show_what_the_person_chose(
    pipe: Pipeline, route: str, asks: list[str]
) -> None:
    # Given one email opted out of share before, and another only of sale
    chose_share = _carried_count(
        pipe, "s24-share@example.com", "s24-device-share-001", ["share"], route, asks
    )
    # When a stranger's browser, opted out of share, names each without a token (asking
    # nothing, or sale, which the same systems' jobs then carry with share, or through the
    # webform, limit_sensitive)
    chose_sale = _carried_count(
        pipe, "s24-sale@example.com", "s24-device-sale-0001", ["sale"], route, asks
    )
    # Then its public answer does not tell which of them had opted out of share (README: "a
    # request that names someone's identifier and opts out of nothing gets no systems"): it
    # counts the systems that serve what it asked, whatever it carried
    assert chose_share == chose_sale
    if not asks:
        assert chose_sale == ("completed", 0, 0)
