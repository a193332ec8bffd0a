"""`names_any` finds a value as a word of its own as the regex it replaced did (hypothesis):
`(?<![\\w-])value(?![\\w-])` over the casefolded text, compiled per value, is the oracle. The
denial reason check and the import's external-id check both rest on it (a customer id quoted
in a reason, or used as the other tool's id, is refused)."""

import re

from hypothesis import given
from hypothesis import strategies as st

from optout.identifier_text import names_any, plain

# Small alphabets so values recur inside texts; word characters of several scripts, digits,
# the underscore and hyphen (word-like here), separators, and characters casefold changes.
# Also numerics that are not decimal digits (², Ⅻ), and a lone combining dot (U+0307, what
# İ casefolds to beside an i): review s20 diff C3 found the first alphabet let wrong
# boundaries pass.
PIECES = st.sampled_from([*"ab1_-. @/éßΣσ٣²Ⅻ\u0307", "ﬁ", "İ", " x", "AB", "abab"])
TEXTS = st.lists(PIECES, max_size=16).map("".join)
VALUES = st.lists(st.lists(PIECES, min_size=1, max_size=5).map("".join), max_size=3)


def oracle(text: str, values: list[str], shortest: int) -> bool:
    read = plain(text).casefold()
    return any(
        re.search(rf"(?<![\w-]){re.escape(value.casefold())}(?![\w-])", read)
        for value in values
        if len(value) >= shortest
    )


@given(TEXTS, VALUES, st.integers(0, 4))
def test_names_any_agrees_with_the_word_regex(text: str, values: list[str], shortest: int) -> None:
    assert names_any(text, values, shortest) == oracle(text, values, shortest)


@given(TEXTS, VALUES)
def test_a_value_set_in_a_text_between_separators_is_found(before: str, values: list[str]) -> None:
    # Given a text that holds a value with a space either side
    for value in (v for v in values if len(v) >= 4):
        text = f"{before} {value} end"
        # Then it is found, whatever the text around it (the oracle agrees)
        assert names_any(text, [value]) == oracle(text, [value], 4)


def test_word_boundaries_are_those_of_the_regex() -> None:
    assert names_any("customer C-1234 asked", ["C-1234"])
    assert not names_any("customer XC-1234 asked", ["C-1234"])  # a word character before
    assert not names_any("customer C-1234-9 asked", ["C-1234"])  # a hyphen after
    assert not names_any("id_ABCD", ["abcd"])  # the underscore is a word character
    assert names_any("(ABCD)", ["abcd"])  # case-insensitive, punctuation around
    assert not names_any("abcdabcd", ["abcd"])  # never a word of its own
    assert names_any("abcdabcd abcd", ["abcd"])  # the second occurrence is
    assert names_any("ababa-x ababab aba", ["abab"]) is False  # overlapping, none a word
    assert names_any("xab ab ab", ["ab ab"])  # a word overlapping one that is not
    assert not names_any("²abcd", ["abcd"]) and not names_any("abcdⅫ", ["abcd"])  # numerics
    assert not names_any("_abcd", ["abcd"])  # the underscore
    assert not names_any("léabcd", ["abcd"])  # a Unicode letter is a word character
    assert not names_any("abc", ["abc"])  # shorter than 4: left out
