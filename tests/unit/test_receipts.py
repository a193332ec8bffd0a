"""The receipt stored on a job: what the vendor answered, as identifier types only."""

from optout.connectors.base import Outcome
from optout.delivery.receipts import receipt_of


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
