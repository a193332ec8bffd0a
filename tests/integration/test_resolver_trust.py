"""Verified and asserted identity through capture and the resolver (README: the table).

Verified (the backend, or a valid identity token) merges clusters both ways. Asserted (typed,
or `identity` without a token) only adds opt-outs, one way, and never reads, undoes or crowds
out anyone else's state."""

from collections.abc import Iterator
from typing import Any

import pytest

from optout.purposes import SALE_SHARE_PURPOSES
from tests.conftest import Aws
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

VICTIM = "victim@example.com"
VICTIM_DEVICE = "dev-victim-aaaaaaaaaaa"
STRANGER = "dev-stranger-bbbbbbbbbb"
# What a webform opt-out without purposes gives: the four sale/share purposes, not the limit.
ALL_OUT = {**dict.fromkeys(SALE_SHARE_PURPOSES, True), "limit_sensitive": False}
ALL_IN = dict.fromkeys(ALL_OUT, False)


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def state(pipe: Pipeline, device: str) -> dict[str, Any]:
    return pipe.get(f"/v1/consent/{device}", device_id=device)


def victim_logged_in_and_opted_out(pipe: Pipeline) -> None:
    login = token_for(email=VICTIM, device_id=VICTIM_DEVICE)
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "identity_token": login})
    pipe.post("/v1/opt-out", {"email": VICTIM})
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_OUT


def test_naming_someone_elses_email_shows_none_of_their_state(pipe: Pipeline) -> None:
    # Given a victim whose email and browser are opted out
    victim_logged_in_and_opted_out(pipe)
    # When a stranger's browser sends the victim's email without a token
    pipe.post("/v1/consent", {"device_id": STRANGER, "identity": {"email": VICTIM}})
    pipe.resolve()
    # Then the stranger's device reads as a stranger: no opt-outs, no sign the email is known
    assert state(pipe, STRANGER) == {"device_id": STRANGER, "opt_out": ALL_IN,
                                     "gpc_honored": False, "updated_at": None,
                                     "gpc_signal": False}  # fmt: skip


def test_a_stranger_cannot_undo_someone_elses_opt_out(pipe: Pipeline) -> None:
    victim_logged_in_and_opted_out(pipe)
    # When a stranger sends the victim's email with every purpose false, even "confirmed"
    body = {"device_id": STRANGER, "identity": {"email": VICTIM}, "opt_out": ALL_IN,
            "confirm_opt_in": True}  # fmt: skip
    pipe.post("/v1/consent", body)
    pipe.resolve()
    # Then the victim's browser is still opted out of everything
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_OUT


def test_asserted_junk_does_not_count_toward_the_victims_cluster_cap(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="3")
    pipe.post("/v1/opt-out", {"email": VICTIM})
    # Given ten junk browsers that each sent the victim's email without a token
    for n in range(10):
        pipe.post(
            "/v1/consent",
            {"device_id": f"dev-junk-{n:02d}-aaaaaaaa", "identity": {"email": VICTIM}},
        )
    pipe.resolve()
    # When the victim logs in on two real browsers (a cluster of three with the email)
    for device in (VICTIM_DEVICE, "dev-victim-second-bbbb"):
        login = token_for(email=VICTIM, device_id=device)
        pipe.post("/v1/consent", {"device_id": device, "identity_token": login})
    pipe.resolve()
    # Then no link is held and both browsers carry the webform opt-out
    assert [i for i in pipe.items("HOLD") if i["kind"] == "hold"] == []
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_OUT
    assert state(pipe, "dev-victim-second-bbbb")["opt_out"] == ALL_OUT


def test_an_asserting_browser_tells_the_email_now_and_later_and_hears_nothing_back(
    pipe: Pipeline,
) -> None:
    # Given a browser opted out of sale that then sends an email without a token
    pipe.post("/v1/consent", {"device_id": STRANGER, "opt_out": {"sale": True}})
    told = pipe.post("/v1/consent", {"device_id": STRANGER, "identity": {"email": VICTIM}})
    pipe.resolve()
    # Then the email's systems get the browser's opt-out now
    jobs = {i["system"]: i for i in pipe.items(f"REQ#{told['request_id']}") if i["kind"] == "job"}
    assert "salesforce" in jobs and jobs["salesforce"]["purposes"] == ["sale"]
    # When the browser later opts out of profiling too
    later = pipe.post("/v1/consent", {"device_id": STRANGER, "opt_out": {"profiling": True}})
    pipe.resolve()
    jobs = {i["system"]: i for i in pipe.items(f"REQ#{later['request_id']}") if i["kind"] == "job"}
    assert "profiling" in jobs["salesforce"]["purposes"]
    # And an opt-out of the email (webform) does not flow back to that browser
    pipe.post("/v1/opt-out", {"email": VICTIM, "purposes": ["share"]})
    pipe.resolve()
    assert state(pipe, STRANGER)["opt_out"]["share"] is False


def test_an_asserted_identifier_on_a_request_still_opts_that_device_out(pipe: Pipeline) -> None:
    pipe.post("/v1/opt-out", {"email": VICTIM, "device_id": STRANGER})
    pipe.resolve()
    assert state(pipe, STRANGER)["opt_out"] == ALL_OUT


def test_a_webform_opt_out_for_an_email_reaches_every_verified_browser(pipe: Pipeline) -> None:
    login = token_for(email=VICTIM, device_id=VICTIM_DEVICE)
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "identity_token": login})
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"]["sale"] is False
    pipe.post("/v1/opt-out", {"email": VICTIM})
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_OUT


def test_an_unconfirmed_false_is_accepted_but_lifts_no_opt_out_and_no_gpc(
    pipe: Pipeline,
) -> None:
    # Given a browser with GPC on and an opt-out of profiling
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "opt_out": {"profiling": True}},
              headers={"sec-gpc": "1"})  # fmt: skip
    pipe.resolve()
    # When an old banner posts "allow all" without confirm_opt_in (and without the signal)
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "opt_out": ALL_IN})
    pipe.resolve()
    # Then nothing is lifted
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_OUT
    assert state(pipe, VICTIM_DEVICE)["gpc_honored"] is True


def test_a_confirmed_opt_in_on_the_own_device_lifts_its_own_opt_out(pipe: Pipeline) -> None:
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "opt_out": {"sale": True}})
    pipe.resolve()
    body = {"device_id": VICTIM_DEVICE, "opt_out": {"sale": False}, "confirm_opt_in": True}
    pipe.post("/v1/consent", body)
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"]["sale"] is False


def test_a_confirmed_opt_in_with_a_token_lifts_the_bound_email_too(pipe: Pipeline) -> None:
    # Given a logged-in browser whose email opted out through the webform
    victim_logged_in_and_opted_out(pipe)
    # When the person, logged in, confirms opting back in to sale
    login = token_for(email=VICTIM, device_id=VICTIM_DEVICE)
    body = {"device_id": VICTIM_DEVICE, "identity_token": login, "opt_out": {"sale": False},
            "confirm_opt_in": True}  # fmt: skip
    pipe.post("/v1/consent", body)
    pipe.resolve()
    # Then sale is allowed again on their browser (the email's own register was lifted)
    assert state(pipe, VICTIM_DEVICE)["opt_out"]["sale"] is False
    assert state(pipe, VICTIM_DEVICE)["opt_out"]["profiling"] is True


def test_a_strangers_carried_opt_out_never_outranks_the_persons_newer_confirmed_opt_in(
    pipe: Pipeline,
) -> None:
    """Review s30 stranger F1: a stranger's browser that named the email kept the person opted
    out after their own confirmed, token-bound opt-in (its edge's `carried` counted whatever the
    email's own registers said)."""

    def opt_in() -> dict[str, Any]:  # logged in: a token of its own each time
        login = token_for(email=VICTIM, device_id=VICTIM_DEVICE)
        return {"device_id": VICTIM_DEVICE, "opt_out": {"sale": False, "profiling": False},
                "confirm_opt_in": True, "identity_token": login}  # fmt: skip

    # Given the person logged in on their browser, and a stranger who, on his own browser,
    # opted out naming their email
    login = token_for(email=VICTIM, device_id=VICTIM_DEVICE)
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "identity_token": login})
    pipe.post("/v1/opt-out", {"email": VICTIM, "device_id": STRANGER,
                              "purposes": ["sale", "profiling"]})  # fmt: skip
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"]["sale"] is True
    # When the person, logged in, confirms opting back in
    pipe.post("/v1/consent", opt_in())
    pipe.resolve()
    # Then the stranger's older opt-out no longer holds them (his own browser stays opted out)
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_IN
    assert state(pipe, STRANGER)["opt_out"]["sale"] is True
    # When the stranger opts out again on his browser, naming no one, it stays his (review
    # s30 trust F4: a repeat is no new act towards the person)
    pipe.post("/v1/consent", {"device_id": STRANGER, "opt_out": {"sale": True}})
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_IN
    # When he names the email again (later than the opt-in), what his browser is opted out of
    # applies again (an opt-out needs no verification)
    pipe.post("/v1/consent", {"device_id": STRANGER, "identity": {"email": VICTIM}})
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == {**ALL_IN, "sale": True, "profiling": True}
    # And the person can opt back in again
    pipe.post("/v1/consent", opt_in())
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_IN


GPC3 = ("sale", "share", "targeted_advertising")


def test_a_strangers_gpc_session_does_not_outrank_the_persons_newer_opt_in(pipe: Pipeline) -> None:
    """Review s30 trust F4: the banner's GPC post, once per session and naming no one, moved
    the carried time past the person's opt-in and put the opt-outs back every session."""
    login = token_for(email=VICTIM, device_id=VICTIM_DEVICE)
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "identity_token": login})
    # Given a GPC browser that named the person's email once
    pipe.post("/v1/consent", {"device_id": STRANGER, "gpc": True, "identity": {"email": VICTIM}},
              headers={"sec-gpc": "1"})  # fmt: skip
    pipe.resolve()
    assert all(state(pipe, VICTIM_DEVICE)["opt_out"][p] for p in GPC3)
    # And the person, logged in, confirmed opting back in
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "opt_out": dict.fromkeys(GPC3, False),
                              "confirm_opt_in": True,
                              "identity_token": token_for(email=VICTIM,
                                                          device_id=VICTIM_DEVICE)})  # fmt: skip
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_IN
    pipe.drain_all()
    # When that browser's next session posts its GPC signal again, naming no one
    pipe.post("/v1/consent", {"device_id": STRANGER, "gpc": True}, headers={"sec-gpc": "1"})
    pipe.resolve()
    # Then the person stays opted in, and no system is asked anything for them
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == ALL_IN
    assert all(state(pipe, STRANGER)["opt_out"][p] for p in GPC3)
    assert not any(pipe.drain_all().values())


def test_an_undated_edge_does_not_lift_an_opt_out_newer_than_the_opt_in(pipe: Pipeline) -> None:
    """Review s30 trust F1: an edge written before `named_at` (the deploy) counted as older
    than any opt-in, lifting a carried opt-out newer than it at the person's next event."""
    phone = "dev-victims-own-phone-cc"  # the person's own phone, never logged in
    login = token_for(email=VICTIM, device_id=VICTIM_DEVICE)
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "identity_token": login})
    pipe.resolve()
    # t1: logged in, the person confirms an opt-in of sale
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "opt_out": {"sale": False},
                              "confirm_opt_in": True,
                              "identity_token": token_for(email=VICTIM,
                                                          device_id=VICTIM_DEVICE)})  # fmt: skip
    pipe.resolve()
    # t2: on their phone, not logged in, they name their email limiting profiling; t3: later,
    # there, they opt out of sale (not naming the email again)
    pipe.post("/v1/consent", {"device_id": phone, "identity": {"email": VICTIM},
                              "opt_out": {"profiling": True}})  # fmt: skip
    pipe.resolve()
    pipe.post("/v1/consent", {"device_id": phone, "opt_out": {"sale": True}})
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"]["sale"] is True  # named (t2) after t1
    # The deploy: the edge as the code before session 30 wrote it (no date)
    edges = [i for i in pipe.aws.items() if "carried" in i]
    assert len(edges) == 1
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": edges[0]["pk"]}, "sk": {"S": edges[0]["sk"]}},
        UpdateExpression="REMOVE named_at, carried_at",
    )
    # When the person's next event is a login on a new browser
    new = "dev-victim-new-dddddddd"
    pipe.post(
        "/v1/consent", {"device_id": new, "identity_token": token_for(email=VICTIM, device_id=new)}
    )
    pipe.resolve()
    # Then the opt-out of sale (t3, newer than t1) still holds
    assert state(pipe, VICTIM_DEVICE)["opt_out"]["sale"] is True
    assert state(pipe, new)["opt_out"]["sale"] is True


def test_a_device_less_token_on_the_webform_links_no_browser(pipe: Pipeline) -> None:
    """Review s30 trust F3: `POST /v1/opt-out` with a device id and a token naming no device
    linked that browser to the person for good: it read their choices."""
    login = token_for(email=VICTIM, device_id=VICTIM_DEVICE)
    pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "identity_token": login})
    pipe.post("/v1/opt-out", {"email": VICTIM, "purposes": ["profiling", "limit_sensitive"]})
    pipe.resolve()
    # When a stranger posts a device-less token of the person's with his own browser's id
    seen = token_for(email=VICTIM)
    pipe.post("/v1/opt-out", {"device_id": STRANGER, "identity_token": seen,
                              "purposes": ["share"]})  # fmt: skip
    pipe.resolve()
    # Then his browser reads only its own choice; the person gets the opt-out (one way)
    assert state(pipe, STRANGER)["opt_out"] == {**ALL_IN, "share": True}
    assert state(pipe, VICTIM_DEVICE)["opt_out"] == {**ALL_IN, "share": True, "profiling": True,
                                                     "limit_sensitive": True}  # fmt: skip
    # And the person's later opt-outs do not reach him
    pipe.post("/v1/opt-out", {"email": VICTIM, "purposes": ["sale"]})
    pipe.resolve()
    assert state(pipe, STRANGER)["opt_out"] == {**ALL_IN, "share": True}
    # And his browser asserts nothing of the person either: its later opt-outs stay its own
    # (carried, they would let the person's devices read another account's choices on a
    # shared browser: review s30 final F1)
    pipe.post("/v1/consent", {"device_id": STRANGER, "opt_out": {"targeted_advertising": True}})
    pipe.resolve()
    assert state(pipe, VICTIM_DEVICE)["opt_out"]["targeted_advertising"] is False


def test_at_the_asserter_cap_a_request_that_names_the_email_still_opts_it_out(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given strangers' browsers that filled the email's asserter cap (here 2)
    pipe = build_pipeline(aws, monkeypatch, MAX_ASSERTERS="2")
    for n in range(2):
        pipe.post("/v1/consent", {"device_id": f"dev-crowd-{n:02d}-aaaaaaa",
                                  "identity": {"email": VICTIM}})  # fmt: skip
    pipe.resolve()
    # When the person's own browser names the email with its GPC opt-out
    told = pipe.post("/v1/consent", {"device_id": VICTIM_DEVICE, "identity": {"email": VICTIM},
                                     "opt_out": {"sale": True}, "gpc": True})  # fmt: skip
    pipe.resolve()
    # Then its browser is refused as an asserter, yet this request reaches the email's systems
    edges = [i for i in pipe.items("ID#") if i["sk"].startswith("ASSERTED#")]
    assert len(edges) == 2
    jobs = {i["system"]: i for i in pipe.items(f"REQ#{told['request_id']}") if i["kind"] == "job"}
    assert {"braze", "salesforce"} <= set(jobs)
    assert "sale" in jobs["salesforce"]["purposes"]


def test_a_browser_asserts_at_most_max_asserted_identifiers_yet_each_request_still_counts(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one browser that already named two emails without a token (the cap here: 2)
    pipe = build_pipeline(aws, monkeypatch, MAX_ASSERTED="2")
    for n in range(2):
        pipe.post(
            "/v1/consent", {"device_id": STRANGER, "identity": {"email": f"p{n}@example.com"}}
        )
    pipe.resolve()
    # When it names a third with an opt-out
    third = pipe.post("/v1/consent", {"device_id": STRANGER, "opt_out": {"sale": True},
                                      "identity": {"email": "p2@example.com"}})  # fmt: skip
    pipe.resolve()
    # Then no third edge is kept (its later events fan out to two, not three), yet this
    # request's own opt-out reaches the third email's systems
    edges = [i for i in pipe.items("ID#") if i["sk"].startswith("ASSERTS#")]
    assert len(edges) == 2
    jobs = {i["system"] for i in pipe.items(f"REQ#{third['request_id']}") if i["kind"] == "job"}
    assert "salesforce" in jobs


def test_an_edges_named_at_only_moves_forward_even_between_two_resolvers(aws: Aws) -> None:
    """Two resolvers naming one identity at once: the write of the older naming, landing
    second, neither lowers `named_at` nor loses the carried set."""
    from optout.store import keys  # noqa: PLC0415 - this test's only
    from optout.store.identity import write_assertion, write_carried  # noqa: PLC0415
    from optout.store.table import Table  # noqa: PLC0415

    table = Table(aws.dynamodb, aws.table_name)
    device, email = keys.identity_pk("device_id", "k-dev"), keys.identity_pk("email", "k-mail")
    for pk in (device, email):
        aws.dynamodb.put_item(TableName=aws.table_name, Item={
            "pk": {"S": pk}, "sk": {"S": keys.NODE_SK}, "version": {"N": "1"}})  # fmt: skip
    first, later, older = "2026-12-01T00:00:00.000Z", "2026-12-03T00:00:00.000Z", "2026-12-02"
    write_assertion(table, device, email, "req-1", first, 2_000_000_000, first)
    assert write_carried(table, device, email, ["sale"], later, 2_000_000_000)
    assert not write_carried(table, device, email, ["sale", "share"], older, 2_000_000_000)
    assert write_carried(table, device, email, ["sale", "share"], None, 2_000_000_000)
    (edge,) = [i for i in aws.items() if i["sk"].startswith(keys.ASSERTED_PREFIX)]
    assert (edge["named_at"], edge["carried"]) == (later, ["sale", "share"])
