"""The receipt stored on a job: what the vendor answered, as identifier types only."""

from optout.connectors.base import Outcome
from optout.delivery.receipts import NOTE_MAX, VENDOR_REF_MAX, duration_text, receipt_of


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


def test_a_failed_sends_receipt_names_the_types_it_tried_and_none_as_sent():
    # Given a send that failed midway: whether the email reached the vendor is unknown
    outcome = Outcome("req-1:meta", None, 500, identifier_types_attempted=("email",))

    receipt = receipt_of(outcome)

    # Then the receipt says the email was tried (what `optout status` prints), never sent
    assert receipt["identifier_types_attempted"] == ["email"]
    assert receipt["identifier_types_sent"] == []
    accepted = receipt_of(Outcome("req-1:meta", "done", 200, "1", ("email",)))
    assert "identifier_types_attempted" not in accepted


def test_receipt_keeps_the_crm_records_the_opt_out_changed():
    outcome = Outcome("req-1:salesforce", "done", 200, None, ("email",),
                      records_changed=("003A1", "003B2"))  # fmt: skip

    assert receipt_of(outcome)["records_changed"] == ["003A1", "003B2"]
    assert "records_changed" not in receipt_of(
        Outcome("req-1:braze", "done", 201, None, ("email",))
    )


def test_a_confirmation_limit_reads_in_the_largest_whole_unit():
    # The failed receipt's "vendor did not confirm within …" text
    assert duration_text(14 * 86_400) == "14 days"
    assert duration_text(86_400) == "1 day"
    assert duration_text(36 * 3600) == "36 hours"
    assert duration_text(3601 * 3600) == "3601 hours"
    assert duration_text(3600) == "1 hour"
    assert duration_text(86_401) == "86401 seconds"
    assert duration_text(3599.5) == "3600 seconds"
    assert duration_text(90) == "90 seconds"
    assert duration_text(0.5) == "1 second"


def test_a_status_checks_receipt_keeps_the_types_the_send_recorded():
    # A status check's outcome names no types: its receipt is merged over the send's
    # (delivery.service), so it must not say "nothing sent" and erase them
    check = receipt_of(Outcome("req-1:segment", "done", 200, "reg_1"), keep_types=True)
    assert "identifier_types_sent" not in check
    sent = receipt_of(Outcome("req-1:segment", "done", 200, "reg_1", ("customer_id",)), True)
    assert sent["identifier_types_sent"] == ["customer_id"]


def test_references_of_exactly_the_bound_are_kept_whole():
    refs = ",".join(["r" * 255, "s" * 256])
    assert len(refs) == VENDOR_REF_MAX

    assert receipt_of(Outcome("req-1:meta", "done", 200, refs, ("email",)))["vendor_ref"] == refs


def test_a_reference_ending_just_inside_the_cut_is_kept():
    # 509 characters of whole references, then one more: the kept ones and ",…" make 511
    first = ",".join(["a" * 254, "b" * 254])
    refs = f"{first},{'c' * 40}"
    assert len(first) == VENDOR_REF_MAX - 3

    kept = receipt_of(Outcome("req-1:meta", "done", 200, refs, ("email",)))["vendor_ref"]

    assert kept == f"{first},…"
