"""A stranger with an account of his own (review s31 stranger): a token seen before its page
used it (F2), and his held login on someone's browser (F1), give him no read of that person
and no opt-out pinned on their account; an edge from before session 30 yields to the person's
own confirmed opt-in (F4)."""

from collections.abc import Iterator
from typing import Any

import pytest

from optout.identity_token import device_sha256
from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

ANNA, MALLORY = "anna@example.com", "mallory@example.com"
ANNAS_BROWSER, ANNAS_PHONE = "dev-annabrowser-aaaaaa", "dev-annaphone-bbbbbbbb"
MALLORYS_PHONE = "dev-malphone-cccccccccc"
ALL5 = ["sale", "share", "targeted_advertising", "profiling", "limit_sensitive"]


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def opted(pipe: Pipeline, device: str) -> set[str]:
    state = pipe.get(f"/v1/consent/{device}", device_id=device)
    return {p for p, v in state["opt_out"].items() if v}


def login(pipe: Pipeline, device: str, email: str, **body: Any) -> None:
    token = token_for(email=email, device_id=device)
    pipe.post("/v1/consent", {"device_id": device, "identity_token": token, **body})
    pipe.resolve()


def reject_the_hold(pipe: Pipeline) -> None:
    listed = json_body(invoke(pipe.admin, http_event("GET", "/v1/admin/holds", iam=True)))
    (hold,) = [h for h in listed["holds"] if h["status"] == "held"]
    path = f"/v1/admin/holds/{hold['hold_id']}/reject"
    event = http_event("POST", path, path_parameters={"hold_id": hold["hold_id"]}, iam=True)
    answer = invoke(pipe.admin, event)
    assert answer["statusCode"] == 200, answer["body"]
    assert json_body(answer)["request_id"]  # the event that withdraws the carry
    pipe.resolve()


def jobs_naming(pipe: Pipeline, value: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for job in pipe.items("REQ#"):
        if job.get("kind") == "job" and any(i["value"] == value for i in job["identifiers"]):
            found.setdefault(job["system"], set()).update(job["purposes"])
    return found


# -- F2: a token seen before its page used it ---------------------------------------------------


@pytest.mark.parametrize("bound", [True, False], ids=["device-bound", "device-less"])
def test_a_token_posted_with_a_typed_email_and_no_device_gives_no_read_of_its_person(
    pipe: Pipeline, bound: bool
) -> None:
    # Given Anna logged in on her phone, and Mallory on his
    login(pipe, ANNAS_PHONE, ANNA)
    login(pipe, MALLORYS_PHONE, MALLORY)
    pipe.post("/v1/opt-out", {"email": MALLORY, "purposes": ["share"]})
    pipe.resolve()
    # When Mallory posts a token of Anna's first (her next page's, or an emailed link's), with
    # his own email typed and no device
    token = token_for(email=ANNA, device_id=ANNAS_BROWSER) if bound else token_for(email=ANNA)
    taken = pipe.post("/v1/opt-out", {"identity_token": token, "email": MALLORY,
                                      "purposes": ["sale"]})  # fmt: skip
    assert taken["request_id"]  # the opt-out he typed is taken, as without a token
    pipe.resolve()
    # ... and Anna later limits her sensitive data by email
    pipe.post("/v1/opt-out", {"email": ANNA, "purposes": ["limit_sensitive"]})
    pipe.resolve()
    # Then his phone reads nothing of hers (README: a copy cannot link another browser)
    assert opted(pipe, MALLORYS_PHONE) == {"share", "sale"}
    # ... no edge names his email from hers
    assert not [i for i in pipe.items("ID#email") if i["sk"].startswith("ASSERTS#")]
    if bound:  # ... and her page can still use the token: he never used it
        used = pipe.post("/v1/consent", {"device_id": ANNAS_BROWSER, "identity_token": token})
        assert used["device_id"] == ANNAS_BROWSER


def test_a_device_bound_token_alone_without_its_device_is_refused_naming_the_field(
    pipe: Pipeline,
) -> None:
    token = token_for(email=ANNA, device_sha256=device_sha256(ANNAS_BROWSER))
    answer = invoke(pipe.capture, http_event("POST", "/v1/opt-out", {"identity_token": token}))
    assert answer["statusCode"] == 422, answer["body"]
    error = json_body(answer)["error"]
    assert error["field"] == "identity_token" and "device_id" in error["message"]
    assert ANNA not in answer["body"] and ANNAS_BROWSER not in answer["body"]
    assert pipe.items("REQ#") == []


# -- F1: a held account's carry is the browser's only ------------------------------------------


def test_a_strangers_held_login_on_your_browser_pins_nothing_on_your_account(
    pipe: Pipeline,
) -> None:
    # Given Anna on her browser and her phone, Mallory on his phone
    login(pipe, ANNAS_BROWSER, ANNA)
    login(pipe, ANNAS_PHONE, ANNA)
    login(pipe, MALLORYS_PHONE, MALLORY)
    phone_before = pipe.get(f"/v1/consent/{ANNAS_PHONE}", device_id=ANNAS_PHONE)
    # When Mallory, with Anna's browser id in his cookie, logs in there (held), opts out of
    # everything, then toggles profiling on his phone
    login(pipe, ANNAS_BROWSER, MALLORY)
    pipe.post("/v1/opt-out", {"email": MALLORY, "purposes": ALL5})
    pipe.resolve()
    login(pipe, MALLORYS_PHONE, MALLORY, opt_out={"profiling": False}, confirm_opt_in=True)
    login(pipe, MALLORYS_PHONE, MALLORY, opt_out={"profiling": True})
    # Then Anna's phone and email read nothing of his, and her phone's state never moved
    assert opted(pipe, ANNAS_PHONE) == set()
    assert pipe.get(f"/v1/consent/{ANNAS_PHONE}", device_id=ANNAS_PHONE) == phone_before
    found = invoke(pipe.admin, http_event("POST", "/v1/admin/lookup",
                                          {"type": "email", "value": ANNA}, iam=True))  # fmt: skip
    assert not any(json_body(found)["effective"].values())
    # ... no system is told Anna's email for his purposes; the browser's device is
    assert jobs_naming(pipe, ANNA) == {}
    assert jobs_naming(pipe, ANNAS_BROWSER).get("webhook") == set(ALL5)
    # ... his opt-outs are honoured on the browser he logged in on (the household's case)
    assert opted(pipe, ANNAS_BROWSER) == set(ALL5)
    # When the operator rejects the hold (not a household), Then the browser drops them
    reject_the_hold(pipe)
    assert opted(pipe, ANNAS_BROWSER) == set()
    # ... and his later login there brings nothing back
    login(pipe, ANNAS_BROWSER, MALLORY)
    assert opted(pipe, ANNAS_BROWSER) == set()
    # ... while Anna's own confirmed opt-in and opt-outs work as ever
    login(pipe, ANNAS_PHONE, ANNA, opt_out={"share": True})
    assert opted(pipe, ANNAS_BROWSER) == opted(pipe, ANNAS_PHONE) == {"share"}


# -- F4: an edge from before session 30 -----------------------------------------------------


def test_a_strangers_undated_edge_from_before_session_30_still_counts_whole(
    pipe: Pipeline,
) -> None:
    # Given Anna's browser, and a stranger's browser that named her email before session 30
    # (its edge has no `named_at`)
    login(pipe, ANNAS_BROWSER, ANNA)
    pipe.post("/v1/opt-out", {"email": ANNA, "device_id": "dev-stranger-ssssssssss",
                              "purposes": ["sale"]})  # fmt: skip
    pipe.resolve()
    (edge,) = [i for i in pipe.aws.items() if i["sk"].startswith("ASSERTED#")]
    pipe.aws.dynamodb.update_item(TableName=pipe.aws.table_name,
                                  Key={"pk": {"S": edge["pk"]}, "sk": {"S": edge["sk"]}},
                                  UpdateExpression="REMOVE named_at")  # fmt: skip
    assert opted(pipe, ANNAS_BROWSER) == {"sale"}
    # When Anna, logged in, confirms opting back in
    login(pipe, ANNAS_BROWSER, ANNA, opt_out={"sale": False}, confirm_opt_in=True)
    # Then that browser's edge still holds her opted out: an undated edge counts whole, the
    # price of never losing her own phone's later opt-out (review s31 trustmerge F4; deploy.md's
    # support line says so) ...
    assert opted(pipe, ANNAS_BROWSER) == {"sale"}
    # ... until that browser names her again, which dates the edge: her opt-in after that wins
    pipe.post("/v1/opt-out", {"email": ANNA, "device_id": "dev-stranger-ssssssssss",
                              "purposes": ["sale"]})  # fmt: skip
    pipe.resolve()
    login(pipe, ANNAS_BROWSER, ANNA, opt_out={"sale": False}, confirm_opt_in=True)
    assert opted(pipe, ANNAS_BROWSER) == set()
