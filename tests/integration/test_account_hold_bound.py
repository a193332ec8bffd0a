"""One account holds at most `MAX_ASSERTED` undecided login holds (session 37, holds37;
docs/decisions.md, "One account's undecided holds are bounded").

Device ids are made by the browser and a site's login mints a token for whatever id the page
shows, so one account logged in on made-up ids past `MaxClusterSize` made one hold per id,
without bound (identity37 F3: cap 3, twelve ids, ten holds), all in the one partition the
operators' list reads. A login's hold that may carry is now counted on its account in the
hold's own transaction; past the bound the login is neither held nor linked, and carries
nothing (`HoldsRefused`). A retried event counts nothing again; a release or reject takes its
hold off the count."""

from collections.abc import Iterator
from typing import Any

import pytest

from optout.store import holds as store_holds
from optout.store import keys
from tests.conftest import Aws
from tests.support.http_events import http_event, json_body
from tests.support.lambdas import invoke
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

EMAIL = "flood@example.com"
OTHER = "other@example.com"
BOUND = 4  # MAX_ASSERTED here (20 by default)
ALL4 = {"sale", "share", "targeted_advertising", "profiling"}


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="2", MAX_ASSERTED=str(BOUND))


def device(n: int) -> str:
    return f"dev-bound-{n:02d}-aaaaaaaaaaa"


def login(pipe: Pipeline, browser: str, email: str = EMAIL) -> None:
    token = token_for(email=email, device_id=browser)
    pipe.post("/v1/consent", {"device_id": browser, "identity_token": token})
    pipe.resolve()


def opted(pipe: Pipeline, browser: str) -> set[str]:
    state = pipe.get(f"/v1/consent/{browser}", device_id=browser)["opt_out"]
    return {p for p, v in state.items() if v}


def listed(pipe: Pipeline) -> list[dict[str, Any]]:
    answer = invoke(pipe.admin, http_event("GET", "/v1/admin/holds", iam=True))
    assert answer["statusCode"] == 200, answer["body"]
    found: list[dict[str, Any]] = json_body(answer)["holds"]
    return found


def decide(pipe: Pipeline, hold_id: str, action: str) -> int:
    path = f"/v1/admin/holds/{hold_id}/{action}"
    answer = invoke(pipe.admin, http_event("POST", path, path_parameters={"hold_id": hold_id},
                                           iam=True))  # fmt: skip
    if answer["statusCode"] != 409:
        pipe.resolve()
    status: int = answer["statusCode"]
    return status


def undecided(pipe: Pipeline) -> dict[str, int]:
    """Each account's count, as stored (keyed hashes only)."""
    return {i["sk"]: len(i.get("holds") or ()) for i in pipe.partition(keys.HOLD_PK)
            if i["sk"].startswith(store_holds.COUNT_PREFIX)}  # fmt: skip


def full_account(pipe: Pipeline) -> None:
    """Opted out by webform; logged in on one browser: the cluster (cap 2) is full."""
    pipe.post("/v1/opt-out", {"email": EMAIL})
    pipe.resolve()
    login(pipe, device(0))
    assert opted(pipe, device(0)) == ALL4


def test_one_account_on_made_up_browser_ids_holds_at_most_the_bound(pipe: Pipeline) -> None:
    full_account(pipe)
    # When the account logs in on more made-up browser ids than the bound
    for n in range(1, BOUND + 3):
        login(pipe, device(n))
    # Then only the first BOUND logins are held (and carry, as before); the rest are neither
    # held nor linked, and carry nothing
    assert len(listed(pipe)) == BOUND
    assert [opted(pipe, device(n)) for n in range(1, BOUND + 1)] == [ALL4] * BOUND
    assert opted(pipe, device(BOUND + 1)) == opted(pipe, device(BOUND + 2)) == set()
    assert list(undecided(pipe).values()) == [BOUND]
    # ... and a later login on a browser already held finds its hold (and its carry) as before
    login(pipe, device(1))
    assert len(listed(pipe)) == BOUND
    assert opted(pipe, device(1)) == ALL4


def test_a_retried_event_counts_its_hold_once(pipe: Pipeline) -> None:
    full_account(pipe)
    token = token_for(email=EMAIL, device_id=device(1))
    pipe.post("/v1/consent", {"device_id": device(1), "identity_token": token})
    records = pipe.event_records()
    # When the same stream record is resolved three times (a retried batch, the redrive)
    for _ in range(3):
        pipe.resolve(records)
    # Then one hold, counted once
    assert len(listed(pipe)) == 1
    assert list(undecided(pipe).values()) == [1]


def test_a_decided_hold_frees_its_place_once(pipe: Pipeline) -> None:
    full_account(pipe)
    for n in range(1, BOUND + 1):
        login(pipe, device(n))
    assert list(undecided(pipe).values()) == [BOUND]
    first, second = listed(pipe)[:2]
    # When an operator rejects one hold and releases another (each decided once: a second
    # decision is refused and takes nothing more off)
    assert decide(pipe, first["hold_id"], "reject") == 200
    assert decide(pipe, first["hold_id"], "reject") == 409
    assert decide(pipe, second["hold_id"], "release") == 202
    assert decide(pipe, second["hold_id"], "reject") == 409
    # Then two places are free: two more logins are held, the next refused
    assert list(undecided(pipe).values()) == [BOUND - 2]
    for n in range(BOUND + 1, BOUND + 4):
        login(pipe, device(n))
    # (their carries are `MAX_ASSERTED`'s as before: the account's edges, withdrawn ones
    # included, still count there)
    statuses = [h["status"] for h in listed(pipe)]
    assert (statuses.count("held"), len(statuses)) == (BOUND, BOUND + 2)
    assert list(undecided(pipe).values()) == [BOUND]


def test_the_bound_is_each_accounts_own(pipe: Pipeline) -> None:
    full_account(pipe)
    for n in range(1, BOUND + 2):
        login(pipe, device(n))
    # When another account, whose cluster is full too, logs in on a new browser
    pipe.post("/v1/opt-out", {"email": OTHER})
    pipe.resolve()
    login(pipe, device(50), OTHER)
    login(pipe, device(51), OTHER)
    # Then its hold is made: the first account's bound is not the other's
    assert len(listed(pipe)) == BOUND + 1
    assert opted(pipe, device(51)) == ALL4
