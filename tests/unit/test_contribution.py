"""What one request adds to the §7102 figures (optout.ops.contribution.contribution_of), and
how a year's ledgers sum to them (optout.ops.metrics.figures)."""

from typing import Any

from optout.ops.contribution import a_repeat, contribution_of
from optout.ops.metrics import figures

RID = "2d5f8922-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
EARLIER = "9cba3332-2d4a-4b5c-9e8f-7a6b5c4d3e2f"
PK = f"REQ#{RID}"
EVENT = {
    "pk": PK, "sk": "EVENT", "request_id": RID, "event_type": "opt_out", "source": "webform",
    "received_at": "2026-11-30T15:44:46.317Z", "deadline": "2026-12-21",
    "opt_out": {"sale": True, "share": True},
}  # fmt: skip
RESOLUTION = {
    "pk": PK, "sk": "RESOLUTION", "resolved_at": "2026-11-30T15:44:46.500Z", "jobs_total": 1,
    "covered": {"meta": [f"{EARLIER}:meta"]}, "proof_rule": 2,
}  # fmt: skip


def _job(request_id: str, system: str, status: str, completed_at: str) -> dict[str, Any]:
    return {"pk": f"REQ#{request_id}", "sk": f"JOB#{system}", "job_id": f"{request_id}:{system}",
            "request_id": request_id, "system": system, "status": status,
            "completed_at": completed_at}  # fmt: skip


def test_a_partial_compliance_proven_by_an_earlier_receipt_responds_after_its_own_receipt() -> None:
    # Given a request whose own Braze job failed for good, and whose only done system (Meta)
    # is proven by an earlier request's receipt, written before this request arrived
    braze = _job(RID, "braze", "failed", "2026-11-30T15:44:47.000Z")
    meta = _job(EARLIER, "meta", "done", "2026-11-30T15:44:38.052Z")
    covering = {(f"REQ#{EARLIER}", "JOB#meta"): meta}
    # When its §7102 contribution is computed
    found = contribution_of([EVENT, RESOLUTION, braze], covering)
    # Then it complied in part when the resolver found that receipt (after its arrival: one
    # hour, rounded up), not at the earlier receipt's time (0 h, before it existed)
    assert found is not None
    assert (found.outcome, found.hours) == ("complied_part", 1)


def test_a_request_that_needed_no_job_of_its_own_counts_only_as_a_repeat() -> None:
    # Given a request whose resolution made no job and cites an earlier request's receipt
    resolution = {**RESOLUTION, "jobs_total": 0}
    meta = _job(EARLIER, "meta", "done", "2026-11-30T15:44:38.052Z")
    covering = {(f"REQ#{EARLIER}", "JOB#meta"): meta}
    # When its contribution is computed
    found = contribution_of([EVENT, resolution], covering)
    # Then it adds one repeat and nothing else: no receipt, outcome, hours or system (and
    # its group's repeat: no jurisdiction, a sale/share opt-out)
    assert found is not None and found.repeat
    assert found.counters() == {"n.webform.repeat": 1, "g.unknown_sale.repeat": 1}


def test_a_request_whose_one_vendor_just_found_no_such_person_counts_only_as_a_repeat() -> None:
    # Given a request that made no job and cites no receipt: its one system (Braze) was not
    # asked, because Braze answered an earlier request "no such person" an hour before (the
    # quiet period; a logged-in GPC visitor's next page view)
    resolution = {**RESOLUTION, "jobs_total": 0, "covered": {}, "not_asked": {"braze": [
        {"job_id": f"{EARLIER}:braze", "answered_at": "2026-11-30T14:44:46.000Z"}]}}  # fmt: skip
    # When its contribution is computed
    found = contribution_of([EVENT, resolution], {})
    # Then it adds one repeat and nothing else (not a request received and complied with at
    # no system, once per page view)
    assert found is not None and found.repeat
    assert found.counters() == {"n.webform.repeat": 1, "g.unknown_sale.repeat": 1}


def test_a_request_reopened_for_a_job_of_its_own_is_no_repeat() -> None:
    # Given a request whose resolution made no job and cited an earlier request's Meta job,
    # which then found no such person, so the sweep's re-open gave it a Meta job of its own
    resolution = {**RESOLUTION, "jobs_total": 0}
    cited = _job(EARLIER, "meta", "no_record", "2026-11-30T15:44:48.000Z")
    own = _job(RID, "meta", "done", "2026-11-30T16:05:00.000Z")
    # When its contribution is computed
    found = contribution_of([EVENT, resolution, own], {(f"REQ#{EARLIER}", "JOB#meta"): cited})
    # Then it counts as a request complied with on its own receipt, not as a repeat
    assert found is not None and not found.repeat
    assert (found.outcome, found.hours) == ("complied_whole", 1)


def test_a_denied_request_is_no_repeat_even_without_a_job_of_its_own() -> None:
    resolution = {**RESOLUTION, "jobs_total": 0}
    meta = _job(EARLIER, "meta", "processing", "")
    denial = {"pk": PK, "sk": "DENIAL", "denied_at": "2026-11-30T16:00:00.000Z"}
    found = contribution_of([EVENT, resolution, denial], {(f"REQ#{EARLIER}", "JOB#meta"): meta})
    assert found is not None and not found.repeat
    assert found.counters()["n.webform.denied"] == 1


def test_an_imported_request_covered_by_a_later_request_is_no_repeat() -> None:
    # Given a row imported today: another tool received the opt-out on 20 November and
    # answered it on the 21st; the person opted out again through this stack on 4 December,
    # before the import, so the import's resolution made no job and cites that later
    # request's receipt (review proof35 F1: it was counted a repeat, in no §7102 row)
    event = {**EVENT, "received_at": "2026-11-20T12:00:00.000Z", "deadline": "2026-12-14",
             "evidence": {"jurisdiction": "US-CA", "jurisdiction_from": "import_default",
                          "imported": {"external_id": "tkt-1004",
                                       "imported_at": "2026-12-04T11:42:11.882Z",
                                       "completed_at": "2026-11-22T07:59:59.999Z"}}}  # fmt: skip
    resolution = {**RESOLUTION, "resolved_at": "2026-12-04T11:42:12.093Z", "jobs_total": 0}
    later = _job(EARLIER, "meta", "done", "2026-12-04T11:27:45.469Z")
    covering = {(f"REQ#{EARLIER}", "JOB#meta"): later}
    # When its contribution is computed (and the watch asks whether it is a repeat)
    found = contribution_of([event, resolution], covering)
    # Then it is a request received and complied with in whole, answered when the other tool
    # answered it (44 hours, rounded up), not a repeat
    assert found is not None and not found.repeat
    assert (found.outcome, found.hours) == ("complied_whole", 44)
    assert found.counters()["n.webform.received"] == 1
    assert not a_repeat([event, resolution])


def _evidenced(opt_out: dict[str, bool], jurisdiction: str | None) -> dict[str, Any]:
    evidence = (
        {"jurisdiction": jurisdiction, "jurisdiction_from": "request"} if jurisdiction else {}
    )
    return {**EVENT, "opt_out": opt_out, "evidence": evidence}


def _done() -> dict[str, Any]:
    return _job(RID, "braze", "done", "2026-11-30T16:00:00.000Z")


def test_each_request_is_counted_in_its_jurisdiction_and_purpose_group() -> None:
    # Given a Colorado profiling-only opt-out, a California sale opt-out that also asks to
    # limit, and an opt-out of sale with no known jurisdiction, each complied with in 1 hour
    cases = {
        "colorado profiling": (_evidenced({"profiling": True}, "US-CO"), "other_ads"),
        "california sale": (_evidenced({"sale": True}, "US-CA"), "ca_sale"),
        "unknown share": (_evidenced({"share": True}, None), "unknown_sale"),
    }
    for event, group in cases.values():
        # When its contribution is computed
        found = contribution_of([event, RESOLUTION, _done()], {})
        assert found is not None
        # Then its group is counted beside the all-individuals rows, with the same outcome
        counters = found.counters()
        assert {k: v for k, v in counters.items() if k.startswith(("g.", "gh."))} == {
            f"g.{group}.received": 1, f"g.{group}.complied_whole": 1, f"gh.{group}.1": 1,
        }  # fmt: skip
        assert counters["n.webform.received"] == 1
    # And a request that asks both to opt out of sale and to limit is in one group per right
    both = _evidenced({"sale": True, "limit_sensitive": True}, "US-CA")
    found = contribution_of([both, RESOLUTION, _done()], {})
    assert found is not None
    groups = {k for k in found.counters() if k.startswith("g.") and k.endswith(".received")}
    assert groups == {"g.ca_sale.received", "g.ca_limit.received"}


def _ledger(counters: dict[str, int]) -> dict[str, Any]:
    return {"pk": "LEDGER#2026", "sk": "2026-11-30#2", **counters}


def test_a_colorado_profiling_opt_out_is_not_in_the_california_sale_and_sharing_figure() -> None:
    # Given a year of a California sale opt-out and a Colorado profiling-only one (review s13
    # law 4: both were "requests to opt out of sale or sharing")
    ledger: dict[str, int] = {}
    for event in (_evidenced({"sale": True}, "US-CA"), _evidenced({"profiling": True}, "US-CO")):
        found = contribution_of([event, RESOLUTION, _done()], {})
        assert found is not None
        for name, value in found.counters().items():
            ledger[name] = ledger.get(name, 0) + value
    # When the year's figures are summed
    year = figures(2026, [_ledger(ledger)], {}, "now")
    # Then all individuals' opt-outs are 2, California's sale/sharing opt-outs 1, and the
    # Colorado one is in the other jurisdictions' targeted-ads/profiling-only group
    assert year["requests"]["received"] == 2
    ca = year["california_sale_share"]
    assert (ca["received"], ca["complied_whole"], ca["days_to_respond"]["responses"]) == (1, 1, 1)
    assert year["by_group"]["other"]["ads_profiling_only"]["received"] == 1
    assert year["by_group"]["other"]["sale_share"]["received"] == 0
    assert year["split"] == {
        "complete": True, "requests_not_split": 0, "limit_requests_not_split": 0,
    }  # fmt: skip


def test_a_year_with_ledgers_folded_before_the_groups_says_its_split_is_partial() -> None:
    # Given a day folded before the groups existed (two opt-outs, one limit, one repeat:
    # n./l. counters only) and a day folded since (one California sale opt-out)
    old = _ledger({"n.webform.received": 2, "n.webform.complied_whole": 2, "h.webform.3": 2,
                   "n.gpc.repeat": 1, "l.webform.received": 1, "l.webform.open": 1})  # fmt: skip
    new = {**_ledger({"n.banner.received": 1, "n.banner.open": 1, "g.ca_sale.received": 1,
                      "g.ca_sale.open": 1}), "sk": "2026-12-02#5"}  # fmt: skip
    # When the year's figures are summed
    year = figures(2026, [old, new], {}, "now")
    # Then the all-individuals figures hold all of them, the California figure only what was
    # counted with its group, and the year says how many are in no group (none invented)
    assert (year["requests"]["received"], year["requests"]["repeats"]) == (3, 1)
    assert year["california_sale_share"]["received"] == 1
    assert year["split"] == {
        "complete": False, "requests_not_split": 3, "limit_requests_not_split": 1,
    }  # fmt: skip


def test_a_california_opt_out_of_targeted_advertising_is_one_of_sharing() -> None:
    # Given opt-outs of targeted advertising only, from California, Colorado and nowhere
    # known, and a California opt-out of profiling only, each complied with in 1 hour
    cases = {
        "california ads": (_evidenced({"targeted_advertising": True}, "US-CA"), "ca_sale"),
        "colorado ads": (_evidenced({"targeted_advertising": True}, "US-CO"), "other_ads"),
        "unknown ads": (_evidenced({"targeted_advertising": True}, None), "unknown_ads"),
        "california profiling": (_evidenced({"profiling": True}, "US-CA"), "ca_ads"),
    }
    for name, (event, group) in cases.items():
        # When its contribution is computed
        found = contribution_of([event, RESOLUTION, _done()], {})
        assert found is not None
        # Then only the Californian's is in the sale/sharing group (the CCPA's "sharing" is
        # cross-context behavioural advertising: §7102(a)(1)(D)'s figure counts it)
        counters = found.counters()
        assert counters.get(f"g.{group}.received") == 1, name
        assert found.sale_share is (group == "ca_sale"), name


def _webform_day(day: str) -> dict[str, Any]:
    return {"pk": f"LEDGER#{day[:4]}", "sk": f"{day}#a", "n.webform.received": 1,
            "n.webform.open": 1}  # fmt: skip


def test_an_iso_week_spanning_new_year_is_marked_partial_in_both_years() -> None:
    # review s18 time T9: 2026-W53 runs Mon 28 Dec 2026 to Sun 3 Jan 2027; each year's report
    # lists it with only its own days, under the same label and start
    days = [_webform_day("2026-12-28"), _webform_day("2026-12-31")]
    late = figures(2026, days, {}, "x")["weekly"]
    days = [_webform_day("2027-01-01"), _webform_day("2027-01-04")]
    early = figures(2027, days, {}, "x")["weekly"]
    assert [(w["week"], w["starts"], w["partial"], w["webform"]) for w in late] == [
        ("2026-W53", "2026-12-28", True, 2)
    ]
    assert [(w["week"], w["partial"], w["webform"]) for w in early] == [
        ("2026-W53", True, 1), ("2027-W01", False, 1)
    ]  # fmt: skip
    # 2026-W01 starts Mon 29 Dec 2025: partial in 2025's report and in 2026's
    assert figures(2025, [_webform_day("2025-12-31")], {}, "x")["weekly"][0]["partial"] is True


def test_a_request_done_everywhere_but_with_a_type_refused_is_complied_with_in_part() -> None:
    # Given a request naming an email and a customer id, whose one system (Braze) took the
    # customer id and refused the email (review s26 counsel F3): its job is done
    named = [{"type": "email", "key": "e1", "value": "x"},
             {"type": "customer_id", "key": "c1", "value": "y"}]  # fmt: skip
    event = {**EVENT, "identifiers": named}
    resolution = {**RESOLUTION, "covered": {}}
    braze = _job(RID, "braze", "done", "2026-11-30T15:44:48.000Z") | {
        "identifiers": [{"type": "email", "key": "e1"}, {"type": "customer_id", "key": "c1"}],
        "receipt": {"identifier_types_sent": ["customer_id"],
                    "identifier_types_rejected": ["email"], "note": "email rejected"}}  # fmt: skip
    # When its contribution is computed
    found = contribution_of([event, resolution, braze], {})
    # Then it is complied with in part (that email alone makes the request fail), answered at
    # its completion, and settled: no job is left to replay, the watch owes it nothing
    assert found is not None and found.status == "completed"
    answer = (found.outcome, found.hours, found.responded_at)
    assert answer == ("complied_part", 1, "2026-11-30T15:44:48.000Z")
    assert found.settled
    # ... while a receipt that took both is complied with in whole
    braze["receipt"] = {"identifier_types_sent": ["customer_id", "email"]}
    whole = contribution_of([event, resolution, braze], {})
    assert whole is not None and (whole.outcome, whole.settled) == ("complied_whole", True)
