"""The Trade Desk answers 413 "Request size exceeds the allowed limit" and documents no figure:
the connector sends the items again in halves, down to one item, and only a job with an item
refused on its own fails (review s29 F5)."""

import json

from local.sandbox import uid2 as uid2_sandbox
from local.sandbox.uid2 import ROTATED_EMAIL
from optout.connectors.hashing import uid2_email_hash
from tests.unit.connectors.conftest import calls, make_connector, make_job


def _jobs(count: int) -> list:
    return [make_job(("email", f"user{n}@example.com"), ("phone", f"+1415555{n:04d}"),
                     request_id=f"r{n}", system="trade_desk") for n in range(count)]  # fmt: skip


def _posts(server) -> list[tuple[int, int]]:
    """(items, HTTP status) of each opt-out call, in order."""
    return [(len(json.loads(c["body"])["Items"]), c["status"]) for c in calls(server, "trade_desk")]


def test_trade_desk_413_sends_the_batch_again_in_halves_and_every_job_is_done(server):
    # Given TTD refusing as too large any request of more than 3 items
    vendor = server.sandboxes["trade_desk"].vendor
    vendor.max_items = 3
    jobs = _jobs(5)  # 10 items: an email's and a phone's UID2 each
    # When the batch is delivered
    outcomes = make_connector(server, "trade_desk").deliver(jobs)
    # Then every job is done (not failed for good on the first 413), every UID2 was opted out
    # once, and the halves went down only as far as TTD took them
    assert [o.status for o in outcomes] == ["done"] * 5
    assert all(o.identifier_types_sent == ("email", "phone") for o in outcomes)
    assert len(vendor.opted_out) == len(set(vendor.opted_out)) == 10
    assert _posts(server) == [(10, 413), (5, 413), (2, 200), (3, 200), (5, 413), (2, 200),
                              (3, 200)]  # fmt: skip


def test_trade_desk_item_too_large_on_its_own_fails_only_its_job_for_good(server):
    # Given TTD refusing as too large any request holding job r1's email UID2, even alone
    vendor = server.sandboxes["trade_desk"].vendor
    vendor.oversized = {uid2_sandbox.raw_uid2(uid2_email_hash("user1@example.com"))}
    jobs = _jobs(3)
    # When the batch is delivered
    outcomes = make_connector(server, "trade_desk").deliver(jobs)
    # Then r1 fails for good with a 413 and no identifier in its reason; the others are done
    assert [o.status for o in outcomes] == ["done", None, "done"]
    failed = outcomes[1]
    assert (failed.error.retryable, failed.error.http_status) == (False, 413)
    assert failed.error.reason == "trade_desk deletion-optout: HTTP 413 for a single item"
    assert failed.identifier_types_attempted == ("email", "phone")
    assert "user1" not in repr(failed)
    assert (1, 413) in _posts(server)


def test_trade_desk_batch_of_one_item_too_large_fails_without_a_split(server):
    vendor = server.sandboxes["trade_desk"].vendor
    vendor.max_items = 0
    (outcome,) = make_connector(server, "trade_desk").deliver(
        [make_job(("email", "solo@example.com"), system="trade_desk")]
    )
    assert outcome.status is None and outcome.error.http_status == 413
    assert _posts(server) == [(1, 413)]
    # the single-item reason, final, with the types attempted (before review s29 F5 a 413 was
    # the generic final 4xx, `trade_desk deletion-optout: HTTP 413`)
    assert (outcome.error.reason, outcome.error.retryable) == (
        "trade_desk deletion-optout: HTTP 413 for a single item", False)  # fmt: skip
    assert outcome.identifier_types_attempted == ("email",)


def test_trade_desk_previous_uid2_too_large_on_its_own_is_only_a_note(server):
    # Given a rotated identity whose previous UID2 TTD refuses as too large, even alone
    vendor = server.sandboxes["trade_desk"].vendor
    vendor.oversized = {uid2_sandbox.previous_uid2(uid2_sandbox.email_hash(ROTATED_EMAIL))}
    job = make_job(("email", ROTATED_EMAIL), system="trade_desk")
    # When it is delivered
    (outcome,) = make_connector(server, "trade_desk").deliver([job])
    # Then it is done on its current UID2, with a note, as any refused previous UID2 (it
    # failed for good before: vendorfix L4)
    assert (outcome.status, outcome.identifier_types_sent) == ("done", ("email",))
    assert outcome.note == "email previous UID2 rejected: HTTP_413"
    assert _posts(server) == [(2, 413), (1, 200), (1, 413)]


def test_trade_desk_half_refused_for_good_after_a_split_fails_only_its_own_jobs(server):
    # Given TTD refusing 4 items as too large, taking the first half (2 items), then refusing
    # the second half for good (a 400: the third call of the sandbox's counter at rate 1/3)
    vendor = server.sandboxes["trade_desk"].vendor
    vendor.max_items = 2
    server.sandboxes["trade_desk"].set_faults(1 / 3, 400)
    jobs = [make_job(("email", f"user{n}@example.com"), request_id=f"r{n}",
                     system="trade_desk") for n in range(4)]  # fmt: skip
    # When the batch is delivered
    outcomes = make_connector(server, "trade_desk").deliver(jobs)
    # Then the jobs TTD took are done (review s36 vendor T1: every job failed for good), and
    # only the refused half's jobs fail, for good, as a batch refused whole does
    assert _posts(server) == [(4, 413), (2, 200), (2, 400)]
    assert len(vendor.opted_out) == 2
    assert [o.status for o in outcomes] == ["done", "done", None, None]
    for failed in outcomes[2:]:
        assert (failed.error.reason, failed.error.retryable, failed.http_status) == (
            "trade_desk deletion-optout: HTTP 400", False, 400,
        )  # fmt: skip
        assert failed.identifier_types_sent == ()
        assert failed.identifier_types_rejected == ("email",)


def test_trade_desk_job_split_across_a_taken_and_a_refused_half_is_done_with_a_note(server):
    # Given one job's email in the half TTD takes and its phone in the half it refuses
    vendor = server.sandboxes["trade_desk"].vendor
    vendor.max_items = 1
    server.sandboxes["trade_desk"].set_faults(1 / 3, 400)
    job = make_job(("email", "user7@example.com"), ("phone", "+14155550007"),
                   system="trade_desk")  # fmt: skip
    # When it is delivered
    (outcome,) = make_connector(server, "trade_desk").deliver([job])
    # Then it is done for the type TTD took, the other listed as rejected with the status
    assert _posts(server) == [(2, 413), (1, 200), (1, 400)]
    assert (outcome.status, outcome.identifier_types_sent) == ("done", ("email",))
    assert outcome.identifier_types_rejected == ("phone",)
    assert outcome.note == "phone rejected: HTTP_400"


def test_trade_desk_half_failing_retryably_after_a_split_retries_the_whole_batch(server):
    # Given the second half answered 503 (TTD: "Handler disabled or request dropped")
    vendor = server.sandboxes["trade_desk"].vendor
    vendor.max_items = 2
    server.sandboxes["trade_desk"].set_faults(1 / 3, 503)
    jobs = [make_job(("email", f"user{n}@example.com"), request_id=f"r{n}",
                     system="trade_desk") for n in range(4)]  # fmt: skip
    outcomes = make_connector(server, "trade_desk").deliver(jobs)
    # Then every job is retried (resending the taken half again changes nothing at TTD)
    assert _posts(server) == [(4, 413), (2, 200), (2, 503)]
    assert all(o.status is None and o.error.retryable for o in outcomes)
