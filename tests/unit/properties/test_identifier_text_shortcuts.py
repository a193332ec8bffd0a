"""The shortcuts `plain`, `holds_email`, `holds_number` and `holds_grouped_number` take on
the capture's hot path (plain ASCII without `%` is read as it is; no "at" in ASCII text is
no spelled-out address, joined or not; no run of seven digits before the dates are taken out
is none after; text shorter than `12.3456.7890` holds no grouped phone) answer as the rules
without them did (hypothesis): the oracle below is those rules, unshortened."""

import unicodedata
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from optout.identifier_text import (
    _GROUPED_DATE,
    AT_REFERENCE,
    EMAIL_BRACKETED,
    GROUPED_NUMBER,
    MAX_DECODES,
    NUMBER_LIKE,
    _calendar_date,
    _unjoined,
    _without_dates,
    _word_at_address,
    holds_email,
    holds_grouped_number,
    holds_number,
    plain,
)


def plain_oracle(text: str) -> str:
    read = text
    for _ in range(MAX_DECODES):
        decoded = unicodedata.normalize("NFKC", unquote(read))
        if decoded == read:
            break
        read = decoded
    return read


def holds_email_oracle(text: str) -> bool:
    read = plain_oracle(text)
    if "@" in read or AT_REFERENCE.search(read) is not None:
        return True
    read = _unjoined(read)
    return EMAIL_BRACKETED.search(read) is not None or _word_at_address(read)


def holds_grouped_number_oracle(text: str) -> bool:
    for found in GROUPED_NUMBER.finditer(plain_oracle(text)):
        dated = _GROUPED_DATE.match(found[0])
        stamp = 8 if dated and _calendar_date(*dated.groups()) else 0
        if sum(ch.isdigit() for ch in found[0]) - stamp >= 10:
            return True
    return False


def holds_number_oracle(text: str) -> bool:
    return NUMBER_LIKE.search(_without_dates(plain_oracle(text))) is not None


# Pieces that make addresses, numbers and dates, spelled out, percent-encoded, in fullwidth
# and in cases re's IGNORECASE folds from outside ASCII (the Kelvin sign, long s).
PIECES = st.sampled_from([
    *"aAtT0123456789 .-/+()[]_@%",
    " at ", "(AT)", " dot ", "[dot]", "%40", "%2540", "\uff20", "\uff14\uff10", "\uff05",
    "jane", "j.doe", "example", ".com", "2026-11-30", "20100101", "30/11/2026", "+1 415 ",
    "555 0132", "v2.3-", "Gecko/", "\u212a", "\u017f", "\u00e9", "a\u0307",
    "_at_", "-AT-", "+at+", "_dot_", "-dot-", "&#64;", "&#x40", "&commat;", "%26%2364%3B",
    "415.555.0132", "1.", "44.20.", "2024.11.05.", "\u2488", "\uff0e", "\u0663\u0664",
])  # fmt: skip
TEXTS = st.one_of(st.lists(PIECES, max_size=14).map("".join), st.text(max_size=40))


@given(TEXTS)
@example("Mozilla/5.0")
@example("jane at example dot com")
@example("JANE AT EXAMPLE.ORG")
@example("%2540")
@example("Gecko/20100101 +1 415 555 0132")
@example("2026-11-30 4155550")
@example("jane_at_example.com")
@example("1.415.555.0132")
@example("\u2488\u2489\u248a\u248b\u248c\u248d\u248e")  # NFKC: "1.2.3.4.5.6.7." (14 long)
@example("%34%31%35.555.0132")  # 18 sent, 12 read
def test_the_shortcuts_answer_as_the_full_rules(text: str) -> None:
    assert plain(text) == plain_oracle(text)
    assert holds_email(text) == holds_email_oracle(text)
    assert holds_number(text) == holds_number_oracle(text)
    assert holds_grouped_number(text) == holds_grouped_number_oracle(text)


@pytest.mark.parametrize(
    "text", ["Mozilla/5.0", "AppleWebKit/537.36", "Chrome/120.0", "6099", "products"]
)
def test_plain_ascii_text_is_not_decoded_or_normalised(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a user agent's tokens and a page path's segments mostly are: the evidence reads
    # each of them on every capture
    calls: list[str] = []
    normalize = unicodedata.normalize

    def counted(form: Any, value: str) -> str:
        calls.append(value)
        return normalize(form, value)

    monkeypatch.setattr(unicodedata, "normalize", counted)
    assert plain(text) == text
    assert not holds_email(text) and not holds_number(text) and not holds_grouped_number(text)
    assert calls == []
