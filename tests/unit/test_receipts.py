"""The receipt stored on a job: what the vendor answered, as identifier types only."""

from optout.connectors.base import Outcome
from optout.delivery.receipts import NOTE_MAX, VENDOR_REF_MAX, receipt_of


def test_receipt_lists_rejected_types_apart_from_sent_ones():
    # Given a done outcome whose email the vendor rejected inside an accepted call
    outcome = Outcome(
        "req-1:braze", "done", 201, None, ("customer_id",),
        note="email rejected", identifier_types_rejected=("email",),
    )  # fmt: skip

    # When it is stored as the job's receipt
    receipt = receipt_of(outcome)

    # Then the receipt names the rejected type apart, with the note, and not as sent
    assert receipt["identifier_types_sent"] == ["customer_id"]
    assert receipt["identifier_types_rejected"] == ["email"]
    assert receipt["note"] == "email rejected"


def test_receipt_without_rejections_has_no_rejected_field():
    receipt = receipt_of(Outcome("req-1:meta", "done", 200, "1", ("email",)))

    assert "identifier_types_rejected" not in receipt


def test_receipt_bounds_a_vendors_note_and_references():
    # Given an outcome carrying 420,000 characters of vendor text (review s12-pii 2: over
    # DynamoDB's 400 KB the receipt's write fails after the vendor acted)
    refs = ",".join(f"ref{n:05d}" for n in range(50_000))
    outcome = Outcome("req-1:meta", "done", 200, refs, ("email",), note="n" * 420_000)

    receipt = receipt_of(outcome)

    # Then the note is cut to NOTE_MAX and the references to whole ones within VENDOR_REF_MAX
    assert len(receipt["note"]) == NOTE_MAX == 200 and receipt["note"].endswith("…")
    assert len(receipt["vendor_ref"]) <= VENDOR_REF_MAX == 512
    kept = receipt["vendor_ref"].split(",")
    assert kept[-1] == "…" and kept[:-1] == refs.split(",")[: len(kept) - 1]


def test_receipt_keeps_a_submitted_jobs_references_whole_for_its_status_checks():
    refs = ",".join(f"reg_{n}" for n in range(200))
    outcome = Outcome("req-1:segment", "submitted", 200, refs, ("customer_id",))

    assert receipt_of(outcome)["vendor_ref"] == refs
