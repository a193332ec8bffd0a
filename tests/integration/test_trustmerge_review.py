"""Caps and dating that lost opt-outs (review s31 trustmerge F1, F2, F4): every asserted edge
carries, a held account's carry is never refused for its cluster's other edges, one browser id
cannot fill an account's `MAX_CLUSTER_ASSERTED`, and an undated edge counts whole."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Aws
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

ANNA, BEN = "anna@example.com", "ben@example.com"
FAMILY = "dev-familybrowser-aaaaaa"  # Anna's, Ben logs in there too (household)
KIOSK = "dev-kiosk-kkkkkkkkkkkkkk"  # a public computer, no account on it
BENS_PHONE = "dev-benphone-bbbbbbbbbb"


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch, MAX_ASSERTED="2", MAX_CLUSTER_ASSERTED="2")


def opted(pipe: Pipeline, device: str) -> set[str]:
    state = pipe.get(f"/v1/consent/{device}", device_id=device)
    return {p for p, v in state["opt_out"].items() if v}


def login(pipe: Pipeline, device: str, email: str, **body: Any) -> None:
    token = token_for(email=email, device_id=device)
    pipe.post("/v1/consent", {"device_id": device, "identity_token": token, **body})
    pipe.resolve()


def kiosk_visitors_type(pipe: Pipeline, n: int) -> None:
    for k in range(n):
        pipe.post(
            "/v1/opt-out",
            {"device_id": KIOSK, "email": f"visitor{k}@example.com", "purposes": ["profiling"]},
        )
        pipe.resolve()


def test_kiosk_edges_crowd_out_a_held_carry_at_carry_time(pipe: Pipeline) -> None:
    login(pipe, FAMILY, ANNA)
    login(pipe, FAMILY, BEN)  # held second account: carry Ben -> FAMILY
    login(pipe, BENS_PHONE, BEN)
    kiosk_visitors_type(pipe, 2)  # the kiosk names 2 strangers (its own cap)
    login(pipe, KIOSK, BEN)  # Ben logs in at the kiosk: no account there, linked
    # Ben opts out of sale on his phone
    login(pipe, BENS_PHONE, BEN, opt_out={"sale": True})
    assert "sale" in opted(pipe, BENS_PHONE)
    # Ben's opt-out should be honoured on the family browser he is logged in on
    assert "sale" in opted(pipe, FAMILY)


def test_kiosk_edges_refuse_a_later_held_carry(pipe: Pipeline) -> None:
    login(pipe, FAMILY, ANNA)
    login(pipe, BENS_PHONE, BEN)
    kiosk_visitors_type(pipe, 2)
    login(pipe, KIOSK, BEN)
    login(pipe, FAMILY, BEN)  # held; its carry meets the full cluster budget
    login(pipe, BENS_PHONE, BEN, opt_out={"sale": True})
    assert "sale" in opted(pipe, FAMILY)


OWN_PHONE = "dev-ownphone-pppppppppp"  # Anna's own phone, never logged in
ANNAS_BROWSER = "dev-annabrowser-aaaaaa"


def test_own_phones_undated_edge_loses_its_later_opt_out(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = build_pipeline(aws, monkeypatch)
    login(pipe, ANNAS_BROWSER, ANNA)
    # before session 30: Anna's own phone (no login) typed her email on the webform
    pipe.post("/v1/opt-out", {"email": ANNA, "device_id": OWN_PHONE, "purposes": ["share"]})
    pipe.resolve()
    (edge,) = [i for i in pipe.aws.items() if i["sk"].startswith("ASSERTED#")]
    pipe.aws.dynamodb.update_item(
        TableName=pipe.aws.table_name,
        Key={"pk": {"S": edge["pk"]}, "sk": {"S": edge["sk"]}},
        UpdateExpression="REMOVE named_at",
    )
    # later: Anna, logged in, confirms opting in to sale
    login(pipe, ANNAS_BROWSER, ANNA, opt_out={"sale": False}, confirm_opt_in=True)
    assert "sale" not in opted(pipe, ANNAS_BROWSER)
    # later still: on her phone's banner she opts out of sale (her newest choice)
    pipe.post("/v1/consent", {"device_id": OWN_PHONE, "opt_out": {"sale": True}})
    pipe.resolve()
    assert "sale" in opted(pipe, OWN_PHONE)
    # her email (and the browser linked to it) should honour her newest choice
    assert "sale" in opted(pipe, ANNAS_BROWSER)


ANNAS_PHONE = "dev-annaphone-qqqqqqqqqq"
HUSBAND = "husband@example.com"


def test_a_stranger_with_one_browser_id_cannot_fill_the_whole_accounts_budget(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = build_pipeline(aws, monkeypatch)  # the default caps: 20 per identity, 100 per cluster
    login(pipe, ANNAS_BROWSER, ANNA)
    login(pipe, ANNAS_PHONE, ANNA)
    # Mallory, with Anna's browser id in his cookie, types as many emails as it may assert
    for k in range(20):
        pipe.post(
            "/v1/opt-out",
            {"device_id": ANNAS_BROWSER, "email": f"m{k}@example.com", "purposes": ["profiling"]},
        )
        pipe.resolve()
    # Anna, on her phone, names her husband's email without a token (a family member)
    pipe.post("/v1/opt-out", {"device_id": ANNAS_PHONE, "email": HUSBAND, "purposes": ["sale"]})
    pipe.resolve()
    # later she opts out of share on her phone's banner: her edge should carry it to him
    pipe.post("/v1/consent", {"device_id": ANNAS_PHONE, "opt_out": {"share": True}})
    pipe.resolve()
    carried = [
        i
        for i in pipe.aws.items()
        if i["sk"].startswith("ASSERTED#") and "share" in i.get("carried", ())
    ]
    assert len(carried) == 21  # Mallory's twenty and her husband's


def test_kiosk_edges_crowd_out_no_held_carry_at_the_default_caps(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = build_pipeline(aws, monkeypatch)
    login(pipe, FAMILY, ANNA)
    login(pipe, FAMILY, BEN)
    login(pipe, BENS_PHONE, BEN)
    kiosk_visitors_type(pipe, 20)
    login(pipe, KIOSK, BEN)
    login(pipe, BENS_PHONE, BEN, opt_out={"sale": True})
    assert "sale" in opted(pipe, FAMILY)
