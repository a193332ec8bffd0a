"""A webform opt-out naming an email and a banner choice whose login links that email to a
device, resolved at once on two shards (race38): each resolver cut before each of its store
calls in turn, the other run whole there, both orders. Through the real capture (the token, the
roles and the link as the banner sends them); the resolvers are the resolver function's own.

After both, as after the two one after the other: the device and the email are one person,
each STATE opted out of both purposes (an opt-out is sticky and crosses a verified link), and
every purpose a STATE says is opted out has a job at each system that takes that identity,
named on its mark (tests/integration/test_resolver_interleaving.py's `unjobbed`).
"""

from collections.abc import Iterator
from typing import Any

import pytest

from optout.store import keys
from optout.systems import load_systems
from tests.conftest import Aws
from tests.integration.test_redrive_at_each_call import resolver_over
from tests.integration.test_two_copies_at_each_call import CutAt
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.tokens import token_for

CUTS = range(1, 60)


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def captured(pipe: Pipeline, n: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(the banner's login event, the webform's event, the two identities' pks) of person n."""
    email, device = f"race38-{n}@example.com", f"race38-device-{n}-aaaaaaaaaaaa"
    login = token_for(email=email, device_id=device)
    banner = pipe.post("/v1/consent", {"device_id": device, "identity_token": login,
                                       "opt_out": {"share": True}})["request_id"]  # fmt: skip
    webform = pipe.post("/v1/opt-out", {"email": email, "purposes": ["sale"]})["request_id"]
    pipe.event_records()  # resolved here by hand
    events = [next(i for i in pipe.partition(keys.request_pk(r)) if i["sk"] == "EVENT")
              for r in (banner, webform)]  # fmt: skip
    pks = sorted(f"ID#{i['type']}#{i['key']}" for e in events for i in e["identifiers"])
    return events[0], events[1], sorted(set(pks))


def outcome(pipe: Pipeline, pks: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(each identity's opted-out purposes by type; what no job carries)."""
    systems = load_systems("local/systems.json")  # the pipeline's (SYSTEMS_CONFIG, its env)
    states: dict[str, list[str]] = {}
    missing: list[str] = []
    for pk in pks:
        items = {i["sk"]: i for i in pipe.partition(pk)}
        id_type = pk.split("#")[1]
        opted = sorted(p for p, v in items.get(keys.STATE_SK, {}).get("opt_out", {}).items() if v)
        states[id_type] = opted
        for system in systems.systems:
            if not system.accepts(id_type):  # type: ignore[arg-type]
                continue
            mark = items.get(keys.delivery_sk(system.name), {})
            for purpose in sorted(set(opted) & set(system.purposes)):
                job_id = str(mark.get(f"job_{purpose}", ":"))
                request_id, _ = job_id.rsplit(":", 1)
                jobs = [i for i in pipe.partition(keys.request_pk(request_id))
                        if i["sk"] == keys.job_sk(system.name)]  # fmt: skip
                carried = {i["key"] for job in jobs for i in job.get("identifiers", [])}
                if purpose not in mark.get("inflight", ()) or pk.split("#")[2] not in carried:
                    missing.append(f"{id_type} {system.name} {purpose}")
    return states, missing


@pytest.mark.parametrize("first", ["login", "webform"])
def test_a_login_and_a_webform_opt_out_of_one_person_at_once_end_as_one_after_the_other(
    pipe: Pipeline, first: str
) -> None:
    # Given the two resolved one after the other, for one person
    login, webform, pks = captured(pipe, f"serial-{first}")
    for event in (login, webform) if first == "login" else (webform, login):
        pipe.resolver.resolver().process(event)
    expected = outcome(pipe, pks)
    assert expected == ({"device_id": ["sale", "share"], "email": ["sale", "share"]}, [])
    for cut in CUTS:
        # When, for another person, `first`'s resolver stops before its `cut`-th store call
        # while the other's runs whole
        login, webform, pks = captured(pipe, f"{first}-{cut}")
        stopped, whole = (login, webform) if first == "login" else (webform, login)
        client = CutAt(pipe.aws.dynamodb, cut, lambda e=whole: pipe.resolver.resolver().process(e))
        resolver_over(pipe, client).process(stopped)
        if client.calls < cut:
            break  # past its last call: the serial order, compared above
        # Then the states and the jobs are as one after the other
        assert outcome(pipe, pks) == expected, cut
    else:
        pytest.fail(f"the resolver made more than {len(CUTS)} store calls: widen CUTS")
