"""Our vendor forms against the vendors' own code (review s21 ident): whatever a person types,
the identifier we normalise and then hash for Meta and UID2 is the one facebook-business's
Normalize and uid2-client's normalize_email_string / normalize_and_hash_phone make of what they
typed. (Google's Formatter, google-ads-datamanager-util, is not a dependency: it was compared
by hand, docs/vendors.md.)"""

import phonenumbers
import pytest
from facebook_business.adobjects.serverside.normalize import Normalize
from hypothesis import assume, example, given
from hypothesis import strategies as st
from uid2_client.input_util import (
    get_base64_encoded_hash,
    normalize_and_hash_phone,
    normalize_email_string,
)

from optout import identifiers as ids
from optout.connectors import hashing
from optout.errors import InvalidInput

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
ATOM = st.text(ALNUM + "+_-", min_size=1, max_size=8)
# dot-atoms, "+" anywhere (a tag, or a local part that is only a tag), gmail's and other domains
LOCAL_PART = st.lists(ATOM, min_size=1, max_size=4).map(".".join)
DOMAIN = st.sampled_from(
    ["gmail.com", "googlemail.com", "example.com", "mail.example.co.uk", "xn--bcher-kva.example"]
)
TYPED_EMAIL = st.builds(
    lambda local, domain, case, pad: pad + (f"{local}@{domain}".upper() if case else
                                            f"{local}@{domain}") + pad,
    LOCAL_PART, DOMAIN, st.booleans(), st.sampled_from(["", " ", "  "]),
)  # fmt: skip


def _ours(typed: str) -> str | None:
    try:
        return ids.normalise_email(typed)
    except InvalidInput:
        return None


@given(typed=TYPED_EMAIL)
@example(typed=" Jane.Doe+Ads@GMAIL.com ")
@example(typed="+news@gmail.com")
def test_uid2_email_form_is_uid2_clients_of_what_was_typed(typed: str) -> None:
    email = _ours(typed)
    assume(email is not None)
    assert email is not None
    theirs = normalize_email_string(typed)
    if hashing.uid2_matchable(email):
        assert hashing.uid2_email(email) == theirs
        assert hashing.uid2_email_hash(email) == get_base64_encoded_hash(theirs)
    else:  # uid2-client refuses it; our connector sends nothing for it
        assert theirs is None


@given(typed=TYPED_EMAIL)
def test_meta_email_hash_is_facebook_business_normalize_of_what_was_typed(typed: str) -> None:
    email = _ours(typed)
    assume(email is not None)
    assert email is not None
    assert hashing.email_sha256(email) == Normalize.normalize_field("em", typed)


def _valid_number(region: str, kind: int, last: int) -> phonenumbers.PhoneNumber | None:
    """The region's example number of `kind` with its last digits changed, if still valid."""
    example_number = phonenumbers.example_number_for_type(region, kind)
    if example_number is None:
        return None
    digits = str(example_number.national_number)
    tail = str(last).zfill(3)[-min(3, len(digits) - 1) :]
    number = phonenumbers.PhoneNumber(
        country_code=example_number.country_code,
        national_number=int(digits[: len(digits) - len(tail)] + tail),
        italian_leading_zero=example_number.italian_leading_zero,
        number_of_leading_zeros=example_number.number_of_leading_zeros,
    )
    return number if phonenumbers.is_valid_number(number) else None


NUMBERS = st.builds(
    _valid_number,
    st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]),
    st.integers(0, 999),
).filter(lambda n: n is not None)


@given(number=NUMBERS)
def test_phone_hashes_are_the_vendor_sdks_of_every_countrys_numbers(
    number: phonenumbers.PhoneNumber,
) -> None:
    # What a person types in international form (spaces, the country code) becomes E.164
    spaced = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    assume(ids.PHONE_RE.fullmatch(spaced))
    e164 = ids.normalise_phone(spaced)
    assert e164 == phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Meta: digits with the country code (its Normalize strips the "+")
    assert hashing.meta_phone_sha256(e164) == Normalize.normalize_field("ph", e164)
    # UID2: the E.164 itself. uid2-client (and the operator) refuse fewer than 10 digits
    # (Faroe, Niue, some Swedish numbers): the connector sends nothing for those
    if hashing.uid2_phone_matchable(e164):
        assert hashing.uid2_phone_hash(e164) == normalize_and_hash_phone(e164)
    else:
        with pytest.raises(ValueError):
            normalize_and_hash_phone(e164)
