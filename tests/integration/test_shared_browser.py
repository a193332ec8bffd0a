"""Two accounts on one browser (a family computer, a kiosk, a friend's laptop): the second
account's login is held for an operator, so its devices read nothing of the first account's
(review s30 stranger F2); the held account's opt-outs, never its opt-ins, are carried one way
to the browser it logged in on, so they are honoured there (review s30 trust F2;
docs/decisions.md, "A second account on one browser is held")."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

ANNA, BEN = "anna@example.com", "ben@example.com"
SHARED = "dev-shared-cccccccccc"
ANNAS_LAPTOP, BENS_PHONE = "dev-annalaptop-eeeeee", "dev-benphone-dddddddd"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def opted(pipe: Pipeline, device: str) -> set[str]:
    state = pipe.get(f"/v1/consent/{device}", device_id=device)["opt_out"]
    return {p for p, v in state.items() if v}


def login(pipe: Pipeline, device: str, **account: Any) -> dict[str, Any]:
    token = token_for(device_id=device, **account)
    pipe.post("/v1/consent", {"device_id": device, "identity_token": token})
    return pipe.resolve()


def holds(pipe: Pipeline) -> list[dict[str, Any]]:
    listed = invoke(pipe.admin, http_event("GET", "/v1/admin/holds", iam=True))
    assert listed["statusCode"] == 200, listed["body"]
    found: list[dict[str, Any]] = json_body(listed)["holds"]
    return found


def two_accounts(pipe: Pipeline) -> None:
    """Anna limited the use of her sensitive data by webform; Ben opted out of sale. Each is
    logged in on a device of their own."""
    pipe.post("/v1/opt-out", {"email": ANNA, "purposes": ["limit_sensitive"]})
    pipe.post("/v1/opt-out", {"email": BEN, "purposes": ["sale"]})
    pipe.resolve()
    login(pipe, ANNAS_LAPTOP, email=ANNA)
    login(pipe, BENS_PHONE, email=BEN)
    assert (opted(pipe, ANNAS_LAPTOP), opted(pipe, BENS_PHONE)) == ({"limit_sensitive"}, {"sale"})


@pytest.mark.parametrize("first", [ANNA, BEN])
def test_two_logins_on_one_browser_in_either_order_read_nothing_of_each_other(
    pipe: Pipeline, first: str
) -> None:
    # Given two accounts, each with a choice and a device of its own
    two_accounts(pipe)
    second = BEN if first == ANNA else ANNA
    # When both log in on the family browser, one after the other
    login(pipe, SHARED, email=first)
    login(pipe, SHARED, email=second)
    # Then the second account's devices read nothing of the first's
    firsts, seconds = (ANNAS_LAPTOP, BENS_PHONE) if first == ANNA else (BENS_PHONE, ANNAS_LAPTOP)
    assert opted(pipe, seconds) == ({"sale"} if first == ANNA else {"limit_sensitive"})
    # ... the browser stays with the account that logged in there first (nothing is lifted),
    # and the second account's opt-out is honoured there: carried one way to the browser
    # only, never to the rest of the first account (review s31 stranger F1)
    assert opted(pipe, SHARED) == {"limit_sensitive", "sale"}
    assert opted(pipe, firsts) == ({"limit_sensitive"} if first == ANNA else {"sale"})
    # ... and the second login waits for an operator
    (hold,) = holds(pipe)
    assert (hold["status"], hold["reason"], hold["a"]["type"]) == ("held", "second_account",
                                                                    "device_id")  # fmt: skip
    # When the first account opts out of more later, by email
    pipe.post("/v1/opt-out", {"email": first, "purposes": ["share"]})
    pipe.resolve()
    # Then it reaches the browser and the first account's device, never the second's
    assert "share" in opted(pipe, SHARED) and "share" in opted(pipe, firsts)
    assert "share" not in opted(pipe, seconds)


def test_a_choice_the_second_account_makes_on_the_shared_browser_is_kept(pipe: Pipeline) -> None:
    # Given Anna's family browser, and Ben logged in on his phone
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    # When Ben, logged in on the family browser, opts out of profiling there
    token = token_for(email=BEN, device_id=SHARED)
    pipe.post("/v1/consent", {"device_id": SHARED, "identity_token": token,
                              "opt_out": {"profiling": True}})  # fmt: skip
    pipe.resolve()
    # Then his account holds it (his phone reads it) and so does the browser it was made on
    assert opted(pipe, BENS_PHONE) == {"sale", "profiling"}
    assert opted(pipe, SHARED) == {"limit_sensitive", "profiling", "sale"}
    # ... and nothing of Anna's reached Ben
    assert "limit_sensitive" not in opted(pipe, BENS_PHONE)


def test_every_later_login_of_the_second_account_finds_the_same_hold(pipe: Pipeline) -> None:
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    for _ in range(3):
        login(pipe, SHARED, email=BEN)
    (hold,) = holds(pipe)
    assert hold["status"] == "held"
    assert opted(pipe, BENS_PHONE) == {"sale"}
    # ... and one edge carries Ben's opt-outs to the browser, written once
    (edge,) = [i for i in pipe.items("ID#") if i["sk"].startswith("ASSERTS#")]
    assert edge["pk"].startswith("ID#email#") and edge["sk"].startswith("ASSERTS#device_id#")


def test_a_released_hold_merges_and_a_rejected_one_stays_apart_at_later_logins(
    pipe: Pipeline,
) -> None:
    # Given Ben's login on Anna's browser held
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    login(pipe, SHARED, email=BEN)
    (hold,) = holds(pipe)
    # When an operator rejects it, Then a later login of Ben's there stays apart
    path = f"/v1/admin/holds/{hold['hold_id']}/reject"
    event = http_event("POST", path, path_parameters={"hold_id": hold["hold_id"]}, iam=True)
    assert invoke(pipe.admin, event)["statusCode"] == 200
    login(pipe, SHARED, email=BEN)
    assert opted(pipe, BENS_PHONE) == {"sale"}
    assert [h["status"] for h in holds(pipe)] == ["rejected"]
    # When a third account's login there is held and released (the operator knows it is Anna's)
    login(pipe, SHARED, customer_id="cust-anna-0001")
    (held,) = [h for h in holds(pipe) if h["status"] == "held"]
    path = f"/v1/admin/holds/{held['hold_id']}/release"
    event = http_event("POST", path, path_parameters={"hold_id": held["hold_id"]}, iam=True)
    assert invoke(pipe.admin, event)["statusCode"] == 202
    pipe.resolve()
    # Then that one is linked: the customer id is in the browser's cluster, and no new hold
    login(pipe, SHARED, customer_id="cust-anna-0001")
    assert sorted(h["status"] for h in holds(pipe)) == ["rejected", "released"]
    found = invoke(pipe.admin, http_event("POST", "/v1/admin/lookup",
                                          {"type": "customer_id", "value": "cust-anna-0001"},
                                          iam=True))  # fmt: skip
    assert json_body(found)["effective"]["limit_sensitive"] is True


def test_an_export_of_the_second_account_shows_its_held_login_and_why(pipe: Pipeline) -> None:
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    login(pipe, SHARED, email=BEN)
    body = {"type": "email", "value": BEN}
    answer = invoke(pipe.admin, http_event("POST", "/v1/admin/exports/identity", body, iam=True))
    assert answer["statusCode"] == 200, answer["body"]
    (held,) = [r for r in json_body(answer)["records"] if r["record"] == "hold"]
    assert (held["status"], held["reason"], held["other"]["type"]) == (
        "held", "second_account", "device_id",
    )  # fmt: skip


def test_the_same_account_logging_in_again_with_more_identifiers_links_them(
    pipe: Pipeline,
) -> None:
    # Given Anna's browser, linked to her email
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    # When her next token also binds her customer id
    outcome = login(pipe, SHARED, email=ANNA, customer_id="cust-anna-0001")
    # Then it is the same account: linked, no hold
    assert holds(pipe) == [] and outcome is not None
    found = invoke(pipe.admin, http_event("POST", "/v1/admin/lookup",
                                          {"type": "customer_id", "value": "cust-anna-0001"},
                                          iam=True))  # fmt: skip
    assert json_body(found)["effective"]["limit_sensitive"] is True


def test_a_held_second_accounts_own_identifiers_are_still_one_account(pipe: Pipeline) -> None:
    # Given Anna's browser
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    # When Ben logs in there with a token binding his email and his customer id
    login(pipe, SHARED, email=BEN, customer_id="cust-ben-0001")
    # Then the device link is held, but his customer id joins his email (the token says so)
    (hold,) = holds(pipe)
    assert hold["reason"] == "second_account"
    found = invoke(pipe.admin, http_event("POST", "/v1/admin/lookup",
                                          {"type": "customer_id", "value": "cust-ben-0001"},
                                          iam=True))  # fmt: skip
    effective = json_body(found)["effective"]
    assert (effective["sale"], effective["limit_sensitive"]) == (True, False)


def test_the_businesss_own_link_still_merges_as_stated(pipe: Pipeline) -> None:
    # Given Anna's browser
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    # When the backend itself links that browser to Ben (POST /v1/identity-links)
    link = {"a": {"type": "device_id", "value": SHARED}, "b": {"type": "email", "value": BEN}}
    pipe.post("/v1/identity-links", {"links": [link]}, iam=True)
    pipe.resolve()
    # Then it is linked as the business states it: no hold
    assert holds(pipe) == []
    assert opted(pipe, BENS_PHONE) == {"sale", "limit_sensitive"}


def test_a_webform_opt_out_with_a_second_accounts_token_is_held_too(pipe: Pipeline) -> None:
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    token = token_for(email=BEN, device_id=SHARED)
    pipe.post("/v1/opt-out", {"email": BEN, "device_id": SHARED, "identity_token": token,
                              "purposes": ["share"]})  # fmt: skip
    pipe.resolve()
    assert opted(pipe, BENS_PHONE) == {"sale", "share"}
    assert "limit_sensitive" not in opted(pipe, BENS_PHONE)
    assert [h["reason"] for h in holds(pipe)] == ["second_account"]


def jobs_naming(pipe: Pipeline, value: str) -> dict[str, set[str]]:
    """Per system, the purposes of every job made so far that names this identifier."""
    found: dict[str, set[str]] = {}
    for job in pipe.items("REQ#"):
        if job.get("kind") == "job" and any(i["value"] == value for i in job["identifiers"]):
            found.setdefault(job["system"], set()).update(job["purposes"])
    return found


def release_or_reject(pipe: Pipeline, decision: str) -> None:
    (hold,) = [h for h in holds(pipe) if h["status"] == "held"]
    path = f"/v1/admin/holds/{hold['hold_id']}/{decision}"
    event = http_event("POST", path, path_parameters={"hold_id": hold["hold_id"]}, iam=True)
    assert invoke(pipe.admin, event)["statusCode"] == (202 if decision == "release" else 200)
    pipe.resolve()  # each a second account's is an event for the resolver


@pytest.mark.parametrize("first", [ANNA, BEN])
def test_the_held_accounts_later_opt_out_reaches_the_browser_it_logged_in_on(
    pipe: Pipeline, first: str
) -> None:
    # Given both accounts logged in on the family browser, the second one held
    two_accounts(pipe)
    second = BEN if first == ANNA else ANNA
    seconds = BENS_PHONE if second == BEN else ANNAS_LAPTOP
    login(pipe, SHARED, email=first)
    login(pipe, SHARED, email=second)
    pipe.drain_all()
    # When the second account, later, opts out of profiling by webform, not on that browser
    pipe.post("/v1/opt-out", {"email": second, "purposes": ["profiling"]})
    pipe.resolve()
    # Then the browser it is logged in on is opted out of it (its page applies it there) ...
    assert "profiling" in opted(pipe, SHARED) and "profiling" in opted(pipe, seconds)
    # ... and the systems keyed by device are told that browser for it
    assert "profiling" in jobs_naming(pipe, SHARED).get("webhook", set())


def test_a_reject_withdraws_the_held_accounts_carry_for_good(pipe: Pipeline) -> None:
    # Given Ben's login on Anna's browser held, his sale carried there
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    login(pipe, SHARED, email=BEN)
    assert opted(pipe, SHARED) == {"limit_sensitive", "sale"}
    # When an operator rejects the hold (not someone who shares that browser: a stranger
    # with its id, review s31 stranger F1)
    release_or_reject(pipe, "reject")
    # Then the browser drops what only Ben's carry told it, and neither a later login of his
    # there nor a later opt-out of his brings it back; nothing of Anna's is lifted, and Ben
    # keeps his own opt-outs
    assert opted(pipe, SHARED) == {"limit_sensitive"}
    login(pipe, SHARED, email=BEN)
    pipe.post("/v1/opt-out", {"email": BEN, "purposes": ["share"]})
    pipe.resolve()
    assert opted(pipe, SHARED) == opted(pipe, ANNAS_LAPTOP) == {"limit_sensitive"}
    assert opted(pipe, BENS_PHONE) == {"sale", "share"}
    assert [h["status"] for h in holds(pipe)] == ["rejected"]
    # ... and `optout status` of the reject's event reads it resolved
    (edge,) = [i for i in pipe.items("ID#") if i["sk"].startswith("ASSERTED#")]
    assert edge["withdrawn"] and edge["carried"] == []


def test_a_reject_stops_a_later_carry_when_there_was_none_to_withdraw(pipe: Pipeline) -> None:
    # Given Ben's login on Anna's browser held, and its carry gone before the operator decides
    # (lapsed by TTL, refused, or never written: review s31 trustmerge F5)
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    login(pipe, SHARED, email=BEN)
    for edge in [i for i in pipe.items("ID#") if i["sk"].startswith(("ASSERTS#", "ASSERTED#"))]:
        key = {"pk": {"S": edge["pk"]}, "sk": {"S": edge["sk"]}}
        pipe.aws.dynamodb.delete_item(TableName=pipe.aws.table_name, Key=key)
    # When an operator rejects the hold, and Ben logs in there again and opts out of share
    release_or_reject(pipe, "reject")
    login(pipe, SHARED, email=BEN)
    pipe.post("/v1/opt-out", {"email": BEN, "purposes": ["share"]})
    pipe.resolve()
    # Then no carry is written for the rejected pair: the browser reads nothing of Ben's
    assert not [i for i in pipe.items("ID#") if i["sk"].startswith(("ASSERTS#", "ASSERTED#"))]
    assert opted(pipe, SHARED) == {"limit_sensitive"}
    assert [h["status"] for h in holds(pipe)] == ["rejected"]


def test_the_carry_keeps_every_opt_out_through_a_release(pipe: Pipeline) -> None:
    # Given Ben's login on Anna's browser held, his sale carried there
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    login(pipe, SHARED, email=BEN)
    assert opted(pipe, SHARED) == {"limit_sensitive", "sale"}
    # When an operator releases it (one household the business treats as one)
    release_or_reject(pipe, "release")
    # Then the two clusters merge and nothing is lifted anywhere
    for device in (SHARED, ANNAS_LAPTOP, BENS_PHONE):
        assert opted(pipe, device) == {"limit_sensitive", "sale"}
    # ... and a later opt-out of Ben's reaches the browser as a member's
    pipe.post("/v1/opt-out", {"email": BEN, "purposes": ["share"]})
    pipe.resolve()
    assert "share" in opted(pipe, SHARED)


def test_the_held_accounts_opt_in_does_not_reach_the_browser(pipe: Pipeline) -> None:
    # Given Anna's browser, where she also opted out of share herself, and Ben held there
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    anna = token_for(email=ANNA, device_id=SHARED)
    pipe.post("/v1/consent", {"device_id": SHARED, "identity_token": anna,
                              "opt_out": {"share": True}})  # fmt: skip
    pipe.resolve()
    login(pipe, SHARED, email=BEN)
    assert opted(pipe, SHARED) == {"limit_sensitive", "share", "sale"}
    # When Ben, on his phone, confirms opting in to everything Anna's browser is out of
    ben = token_for(email=BEN, device_id=BENS_PHONE)
    pipe.post("/v1/consent", {"device_id": BENS_PHONE, "identity_token": ben,
                              "confirm_opt_in": True,
                              "opt_out": {"limit_sensitive": False, "share": False,
                                          "sale": False}})  # fmt: skip
    pipe.resolve()
    # Then Anna's opt-outs stay, on the browser and on her laptop (only opt-outs are carried)
    assert opted(pipe, BENS_PHONE) == set()
    assert opted(pipe, SHARED) == {"limit_sensitive", "share"}
    assert opted(pipe, ANNAS_LAPTOP) == {"limit_sensitive", "share"}


@pytest.fixture
def counted(
    aws: Aws, dynamodb_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Pipeline, list[str]]]:
    yield build_pipeline(aws, monkeypatch), dynamodb_calls


def test_a_first_login_writes_what_it_wrote_before(counted: tuple[Pipeline, list[str]]) -> None:
    # Given an account logged in on one device already
    pipe, calls = counted
    login(pipe, BENS_PHONE, email=BEN)
    # When it logs in on a new browser, Then the resolution makes the same calls as before
    # the second-account check (it reads the walk `_link` made anyway) and holds nothing
    calls.clear()
    login(pipe, SHARED, email=BEN)
    assert calls == FIRST_LOGIN_CALLS
    assert pipe.items("HOLD") == []


def test_a_later_held_login_writes_the_carry_no_more(counted: tuple[Pipeline, list[str]]) -> None:
    # Given Ben's login on Anna's browser held once (the hold and the carrying edge written)
    pipe, calls = counted
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    login(pipe, SHARED, email=BEN)
    # When he logs in there again, Then it makes the calls it made before the carry: the
    # edge is found in the walk already read, and written no more (it is undated: no naming)
    calls.clear()
    login(pipe, SHARED, email=BEN)
    assert calls == REPEAT_HELD_LOGIN_CALLS


def test_a_held_accounts_opt_out_stays_on_the_browser_through_an_opt_in_made_there(
    pipe: Pipeline,
) -> None:
    # Given Ben's login held on Anna's browser, his sale carried there
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    login(pipe, SHARED, email=BEN)
    # When Anna, logged in there, confirms opting in to sale and share on it
    anna = token_for(email=ANNA, device_id=SHARED)
    pipe.post("/v1/consent", {"device_id": SHARED, "identity_token": anna,
                              "confirm_opt_in": True,
                              "opt_out": {"sale": False, "share": False}})  # fmt: skip
    pipe.resolve()
    # Then Ben's opt-out stays on the browser he is known on (over-honouring) ...
    assert "sale" in opted(pipe, SHARED)
    # ... and one he makes later, elsewhere, reaches it too, without a new login there
    pipe.post("/v1/opt-out", {"email": BEN, "purposes": ["share"]})
    pipe.resolve()
    assert "share" in opted(pipe, SHARED) and "share" in opted(pipe, BENS_PHONE)


def test_a_second_accounts_device_less_token_on_the_shared_browser_reads_nothing_of_the_first(
    pipe: Pipeline,
) -> None:
    # Given Anna (limit_sensitive) logged in on the family browser, Ben (sale) on his phone
    two_accounts(pipe)
    login(pipe, SHARED, email=ANNA)
    # When Ben opens his email's opt-out link (a token naming no device) on the family browser
    pipe.post("/v1/opt-out", {"device_id": SHARED, "identity_token": token_for(email=BEN),
                              "purposes": ["share"]})  # fmt: skip
    pipe.resolve()
    # Then his devices read nothing of Anna's (review s30 final F1), nor later ones of hers
    assert opted(pipe, BENS_PHONE) == {"sale", "share"}
    pipe.post("/v1/opt-out", {"email": ANNA, "purposes": ["profiling"]})
    pipe.resolve()
    assert "profiling" not in opted(pipe, BENS_PHONE)
    # ... and the browser is opted out of what this request asked
    assert "share" in opted(pipe, SHARED)


# The hold's put is a transaction with its account's count since holds37 (one call, as before).
REPEAT_HELD_LOGIN_CALLS = ["PutItem", "BatchGetItem", "Query", "Query", "Query", "Query", "Query",
                           "TransactWriteItems", "Query", "Query", "Query", "Query", "Query",
                           "BatchGetItem", "PutItem"]  # fmt: skip


# Measured on main before this change (3792663): the DynamoDB calls of a consent post with a
# token (one PutItem) and its resolution, for a new browser of an account with one device.
FIRST_LOGIN_CALLS = ["PutItem", "BatchGetItem", "BatchGetItem", "PutItem", "Query", "Query",
                     "Query", "TransactWriteItems", "Query", "Query", "Query", "BatchGetItem",
                     "PutItem"]  # fmt: skip
