"""A login held at the cluster cap carries its account's opt-outs to the browser (session 37,
identity37 F1; docs/decisions.md, "A login held at the cluster cap carries its account's
opt-outs to the browser").

An account's cluster only grows while it is active: every browser it logs in on is linked and
kept, and a browser is a new device after each `optoutBridge.reset()` at logout, each Safari
purge of script-set storage and each private window. Once it holds `MaxClusterSize`
identities, its next login on a new browser is held at the cap, and until session 37 the
account's opt-outs never reached that browser (its page ran the tags the person had opted out
of while they were logged in there), and nothing told an operator. The login is now held as a
second account's is: its account's opt-outs are carried one way to that browser's device
alone; a reject withdraws them, a release merges."""

from collections.abc import Iterator
from typing import Any

import pytest

from optout.resolver import service
from optout.store.codec import deserialize
from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

EMAIL = "regular@example.com"
OLD_BROWSERS = ("dev-old-one-aaaaaaaaaaa", "dev-old-two-aaaaaaaaaaa")  # with the email: 3
NEW_BROWSER = "dev-new-three-aaaaaaaaa"
ALL4 = {"sale", "share", "targeted_advertising", "profiling"}


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="3")


def opted(pipe: Pipeline, device: str) -> set[str]:
    state = pipe.get(f"/v1/consent/{device}", device_id=device)["opt_out"]
    return {p for p, v in state.items() if v}


def login(pipe: Pipeline, device: str, **body: Any) -> None:
    token = token_for(email=EMAIL, device_id=device)
    pipe.post("/v1/consent", {"device_id": device, "identity_token": token, **body})
    pipe.resolve()


def holds(pipe: Pipeline) -> list[dict[str, Any]]:
    listed = invoke(pipe.admin, http_event("GET", "/v1/admin/holds", iam=True))
    assert listed["statusCode"] == 200, listed["body"]
    found: list[dict[str, Any]] = json_body(listed)["holds"]
    return found


def decide(pipe: Pipeline, hold_id: str, action: str) -> dict[str, Any]:
    path = f"/v1/admin/holds/{hold_id}/{action}"
    answer = invoke(pipe.admin, http_event("POST", path, path_parameters={"hold_id": hold_id},
                                           iam=True))  # fmt: skip
    assert answer["statusCode"] in (200, 202), answer["body"]
    pipe.resolve()
    decided: dict[str, Any] = json_body(answer)
    return decided


def device_jobs(pipe: Pipeline, device: str) -> set[str]:
    """The purposes jobs were made for that name this device (the webhook takes device ids)."""
    found: set[str] = set()
    for job in pipe.items("REQ#"):
        if job.get("kind") == "job" and any(i["value"] == device for i in job["identifiers"]):
            found.update(job["purposes"])
    return found


def full_account(pipe: Pipeline) -> None:
    """The person opted out by webform, and is logged in on browsers up to the cap."""
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    for device in OLD_BROWSERS:
        login(pipe, device)
        assert opted(pipe, device) == ALL4


def test_a_login_past_the_cluster_cap_still_honours_the_accounts_opt_outs_on_that_browser(
    pipe: Pipeline,
) -> None:
    full_account(pipe)
    # When the person logs in on one more browser (the cluster is full: the link is held)
    login(pipe, NEW_BROWSER)
    assert [h["reason"] for h in holds(pipe)] == ["cluster_cap"]
    # Then that browser reads the account's opt-outs, and its device-keyed systems are told
    assert opted(pipe, NEW_BROWSER) == ALL4
    assert device_jobs(pipe, NEW_BROWSER) == ALL4
    # ... and an opt-out the account makes later elsewhere reaches it too, without a new login
    pipe.post("/v1/opt-out", {"email": EMAIL, "purposes": ["limit_sensitive"]})
    pipe.resolve()
    assert opted(pipe, NEW_BROWSER) == ALL4 | {"limit_sensitive"}
    # ... while nothing flows back: the account's cluster reads only its own choices
    login(pipe, NEW_BROWSER)  # a later login there: still one hold
    assert len(holds(pipe)) == 1


def test_the_held_browsers_own_opt_in_lifts_nothing_of_the_account_nor_the_carry(
    pipe: Pipeline,
) -> None:
    full_account(pipe)
    login(pipe, NEW_BROWSER)
    # When the held browser opts back in to sale with no token (its own device, confirmed)
    pipe.post("/v1/consent", {"device_id": NEW_BROWSER, "opt_out": {"sale": False},
                              "confirm_opt_in": True})  # fmt: skip
    pipe.resolve()
    # Then the account's opt-out stands everywhere, that browser included (the carry is the
    # account's own login, undated: it yields to no opt-in made there, as a second account's)
    assert opted(pipe, OLD_BROWSERS[0]) == opted(pipe, NEW_BROWSER) == ALL4


def test_a_reject_withdraws_the_carry_for_good(pipe: Pipeline) -> None:
    full_account(pipe)
    login(pipe, NEW_BROWSER)
    (hold,) = holds(pipe)
    # When an operator rejects it (not this person's browser)
    answer = decide(pipe, hold["hold_id"], "reject")
    # Then a hold_reject event withdrew the carry: the browser reads nothing of the account,
    # and a later login of the account there carries nothing again
    assert answer["request_id"]
    assert opted(pipe, NEW_BROWSER) == set()
    login(pipe, NEW_BROWSER)
    assert opted(pipe, NEW_BROWSER) == set()
    assert [h["status"] for h in holds(pipe)] == ["rejected"]


def test_a_released_cap_hold_links_the_browser_as_before(pipe: Pipeline) -> None:
    full_account(pipe)
    login(pipe, NEW_BROWSER)
    (hold,) = holds(pipe)
    decide(pipe, hold["hold_id"], "release")
    assert opted(pipe, NEW_BROWSER) == ALL4
    assert [h["status"] for h in holds(pipe)] == ["released"]


def test_a_backend_link_past_the_cap_carries_nothing(pipe: Pipeline) -> None:
    full_account(pipe)
    # When the backend (IAM) links one more browser: no login, so no carry, as before
    body = {"links": [{"a": {"type": "device_id", "value": NEW_BROWSER},
                       "b": {"type": "email", "value": EMAIL}}]}  # fmt: skip
    pipe.post("/v1/identity-links", body, iam=True)
    pipe.resolve()
    assert [h["reason"] for h in holds(pipe)] == ["cluster_cap"]
    assert opted(pipe, NEW_BROWSER) == set()


def test_a_reject_of_any_of_a_logins_cap_holds_withdraws_the_carry(pipe: Pipeline) -> None:
    # review37: a token binding an email and a customer id is held at the cap once per
    # identifier, and carries from the email alone; the operator rejects the other hold
    customer = "cust-review37-0001"
    pipe.post("/v1/opt-out", {"email": EMAIL, "customer_id": customer})
    pipe.resolve()
    for device in (OLD_BROWSERS[0], NEW_BROWSER):  # the cluster is full after the first
        token = token_for(email=EMAIL, customer_id=customer, device_id=device)
        pipe.post("/v1/consent", {"device_id": device, "identity_token": token})
        pipe.resolve()
    assert opted(pipe, NEW_BROWSER) == ALL4
    held = [h for h in holds(pipe) if h["b"]["type"] == "customer_id" and h["status"] == "held"]
    assert len(held) == 1
    # When the customer id's hold is rejected (not this person's browser)
    decide(pipe, held[0]["hold_id"], "reject")
    # Then the browser reads nothing of the account, whichever identifier carried it
    assert opted(pipe, NEW_BROWSER) == set()
    token = token_for(email=EMAIL, customer_id=customer, device_id=NEW_BROWSER)  # a new login
    pipe.post("/v1/consent", {"device_id": NEW_BROWSER, "identity_token": token})
    pipe.resolve()
    assert opted(pipe, NEW_BROWSER) == set()


def test_a_reject_resolved_before_the_carry_is_written_still_withdraws_it(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # review37: the operator rejects the hold the login has just put, and that reject's
    # hold_reject event is resolved (by another resolver) before this run writes the carry:
    # the resolution found no edge to withdraw
    full_account(pipe)
    write = service.write_assertion
    other = pipe.resolver.resolver.__wrapped__()  # a second resolver, as another invocation

    def rejected_first(*args: Any, **kwargs: Any) -> None:
        if args[-1] is None and not holds_decided:  # the undated carry, before its first write
            (hold,) = holds(pipe)
            answer = invoke(pipe.admin, http_event(
                "POST", f"/v1/admin/holds/{hold['hold_id']}/reject",
                path_parameters={"hold_id": hold["hold_id"]}, iam=True))  # fmt: skip
            event = pipe.aws.dynamodb.get_item(TableName=pipe.aws.table_name, Key={
                "pk": {"S": f"REQ#{json_body(answer)['request_id']}"}, "sk": {"S": "EVENT"}},
                ConsistentRead=True)["Item"]  # fmt: skip
            other.process(deserialize(event))
            holds_decided.append(hold)
        write(*args, **kwargs)

    holds_decided: list[dict[str, Any]] = []
    monkeypatch.setattr(service, "write_assertion", rejected_first)
    # When the account logs in on a new browser, with that reject between its hold and carry
    login(pipe, NEW_BROWSER)
    # Then the carry written after the reject's resolution is withdrawn by this run itself
    assert holds_decided and [h["status"] for h in holds(pipe)] == ["rejected"]
    assert opted(pipe, NEW_BROWSER) == set()
