"""A job heavier than the vendor takes in one call goes in several calls, each within the
vendor's limit, and is answered with one receipt: done only when every part was accepted,
retryable or failed as the first part that failed."""

import json

from google.ads.datamanager_v1.types import RemoveAudienceMembersRequest

from local.sandbox.braze import MAX_OBJECTS
from local.sandbox.server import SandboxServer
from optout.connectors.base import Outcome, Submitted, merged
from optout.connectors.errors import DeliveryError
from optout.connectors.http import OutOfTime
from tests.unit.connectors.conftest import calls, make_connector, make_job


def braze_job(people: int):
    return make_job(*[("customer_id", f"c{n}") for n in range(people)], system="braze")


def tracked(server) -> list[list[dict]]:
    return [
        json.loads(c["body"])["attributes"]
        for c in calls(server, "braze")
        if c["path"] == "/users/track"
    ]


def test_braze_job_over_the_per_call_limit_goes_in_calls_within_it_and_is_one_done_receipt(
    server,
):
    # Given one job carrying 80 identities (Braze takes at most 75 objects per call)
    job = braze_job(80)
    # When it is delivered
    outcomes = make_connector(server, "braze").deliver([job])
    # Then every identity was updated, in calls of at most 75 objects, and one receipt says done
    sizes = [len(attributes) for attributes in tracked(server)]
    assert len(sizes) == 2 and max(sizes) <= MAX_OBJECTS and sum(sizes) == 80
    assert {a["external_id"] for call in tracked(server) for a in call} == {
        f"c{n}" for n in range(80)
    }
    (outcome,) = outcomes
    assert (outcome.job_id, outcome.status) == (job.job_id, "done")
    assert outcome.identifier_types_sent == ("customer_id",)
    assert outcome.note == "sent in 2 parts"


def test_a_part_of_a_job_that_found_no_such_person_names_its_identities_as_not_sent(
    server: SandboxServer,
) -> None:
    # Given one job carrying 80 people's customer ids (a backfill step's), the last 5 of
    # which Braze holds no profile of: the second part (75 objects per call) finds no one
    known = [("customer_id", f"c{n}") for n in range(75)]
    job = make_job(*known, *[("customer_id", f"unknown-{n}") for n in range(5)], system="braze")
    # When it is delivered
    (outcome,) = make_connector(server, "braze").deliver([job])
    # Then the job is done, and the outcome says which identities were not sent: those of
    # the part that found no one are no proof (review s28 P1)
    assert (outcome.status, outcome.identifier_types_sent) == ("done", ("customer_id",))
    assert outcome.not_sent_at == tuple(range(75, 80))


def test_braze_job_within_the_limit_is_still_one_call(server):
    # Given jobs that fit one call together
    jobs = [make_job(("customer_id", f"c{n}"), request_id=f"r{n}", system="braze")
            for n in range(3)] + [braze_job(40)]  # fmt: skip
    # When they are delivered
    outcomes = make_connector(server, "braze").deliver(jobs)
    # Then one lookup and one update carry them all, and no receipt mentions parts
    assert [c["path"] for c in calls(server, "braze")] == ["/users/export/ids", "/users/track"]
    assert [(o.status, o.note) for o in outcomes] == [("done", None)] * 4


def test_a_retryable_failure_of_the_second_part_makes_the_job_retryable(server):
    # Given a Braze that fails the 4th call (lookup, update, lookup, *update*) with a 500
    server.sandboxes["braze"].set_faults(0.25, 500)
    # When an 80-identity job is delivered
    (outcome,) = make_connector(server, "braze").deliver([braze_job(80)])
    # Then the job is retryable as a whole, and claims no type as sent
    assert [c["status"] for c in calls(server, "braze")] == [201, 201, 201, 500]
    assert outcome.status is None
    assert outcome.error.retryable and outcome.error.http_status == 500
    assert outcome.identifier_types_sent == ()
    assert outcome.identifier_types_attempted == ("customer_id",)
    assert outcome.note == "sent in 2 parts; part 2 failed"


def test_a_final_failure_of_the_second_part_fails_the_job(server):
    # Given a Braze that refuses the 4th call (the second part's update) with a 400
    server.sandboxes["braze"].set_faults(0.25, 400)
    # When an 80-identity job is delivered
    (outcome,) = make_connector(server, "braze").deliver([braze_job(80)])
    # Then the job failed for good, naming the types it attempted
    assert [c["status"] for c in calls(server, "braze")] == [201, 201, 201, 400]
    assert outcome.status is None
    assert not outcome.error.retryable and outcome.error.http_status == 400
    assert outcome.identifier_types_attempted == ("customer_id",)
    assert outcome.identifier_types_sent == ()


def test_a_failed_first_part_stops_the_job_before_its_other_parts(server):
    # Given a Braze that fails every call with a 429
    server.sandboxes["braze"].set_faults(1.0, 429)
    # When an 80-identity job is delivered
    (outcome,) = make_connector(server, "braze").deliver([braze_job(80)])
    # Then only the first part's first call was made
    assert len(calls(server, "braze")) == 1
    # and the receipt says the second part never went (review s22 proof P5)
    assert outcome.error.retryable and outcome.note == "sent 1 of 2 parts; part 1 failed"


def test_segment_split_job_keeps_one_distinct_message_id_per_customer_id(server):
    # Given a job of 250 customer ids (the connector sends at most 200 events a call)
    job = make_job(*[("customer_id", f"cust-{n}") for n in range(250)], system="segment")
    # When it is delivered
    (outcome,) = make_connector(server, "segment").deliver([job])
    # Then two batches carry 250 events whose message ids differ (Segment de-duplicates on it)
    batches = [json.loads(c["body"])["batch"] for c in calls(server, "segment")]
    assert [len(b) for b in batches] == [200, 50]
    assert len({e["messageId"] for b in batches for e in b}) == 250
    assert outcome.status == "done"


def test_segment_split_regulation_is_done_only_when_every_part_finishes(server):
    # Given a regulation job of 250 customer ids, sent as two regulations
    connector = make_connector(server, "segment", options={"mode": "regulation"})
    job = make_job(*[("customer_id", f"cust-{n}") for n in range(250)], system="segment")
    (outcome,) = connector.deliver([job])
    pending = [Submitted(outcome.job_id, outcome.vendor_ref or "", outcome.identifier_types_sent)]
    # When its status is read until Segment finishes both (INITIALIZED, RUNNING, FINISHED)
    checks = [connector.confirm(pending)[0] for _ in range(3)]
    # Then one job follows both regulations and is done only at the end
    assert (outcome.status, outcome.vendor_ref) == ("submitted", "reg_1,reg_2")
    assert [c.status for c in checks] == ["submitted", "submitted", "done"]
    assert {c.vendor_ref for c in checks} == {"reg_1,reg_2"}
    paths = [c["path"] for c in calls(server, "segment")[2:]]
    # (each check reads both, starting at a random one: base.read_each)
    assert [sorted(paths[n : n + 2]) for n in (0, 2, 4)] == [
        ["/regulations/reg_1", "/regulations/reg_2"]
    ] * 3
    assert len(paths) == 6


def test_segment_split_regulation_fails_when_one_part_fails(server):
    # Given a split regulation job whose second regulation Segment fails
    connector = make_connector(server, "segment", options={"mode": "regulation"})
    job = make_job(*[("customer_id", f"cust-{n}") for n in range(250)], system="segment")
    (outcome,) = connector.deliver([job])
    server.sandboxes["segment"].vendor.regulations["reg_2"]["failed"] = True
    pending = [Submitted(outcome.job_id, outcome.vendor_ref or "", ("customer_id",))]
    # When its status is read to the end
    verdicts = [connector.confirm(pending)[0] for _ in range(3)]
    # Then the job failed with Segment's status, its types as sent (the submit sent them)
    assert [v.status for v in verdicts] == ["submitted", "submitted", None]
    assert verdicts[-1].error.retryable is False
    assert verdicts[-1].error.reason == "segment regulation: FAILED"
    assert verdicts[-1].identifier_types_sent == ("customer_id",)
    assert verdicts[-1].vendor_ref == "reg_1,reg_2"


def test_google_sends_a_person_with_many_identifiers_as_members_of_at_most_ten(server):
    # Given one person with 25 emails (Google takes at most 10 identifiers a member)
    job = make_job(*[("email", f"p{n}@example.com") for n in range(25)], system="google_ads")
    # When the job is delivered
    (outcome,) = make_connector(server, "google_ads").deliver([job])
    # Then one request carries them as three members, which Google's types parse
    _, remove = calls(server, "google_ads")
    parsed = RemoveAudienceMembersRequest.from_json(remove["body"], ignore_unknown_fields=False)
    assert [len(m.user_data.user_identifiers) for m in parsed.audience_members] == [10, 10, 5]
    assert outcome.status == "submitted"


def test_merged_receipt_joins_references_and_records_and_keeps_done_over_no_record():
    # Given parts answered done (two records), no_record, and done again (one more record)
    answers = [
        Outcome("j", "done", 200, "ind-1", ("email",), records_changed=("Contact/2", "Ind/1")),
        Outcome("j", "no_record", 200, None, ("email",), note="no such person"),
        Outcome("j", "done", 201, "ind-1,ind-2", ("email",), records_changed=("Contact/1",)),
    ]
    # When they are merged
    outcome = merged("j", answers, 3, ("email",))
    # Then the job is done, with each reference once and every record changed
    assert (outcome.status, outcome.http_status) == ("done", 201)
    assert outcome.vendor_ref == "ind-1,ind-2"
    assert outcome.records_changed == ("Contact/1", "Contact/2", "Ind/1")
    assert outcome.note == "sent in 3 parts"


def test_merged_receipt_is_no_record_only_when_no_part_found_the_person():
    answers = [
        Outcome("j", "no_record", 200, None, ("email",), note="no such person"),
        Outcome("j", "no_record", 200, None, ("email",), note="no such person"),
    ]

    outcome = merged("j", answers, 2, ("email",))

    assert (outcome.status, outcome.note) == ("no_record", "sent in 2 parts; no such person")


def test_merged_receipt_takes_the_first_failure_over_an_earlier_success():
    error = DeliveryError("braze users/track: HTTP 503", retryable=True, http_status=503)
    answers = [Outcome("j", "done", 201, None, ("email",)), Outcome("j", None, 503, error=error)]

    outcome = merged("j", answers, 3, ("customer_id", "email"))

    assert (outcome.status, outcome.error, outcome.http_status) == (None, error, 503)
    assert outcome.identifier_types_attempted == ("customer_id", "email")
    # the third part was never sent (the send stops at the first failure): review s22 proof P5
    assert outcome.note == "sent 2 of 3 parts; part 2 failed"


def test_merged_receipt_of_a_part_out_of_time_does_not_count_it_as_sent():
    # Given a job whose first part was taken and whose second ran out of time before its call
    error = OutOfTime("braze users/track")
    answers = [Outcome("j", "done", 201, None, ("email",)),
               Outcome("j", None, error=error, not_started=True)]  # fmt: skip

    outcome = merged("j", answers, 3, ("email",))

    # Then the note counts only the part that went, and says the second was not sent, not that
    # it failed (review s22 diff B11)
    assert outcome.error is error
    assert outcome.note == "sent 1 of 3 parts; part 2 not sent (out of time)"


def test_merged_receipt_of_a_job_whose_first_part_never_started_is_not_started():
    # Given a job whose first part ran out of time before any call (nothing reached the vendor)
    error = OutOfTime("braze users/track")
    answers = [Outcome("j", None, error=error, not_started=True)]

    outcome = merged("j", answers, 2, ("customer_id",))

    # Then the receipt is not an attempt: the worker tries the job again, nothing was sent
    assert outcome.not_started and outcome.error is error
    assert outcome.identifier_types_attempted == () and outcome.note is None


def test_merged_failure_keeps_the_references_of_the_parts_the_vendor_accepted():
    # Given a first part accepted under a reference and a second part refused
    error = DeliveryError("segment regulation: HTTP 400", retryable=False, http_status=400)
    answers = [Outcome("j", "submitted", 200, "reg-1", ("customer_id",)),
               Outcome("j", None, 400, error=error)]  # fmt: skip

    outcome = merged("j", answers, 2, ("customer_id",))

    # Then the failed receipt still names what the vendor holds (an operator can look it up)
    assert (outcome.status, outcome.vendor_ref) == (None, "reg-1")
