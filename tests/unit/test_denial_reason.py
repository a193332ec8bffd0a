"""A denial's or a retirement's reason (optout.ops.denial.check_reason): evidence without the
person's identifiers. A phone or card number (seven digits or more) is refused; a date on its
own is not one (review s14 counsel 8: "contract ended 2026-11-30" was refused as a phone)."""

import pytest

from optout.errors import InvalidInput
from optout.ops.denial import check_reason


@pytest.mark.parametrize(
    "reason",
    [
        "contract with braze ended 2026-11-30",
        "scripted submissions, batch of 2026-11-30.",
        "disclosure stopped on 30/11/2026 (contract end)",
        "disclosure stopped on 11/30/2026 (contract end)",
        "no disclosure from 2026-11-01 to 2026-11-30",
    ],
)
def test_a_reason_may_carry_a_date(reason: str) -> None:
    assert check_reason(reason) == reason


@pytest.mark.parametrize(
    "reason",
    [
        "the caller gave 415-555-2026 as their number",
        "the caller gave +1 (415) 555 2026 as their number",
        "card 4111 1111 1111 1111 was used",
        "batch of 2026-11-30 from 555-1234567",
        "the number 2026-11-30-12345 looks scripted",
        "called 2026-11-30 555 1234 twice",  # digits joined to a date: read as one number
        "a date-shaped number 2026-13-45 is no date",
        "submitted by 0612-34-56-78 repeatedly",
        "fraud ring, see bad@example.com",
        # any punctuation between the digits (review s16 claims F5: these were kept)
        "customer at 415/555/0132 asked twice",
        "card 4111,1111,1111,1111 used",
        "phone 415_555_0132 duplicate",
        "phone 415.555.0132 duplicate",
        "phone 415\u00b7555\u00b70132 duplicate",
        "phone 415 / 555 / 0132 duplicate",
    ],
)
def test_a_reason_with_a_phone_card_or_email_is_refused(reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_reason(reason)
    assert refused.value.field == "reason"


# Review s17 PII M2: these passed the check and were shown by `optout status` and the exports.
@pytest.mark.parametrize(
    "reason",
    [
        "scripted, same as canary.z9q\uff20example.org",  # fullwidth at sign
        "fraud from canary.z9q at example.org seen",
        "fraud from canary.z9q at example dot org seen",
        "fraud from canary.z9q(at)example.org seen",
        "fraud from canary.z9q [at] example [dot] org seen",
        "fraud by jane@example, no dot after the at sign",
        "fraud from canary.z9q@localhost seen",
        "fraud from canary.z9q%40example.org seen",
        "the caller gave \uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff19\uff19 twice",
    ],
)
def test_a_reason_with_a_disguised_email_or_phone_is_refused(reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_reason(reason)
    assert refused.value.field == "reason"


@pytest.mark.parametrize(
    "reason",
    [
        "scripted submissions at night. Then stopped",
        "the contract at braze ended in November",
        "stopped at v2.0 of the form",
        "retired at the end of the contract",
    ],
)
def test_a_reason_with_the_word_at_is_kept(reason: str) -> None:
    assert check_reason(reason) == reason


# Review s17 L-M4: a word, " at " and a website is the site named, not a spelled address; a
# date written 20261130 or 2026.11.30 is a date.
@pytest.mark.parametrize(
    "reason",
    [
        "Identity could not be verified at ID.me",
        "Agent's authorization letter was not signed at docusign.com",
        "Duplicate of a request already filed at privacy.example.com",
        "scripted submissions, batch of 20261130",
        "scripted submissions, batch of 2026.11.30 (contract end)",
    ],
)
def test_a_reason_naming_a_website_or_a_compact_date_is_kept(reason: str) -> None:
    assert check_reason(reason) == reason


@pytest.mark.parametrize(
    "reason",
    [
        "fraud from jane_doe at example.org seen",
        "fraud from jane+x at example.org seen",
        "fraud from jane at example dot org seen",
        "fraud from jane at mail dot example.org seen",
        "the caller gave +45 20261231 twice",
        "the caller gave (45) 20261231 twice",
    ],
)
def test_an_address_or_a_phone_near_those_shapes_is_still_refused(reason: str) -> None:
    with pytest.raises(InvalidInput):
        check_reason(reason)


@pytest.mark.parametrize(
    "reason",
    ["fraud from CUST-CANARY-77 seen", "fraud from cust-canary-77, seen twice",
     "bot device dev-canary-6b1b3df55cee"],
)  # fmt: skip
def test_a_reason_naming_one_of_the_requests_own_values_is_refused(reason: str) -> None:
    values = ["CUST-CANARY-77", "dev-canary-6b1b3df55cee", "42"]
    with pytest.raises(InvalidInput):
        check_reason(reason, values)
    assert check_reason("fraud from CUST-CANARY-78 seen, 42 attempts", values)
