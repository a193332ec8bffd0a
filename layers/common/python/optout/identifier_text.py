"""Whether free text holds what looks like a person's email address or phone number: one rule
for the operator's reasons (ops/denial.py, retire.py) and the request's evidence (evidence.py,
ops/importer.py). Plain `re`, no pydantic: the capture function runs it on its hot path.

Text is read as the NFKC form of its percent-decoding, so `%40`, a fullwidth at sign (U+FF20)
or fullwidth digits are what they look like. An email is any `@`, or one spelled out (`jane at
example dot com`, `jane(at)example.org`). A phone or card number is a run of seven digits or
more, however spaced or punctuated; a date on its own (2026-11-30, 30/11/2026) is not one. A
customer id has no shape of its own: it is only caught where the values to compare with are
at hand.
"""

import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from urllib.parse import unquote

# seven digits or more, any separators: a phone, a card
NUMBER_LIKE = re.compile(r"\d(?:[\W_]*\d){6,}")
# A date (2026-11-30, 30/11/2026 or 11/30/2026) standing alone: not digits joined to others by
# a separator, so a phone written around one is still seen (review s14 counsel 8: a retire's
# "contract ended 2026-11-30" was refused as a phone number).
DATE_LIKE = re.compile(
    r"(?<![\d+(])(?<!\d[\s().+/-])(?:(\d{4})-(\d{2})-(\d{2})|(\d{2})/(\d{2})/(\d{4}))"
    r"(?![\d/]|[\s().+-]+\d)"
)
# "name at domain dot com", "name (at) domain [dot] org": an address written to pass an @ check
# (review s17 PII M2). The dot is a real "." with no space around it, or a spelled "dot", so
# "stopped at 5. Then" is not one.
_AT = r"(?:\s+at\s+|\s*[(\[{<]\s*at\s*[)\]}>]\s*)"
_DOT = r"(?:\.|\s+dot\s+|\s*[(\[{<]\s*dot\s*[)\]}>]\s*)"
EMAIL_SPELLED = re.compile(rf"[\w.+-]+{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[a-z]{{2,}}\b", re.I)


def plain(text: str) -> str:
    """What the text reads as: percent-decoded, then NFKC (compatibility forms folded)."""
    return unicodedata.normalize("NFKC", unquote(text))


def holds_email(text: str) -> bool:
    read = plain(text)
    return "@" in read or EMAIL_SPELLED.search(read) is not None


def holds_number(text: str) -> bool:
    return NUMBER_LIKE.search(_without_dates(plain(text))) is not None


def holds_identifier(text: str) -> bool:
    """An email address or a phone (or card) number, however written."""
    return holds_email(text) or holds_number(text)


def names_any(text: str, values: Iterable[str], shortest: int = 4) -> bool:
    """Whether `text` holds one of `values` as a word of its own, case-insensitively (a
    customer id in a reason). Values shorter than `shortest` are left out: a customer id "42"
    in "42 attempts" is chance."""
    read = plain(text).casefold()
    return any(
        re.search(rf"(?<![\w-]){re.escape(value.casefold())}(?![\w-])", read)
        for value in values
        if len(value) >= shortest
    )


def _is_date(found: re.Match[str]) -> bool:
    """A real calendar date: year-month-day, or day/month or month/day with the year last."""
    y, m, d, a, b, year = found.groups()
    candidates = [(y, m, d)] if y else [(year, b, a), (year, a, b)]
    for parts in candidates:
        try:
            date(*(int(p) for p in parts))
        except ValueError:
            continue
        return True
    return False


def _without_dates(text: str) -> str:
    return DATE_LIKE.sub(lambda found: " " if _is_date(found) else found[0], text)
