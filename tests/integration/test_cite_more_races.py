"""Two re-opens of one request at once (`cite_more`, review s29 lead I3, I4): each reads the
RESOLUTION, then writes what it adds. moto runs calls one at a time, so the race is driven here
explicitly: both calls are given the same read, taken before either writes. Whatever the
order, the stored record must hold both re-opens' citations and quiet-period entries, in the
shape one re-open after the other would have written (the shape every reader already takes)."""

from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from optout.status import covering_keys, not_asked, proofs, quiet_keys
from optout.store import keys
from optout.store.requests import CITE_ATTEMPTS, cite_more, put_resolution
from optout.store.table import Table
from tests.conftest import Aws

T1, T2 = "2026-12-03T01:00:00.000Z", "2026-12-03T02:00:00.000Z"
QUIET = {"crm": [{"job_id": "q0:crm", "answered_at": T1}]}


def quiet(job_id: str, at: str = T1) -> dict[str, Any]:
    return {"job_id": job_id, "answered_at": at}


def first(table: Table, request: str, **fields: Any) -> dict[str, Any]:
    """A RESOLUTION as the first resolution stores it; returned as a re-open reads it."""
    item = {"pk": f"REQ#{request}", "sk": keys.RESOLUTION_SK, "proof_rule": 3, **fields}
    put_resolution(table, item)
    return item


def stored(aws: Aws, request: str) -> dict[str, Any]:
    (found,) = [i for i in aws.items()
                if i["pk"] == f"REQ#{request}" and i["sk"] == keys.RESOLUTION_SK]  # fmt: skip
    return found


def counting(table: Table, strip_item: bool = False) -> dict[str, int]:
    """Counts the client's update_item and get_item calls from here on; with `strip_item`, a
    refusal reaches the caller without the `Item` ALL_OLD returns (review s29 lead I3)."""
    calls = {"update_item": 0, "get_item": 0}
    real_update, real_get = table.client.update_item, table.client.get_item

    def update(**kw: Any) -> Any:
        calls["update_item"] += 1
        try:
            return real_update(**kw)
        except ClientError as error:
            if strip_item:
                error.response.pop("Item", None)  # type: ignore[typeddict-item]
            raise

    def get(**kw: Any) -> Any:
        calls["get_item"] += 1
        return real_get(**kw)

    patches = [mock.patch.object(table.client, "update_item", side_effect=update),
               mock.patch.object(table.client, "get_item", side_effect=get)]  # fmt: skip
    for patch in patches:
        patch.start()
    return calls


@pytest.fixture
def table(aws: Aws) -> Any:
    yield Table(aws.dynamodb, aws.table_name)
    mock.patch.stopall()


@pytest.mark.parametrize("strip_item", [False, True], ids=["all_old", "no_item"])
@pytest.mark.parametrize("cited_first", [True, False], ids=["map_stored", "no_map"])
def test_two_reopens_citing_new_jobs_for_one_system_keep_both(
    aws: Aws, table: Table, cited_first: bool, strip_item: bool
) -> None:
    # Given a RESOLUTION that cited a crm job (or none: no `covered` map, only a quiet entry)
    before = first(table, "r1", **({"covered": {"crm": ["e0:crm"]}} if cited_first else {}),
                   not_asked=QUIET)  # fmt: skip
    calls = counting(table, strip_item)
    # When two re-opens, both having read it, each cite a new crm job
    cite_more(table, before, {"crm": ["e1:crm"]})
    cite_more(table, before, {"crm": ["e2:crm"]})
    # Then both are cited after the first citations (before: the second SET the list it read,
    # dropping e1; with no map and no Item in the refusal, the fallback merged into {})
    assert stored(aws, "r1")["covered"] == {
        "crm": [*(["e0:crm"] if cited_first else []), "e1:crm", "e2:crm"]
    }
    # ... the second's write refused once and merged again from the item as the first left it,
    # read again only when the refusal did not carry it
    assert calls == {"update_item": 3, "get_item": 1 if strip_item else 0}


def test_two_reopens_adding_quiet_entries_keep_both(aws: Aws, table: Table) -> None:
    # Given a RESOLUTION with a citation, a quiet-period entry and a system not planned
    before = first(table, "r2", covered={"crm": ["e0:crm"]}, not_asked=QUIET,
                   not_planned={"webhook": T1})  # fmt: skip
    # When two re-opens, both having read it, each add quiet entries (one for the same system),
    # systems with nothing left to plan, and one no longer configured
    cite_more(table, before, {}, {"crm": [quiet("q1:crm")], "braze": [quiet("q1:braze")]},
              {"segment": T1}, {"segment": T1})  # fmt: skip
    cite_more(table, before, {}, {"crm": [quiet("q2:crm", T2)]}, {"ads": T2}, {"ads": T2})
    # Then each map holds both re-opens' entries and the first resolution's (before: the
    # second SET each map it had read, dropping q1:crm, braze and segment)
    found = stored(aws, "r2")
    assert found["not_asked"] == {
        "crm": [*QUIET["crm"], quiet("q1:crm"), quiet("q2:crm", T2)],
        "braze": [quiet("q1:braze")],
    }
    assert found["not_planned"] == {"webhook": T1, "segment": T1, "ads": T2}
    assert found["not_configured"] == {"segment": T1, "ads": T2}
    assert found["covered"] == {"crm": ["e0:crm"]}


def test_a_refused_reopen_keeps_the_first_times_it_merges_into(aws: Aws, table: Table) -> None:
    # Given two re-opens that both found webhook with nothing left to plan, at different times
    before = first(table, "r3", covered={"crm": ["e0:crm"]})
    cite_more(table, before, {}, None, {"webhook": T1})
    cite_more(table, before, {}, None, {"webhook": T2}, None, {"ID#email#a"})
    # Then the first one's time is kept (a re-open never moves it), the second's identity added
    found = stored(aws, "r3")
    assert (found["not_planned"], found["cited_linked"]) == ({"webhook": T1}, ["ID#email#a"])


def test_interleaved_reopens_store_what_one_after_the_other_would(aws: Aws, table: Table) -> None:
    # Given the same first RESOLUTION twice
    fields = {"covered": {"crm": ["e0:crm"]}, "not_asked": QUIET, "cited_linked": ["ID#email#a"]}
    a = ({"crm": ["e1:crm"], "braze": ["e1:braze"]}, {"crm": [quiet("q1:crm")]}, {"ads": T1},
         None, {"ID#email#b"})  # fmt: skip
    b = ({"crm": ["e2:crm"]}, {"segment": [quiet("q2:segment", T2)]}, None, None,
         {"ID#email#c"})  # fmt: skip
    raced, serial = first(table, "raced", **fields), first(table, "serial", **fields)
    # When one is re-opened twice from one read, and the other once after the other
    cite_more(table, raced, *a)
    cite_more(table, raced, *b)
    cite_more(table, serial, *a)
    cite_more(table, stored(aws, "serial"), *b)
    # Then the two records are the same: the readers (status proofs, the operator record and
    # export, the public view, all built on these) see the raced one as the serial one
    found = stored(aws, "raced")
    assert {k: v for k, v in found.items() if k != "pk"} == {
        k: v for k, v in stored(aws, "serial").items() if k != "pk"
    }
    assert found["covered"] == {"crm": ["e0:crm", "e1:crm", "e2:crm"], "braze": ["e1:braze"]}
    assert found["cited_linked"] == ["ID#email#a", "ID#email#b", "ID#email#c"]
    items = [found]
    assert covering_keys(items)[:4] == [
        ("REQ#e1", "JOB#braze"), ("REQ#e0", "JOB#crm"), ("REQ#e1", "JOB#crm"), ("REQ#e2", "JOB#crm")
    ]  # fmt: skip
    assert quiet_keys(items) == [("REQ#q0", "JOB#crm"), ("REQ#q1", "JOB#crm"),
                                 ("REQ#q2", "JOB#segment")]  # fmt: skip
    assert [(q["system"], q["job_id"]) for q in not_asked(items, {})] == [
        ("crm", "q0:crm"), ("crm", "q1:crm"), ("segment", "q2:segment")
    ]  # fmt: skip
    jobs = {key: {"pk": key[0], "sk": key[1], "status": "done"} for key in covering_keys(items)}
    by_system = {p.system: p for p in proofs(items, jobs)}
    assert [j["pk"] for j in by_system["crm"].covering] == ["REQ#e0", "REQ#e1", "REQ#e2"]
    assert by_system["crm"].quiet == {"q0:crm", "q1:crm"}
    assert by_system["segment"].quiet_only


def test_an_unraced_reopen_is_one_write_and_a_lost_answer_no_second(aws: Aws, table: Table) -> None:
    before = first(table, "r4", covered={"crm": ["e0:crm"]}, not_asked=QUIET)
    calls = counting(table)
    cite_more(table, before, {"crm": ["e1:crm"]}, {"crm": [quiet("q1:crm")]}, {"ads": T1})
    assert calls == {"update_item": 1, "get_item": 0}
    # When the same call is sent again from the same read (its answer lost): refused on what it
    # wrote itself, it finds nothing left to add
    cite_more(table, before, {"crm": ["e1:crm"]}, {"crm": [quiet("q1:crm")]}, {"ads": T1})
    assert calls == {"update_item": 2, "get_item": 0}
    assert stored(aws, "r4")["covered"] == {"crm": ["e0:crm", "e1:crm"]}


def test_a_reopen_raced_at_every_attempt_gives_up_and_is_retried(aws: Aws, table: Table) -> None:
    # Given a re-open whose every write meets another re-open's, written just before it
    before = first(table, "r5", covered={"crm": ["e0:crm"]})
    real_update = table.client.update_item
    rivals: list[str] = []

    def rival_first(**kw: Any) -> Any:
        rivals.append(f"x{len(rivals)}:crm")
        real_update(TableName=table.name, Key=kw["Key"],
                    UpdateExpression="SET covered.crm = list_append(covered.crm, :x)",
                    ExpressionAttributeValues={":x": {"L": [{"S": rivals[-1]}]}})  # fmt: skip
        return real_update(**kw)

    # When it is written
    patch = mock.patch.object(table.client, "update_item", side_effect=rival_first)
    with patch, pytest.raises(ClientError) as refused:
        cite_more(table, before, {"crm": ["e1:crm"]})
    # Then it gives up after a bounded number of tries (the redrive event is retried, and a
    # re-open is safe to repeat), having dropped none of the others' citations
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert len(rivals) == CITE_ATTEMPTS
    assert stored(aws, "r5")["covered"] == {"crm": ["e0:crm", *rivals]}
