"""A receipt says what the vendor's calls showed (review s31 counsel F2, F4): Braze's "email
matched N profiles" counts the profiles of ONE email, not of every email the job carries (a
cluster's, a carried second account's: two people); a no_record receipt carries the status of
the call that found no one and names that call (Braze's export answers 201; for The Trade
Desk, which is never called then, the UID2 operator's identity/map), never a constant 200."""

from dataclasses import replace

from local.sandbox import braze as braze_sandbox
from local.sandbox.server import SandboxServer
from local.sandbox.wire import SandboxRequest, SandboxResponse
from optout.delivery.receipts import receipt_of
from tests.unit.connectors.conftest import calls, make_connector, make_job


def test_a_braze_job_of_two_emails_each_with_one_profile_notes_no_duplicate(
    server: SandboxServer,
) -> None:
    # Given a job carrying two people's emails (a second account's opt-out carried to the
    # first's), each held by one Braze profile
    job = make_job(("email", "carol@example.com"), ("email", "dave@example.com"), system="braze")

    (outcome,) = make_connector(server, "braze").deliver([job])

    # Then both profiles are updated, and the receipt does not say one email matched two
    track = [c for c in calls(server, "braze") if c["path"] == "/users/track"]
    assert len(track) == 1 and outcome.status == "done"
    assert outcome.note is None or "matched" not in outcome.note


def test_a_braze_job_of_two_emails_notes_the_one_that_matched_several_profiles(
    server: SandboxServer,
) -> None:
    # Given a job of two emails, one held by two profiles (duplicates), the other by one
    job = make_job(("email", "carol@example.com"), ("email", "shared.dave@example.com"),
                   system="braze")  # fmt: skip

    (outcome,) = make_connector(server, "braze").deliver([job])

    # Then the note counts that email's profiles (2), not the job's (3)
    assert len(server.sandboxes["braze"].vendor.updated) == 3  # type: ignore[attr-defined]
    assert outcome.note == "email matched 2 Braze profiles, an update sent to each"


def test_a_braze_job_of_two_emails_each_with_duplicates_notes_each(
    server: SandboxServer,
) -> None:
    job = make_job(("email", "shared.a@example.com"), ("email", "shared.b@example.com"),
                   system="braze")  # fmt: skip

    (outcome,) = make_connector(server, "braze").deliver([job])

    assert outcome.note == (
        "2 emails each matched several Braze profiles (2, 2), an update sent to each"
    )


def test_a_braze_no_record_receipt_has_the_exports_own_status_and_names_the_call(
    server: SandboxServer,
) -> None:
    # Given an email Braze holds no profile of (its export answers 201, as Braze's does)
    job = make_job(("email", "unknown.six@example.com"), system="braze")

    (outcome,) = make_connector(server, "braze").deliver([job])

    (export,) = calls(server, "braze")
    assert export["path"] == "/users/export/ids"
    assert outcome.status == "no_record"
    assert outcome.http_status == 201  # was a constant 200
    assert outcome.note == "no such person (braze users/export/ids)"
    assert braze_sandbox.braze_ids("unknown.six@example.com") == []


def _uid2_answering(server: SandboxServer, status: int) -> None:
    """The UID2 operator answers as usual, with another 2xx status."""
    vendor = server.sandboxes["uid2"].vendor
    original = vendor.handle

    def handle(request: SandboxRequest) -> SandboxResponse:
        return replace(original(request), status=status)

    vendor.handle = handle  # type: ignore[method-assign]


def test_a_trade_desk_no_record_receipt_has_the_uid2_operators_status_and_call(
    server: SandboxServer,
) -> None:
    # Given a UID2 operator that answers identity/map with a 202, and an email opted out of
    # UID2 (so The Trade Desk is never called for it)
    _uid2_answering(server, 202)
    job = make_job(("email", "optout@example.com"), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    assert calls(server, "trade_desk") == []
    assert (outcome.status, outcome.http_status) == ("no_record", 202)  # was a constant 200
    assert outcome.note == "no UID2 for this person (UID2 operator identity/map: optout)"


def test_a_trade_desk_no_record_receipt_says_its_types_went_to_the_uid2_operator(
    server: SandboxServer,
) -> None:
    # Given an email opted out of UID2: the operator gets its hash, The Trade Desk nothing
    job = make_job(("email", "optout@example.com"), system="trade_desk")

    (outcome,) = make_connector(server, "trade_desk").deliver([job])

    # Then the receipt says who received the type it lists as sent (proof34 L2: the views read
    # `identifier_types_sent` and the HTTP status as The Trade Desk's), and one TTD took does not
    assert calls(server, "trade_desk") == []
    assert outcome.status == "no_record" and outcome.identifier_types_sent == ("email",)
    assert receipt_of(outcome)["sent_to"] == "uid2_operator"
    (taken,) = make_connector(server, "trade_desk").deliver(
        [make_job(("email", "alice@example.com"), system="trade_desk")]
    )
    assert taken.status == "done" and "sent_to" not in receipt_of(taken)


def _braze_answering(server: SandboxServer, status: int) -> None:
    """Braze's sandbox answers as usual, with another 2xx status."""
    vendor = server.sandboxes["braze"].vendor
    original = vendor.handle

    def handle(request: SandboxRequest) -> SandboxResponse:
        return replace(original(request), status=status)

    vendor.handle = handle  # type: ignore[method-assign]


def test_a_braze_phone_only_no_record_receipt_has_the_phone_exports_own_status(
    server: SandboxServer,
) -> None:
    # Given a phone Braze holds no profile of, its export answering 202 (not the usual 201: the
    # receipt must carry what the call answered, whatever it is)
    _braze_answering(server, 202)
    job = make_job(("phone", "+14155550000"), system="braze")

    (outcome,) = make_connector(server, "braze").deliver([job])

    # Then the receipt is the phone export's: its status, and the call named
    (export,) = calls(server, "braze")
    assert export["path"] == "/users/export/ids"
    assert (outcome.status, outcome.http_status) == ("no_record", 202)
    assert outcome.note == "no such person (braze users/export/ids)"
    assert "4155550000" not in repr(outcome)


def test_a_braze_job_notes_duplicates_per_email_and_per_phone(server: SandboxServer) -> None:
    # Given a job of an email held by two profiles, one held by one, and two phones each held
    # by two profiles (a cluster's: several people's)
    job = make_job(("email", "shared.dave@example.com"), ("email", "carol@example.com"),
                   ("phone", "+14155552222"), ("phone", "+14155562222"),
                   system="braze")  # fmt: skip

    (outcome,) = make_connector(server, "braze").deliver([job])

    # Then every profile is updated, and the note counts per identifier, never a type's sum
    assert outcome.status == "done"
    assert len(server.sandboxes["braze"].vendor.updated) == 7  # type: ignore[attr-defined]
    assert outcome.note == (
        "email matched 2 Braze profiles, 2 phones each matched several Braze profiles (2, 2), "
        "an update sent to each"
    )
