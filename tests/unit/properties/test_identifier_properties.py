"""Properties of identifier normalisation (hypothesis): whatever a stranger types, the
answer is a normalised value or InvalidInput (never another exception, never the input
echoed), normalising twice changes nothing, and the ways one identifier can be written all
reach the same value and so the same lookup key."""

import phonenumbers
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from optout import identifiers as ids
from optout.errors import InvalidInput

SECRET = b"property-test-secret"
ANY_TEXT = st.text(max_size=300)
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
# [a-z0-9][a-z0-9._+-]{0,20}[a-z0-9] and [a-z][a-z0-9-]{0,10}[a-z0-9].(com|org|co.uk|example),
# built from characters: the same values as from_regex, drawn several times faster.
LOCAL_PART = st.builds(
    "".join, st.tuples(st.sampled_from(ALNUM), st.text(ALNUM + "._+-", max_size=20),
                       st.sampled_from(ALNUM)),
)  # fmt: skip
DOMAIN = st.builds(
    "".join, st.tuples(st.sampled_from(ALNUM[:26]), st.text(ALNUM + "-", max_size=10),
                       st.sampled_from(ALNUM), st.sampled_from([".com", ".org", ".co.uk",
                                                                ".example"])),
)  # fmt: skip
EMAILS = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL_PART, DOMAIN).filter(
    lambda e: ".." not in e and ".@" not in e and "._" not in e
)
# Valid US numbers: a real area code and exchange, the last four digits free.
US_NUMBERS = st.builds(
    lambda area, exchange, line: f"{area}{exchange}{line:04d}",
    st.sampled_from(["415", "212", "312", "617", "206"]),
    st.sampled_from(["555", "234", "867", "392"]),
    st.integers(0, 9999),
).filter(lambda n: phonenumbers.is_valid_number(phonenumbers.parse(n, "US")))


MARK = "\u2603canary"  # never in a message of ours: if it comes back, the input was echoed
TYPED = {
    "email": EMAILS,
    "phone": US_NUMBERS,
    "device_id": st.from_regex(r"[A-Za-z0-9_-]{16,64}", fullmatch=True),
    "customer_id": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", fullmatch=True),
}


def _normalised_or_refused(id_type: ids.IdType, raw: str) -> str | None:
    try:
        return ids.normalise(id_type, raw).value
    except InvalidInput:
        return None


@given(id_type=st.sampled_from(ids.ID_TYPES), raw=ANY_TEXT)
@example(id_type="email", raw="\x00@example.com")
@example(id_type="phone", raw="+" + "9" * 250)
@example(id_type="customer_id", raw="\ud800")
def test_any_text_is_normalised_or_refused_with_invalid_input_only(
    id_type: ids.IdType, raw: str
) -> None:
    _normalised_or_refused(id_type, raw)


@given(id_type=st.sampled_from(ids.ID_TYPES), before=ANY_TEXT, after=ANY_TEXT)
def test_a_refusal_never_echoes_what_was_typed(
    id_type: ids.IdType, before: str, after: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        ids.normalise(id_type, before + MARK + after)
    assert "canary" not in refused.value.message


@given(data=st.data(), id_type=st.sampled_from(ids.ID_TYPES))
def test_normalising_a_normalised_value_changes_nothing(
    data: st.DataObject, id_type: ids.IdType
) -> None:
    raw = data.draw(TYPED[id_type], label="typed")
    once = ids.normalise(id_type, raw, "US").value
    assert ids.normalise(id_type, once).value == once


@given(email=EMAILS, case=st.lists(st.booleans(), min_size=80, max_size=80),
       pad=st.sampled_from(["", " ", "\u00a0", "  \u00a0 "]))  # fmt: skip
def test_an_email_in_any_case_with_surrounding_space_is_one_identifier(
    email: str, case: list[bool], pad: str
) -> None:
    typed = pad + "".join(c.upper() if up else c for c, up in zip(email, case, strict=False))
    typed += email[len(case) :] + pad
    first = ids.normalise("email", email)
    again = ids.normalise("email", typed)
    assert again == first
    assert ids.lookup_key(SECRET, again) == ids.lookup_key(SECRET, first)


@given(number=US_NUMBERS, style=st.sampled_from(
    ["{a}{e}{l}", "({a}) {e}-{l}", "{a}-{e}-{l}", "+1 {a} {e} {l}", "1{a}{e}{l}",
     "+1-{a}-{e}-{l}", " {a}.{e}.{l} "]))  # fmt: skip
def test_every_way_of_writing_a_us_number_is_one_e164_identifier(number: str, style: str) -> None:
    typed = style.format(a=number[:3], e=number[3:6], l=number[6:])
    assert ids.normalise("phone", typed, "US").value == f"+1{number}"


@given(raw=ANY_TEXT)
def test_a_device_id_is_accepted_exactly_when_it_has_the_strict_format(raw: str) -> None:
    accepted = _normalised_or_refused("device_id", raw) is not None
    assert accepted == bool(ids.DEVICE_ID_RE.fullmatch(raw) and not raw.endswith("\n"))


@given(a=EMAILS, b=EMAILS)
def test_different_identifiers_have_different_lookup_keys(a: str, b: str) -> None:
    assume(a != b)
    key_a = ids.lookup_key(SECRET, ids.normalise("email", a))
    assert key_a != ids.lookup_key(SECRET, ids.normalise("email", b))
    assert key_a != ids.lookup_key(SECRET, ids.Identifier("customer_id", a))


@pytest.mark.parametrize("id_type", ids.ID_TYPES)
def test_the_refusal_names_the_field_of_the_identifier_type(id_type: ids.IdType) -> None:
    with pytest.raises(InvalidInput) as refused:
        ids.normalise(id_type, "\x00")
    assert refused.value.field == id_type
