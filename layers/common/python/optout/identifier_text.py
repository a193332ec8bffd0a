"""Whether free text holds what looks like a person's email address or phone number: one rule
for the operator's reasons (ops/denial.py, retire.py) and the request's evidence (evidence.py,
ops/importer.py). Plain `re`, no pydantic: the capture function runs it on its hot path.

Text is read as the NFKC form of its percent-decoding, repeated until it reads the same (at
most MAX_DECODES rounds), so `%40`, `%2540`, a fullwidth at sign (U+FF20) or fullwidth digits
are what they look like. An email is any `@`, or one spelled out: `jane at
example dot com`, `jane(at)example.org`, or `j.doe at example.org` (a local part with a dot,
`_`, `+` or digit). A word before " at " and a real dot after it is a website named, as
operators write ("could not be verified at ID.me"), so `jane at example.com` is not caught. A
phone or card number is a run of seven digits or more, however spaced or punctuated; a date on
its own is not one: 2026-11-30, 2026.11.30, 20261130 (a Firefox's Gecko/20100101, a CalVer
policy version, also after a version as in v2.3-20260115), 30/11/2026. Where text is judged
in dot-separated parts (a user agent's version, a host's labels), a phone written in groups
(`415.555.0132`, `44.20.7946.0958`) is caught by holds_grouped_number instead. An at or dot
spelled between underscores, hyphens or plus signs (`jane_at_example.com`,
`jane-at-example-dot-com`) reads as its spaced form; an at sign as an HTML character
reference (`&#64;`) is one. A customer id has no shape of its own: it is only caught where
the values to compare with are at hand.
"""

import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from urllib.parse import unquote

# Rounds of percent-decoding and NFKC `plain` makes (each decodes at least one escape more):
# text encoded deeper than this is read as its last round left it.
MAX_DECODES = 8
# seven digits or more, any separators: a phone, a card
NUMBER_LIKE = re.compile(r"\d(?:[\W_]*\d){6,}")
# A date standing alone: year-month-day with "-", "." or nothing between (2026-11-30,
# 2026.11.30, 20261130), or 30/11/2026 or 11/30/2026. Not digits joined to others by a
# separator (_without_dates), so a phone written around one is still seen (review s14 counsel
# 8: a retire's "contract ended 2026-11-30" was refused as a phone number; review s17 L-M4:
# every Firefox's Gecko/20100101 and a CalVer policy version 2026.01.15 were redacted).
DATE_LIKE = re.compile(
    r"(?<![\d+(])(?:(\d{4})([-.]?)(\d{2})\2(\d{2})|(\d{2})/(\d{2})/(\d{4}))"
    r"(?![\d/]|[\s().+-]+\d)"
)
# Just before a date: a digit and separators join it to a number (+45 20261231, (45) 2026…) ...
_JOINED = re.compile(r"\d[\s().+/-]+\Z")
# ... unless that is a dotted version the date stamps (v2.3-20260115), not a phone's digits.
_VERSION = re.compile(r"(?<![\d.+(])\d{1,2}(?:\.\d{1,2})+-\Z")
# The year of a date, not a number's first four digits: 20100101 yes, 41555501 no.
_YEARS = range(1900, 2100)
# A phone written as a version (`App/415.555.0132`, `1.415.555.0132`, `44.20.7946.0958`,
# `01.23.45.67.89`; review s37 "pre-existing, low"): from any group on, three groups or more
# of two to four digits, one `.`, `-`, `_` or `+` between each, ten digits or more in all (a
# NANP number's ten; E.164 allows up to fifteen). For text judged in dot-separated parts (a
# user agent's version, a host's labels), where no part holds seven digits. A browser's
# version has a one-digit group (Chrome/120.0.6099.109, QQBrowser/12.1.5583.400) or fewer
# digits, and is not one.
GROUPED_NUMBER = re.compile(r"(?<!\d)\d{2,4}(?:[.+_-]\d{2,4}){2,}(?!\d)")
_GROUPED_SHORTEST = len("12.3456.7890")  # ten digits need three groups, two separators
# ... but a build stamped with a date first (2024.11.05.01) is a version
_GROUPED_DATE = re.compile(r"(?<!\d)(\d{4})[.+_-](\d{2})[.+_-](\d{2})(?!\d)")

# An address written to pass an @ check (review s17 PII M2): "name at domain dot com", "name
# (at) domain [dot] org", "j.doe at example.org". A real dot has no space around it, so
# "stopped at 5. Then" is not one. A plain word, " at " and a host with real dots is a
# website named ("verified at ID.me", review s17 L-M4), not an address.
_AT_WORD = r"\s+at\s+"
_AT_BRACKETED = r"\s*[(\[{<]\s*at\s*[)\]}>]\s*"
_DOT_SPELLED = r"(?:\s+dot\s+|\s*[(\[{<]\s*dot\s*[)\]}>]\s*)"
# The same words joined to their neighbours where no space may go (a user agent's token, a
# path segment, a version; review s37 "pre-existing, low"), read as the spaced forms above:
# an at between underscores (`jane_at_example.com`) as `(at)`, since no prose writes one; an
# at between hyphens or plus signs (a slug's or a form's spaces: `jane-at-example-dot-com`)
# as " at ", by the same word rule (`look-at-example.com` names a site); a dot between any
# of them as " dot ". A dotted `.at.` is not read: it is a host's label (Austria's `at`).
_JOINED_AT_UNDERSCORED = re.compile(r"_at_", re.I)
_JOINED_AT = re.compile(r"[+-]at[+-]|_at[+-]|[+-]at_", re.I)
_JOINED_DOT = re.compile(r"[_+-]dot[_+-]", re.I)
# An at sign written as an HTML character reference (`&#64;`, `&#x40;`, `&commat;`)
AT_REFERENCE = re.compile(r"&(?:#0*64|#x0*40|commat);?", re.I)
_DOT = rf"(?:\.|{_DOT_SPELLED})"
_LOCAL = r"(?<![\w.+-])([\w.+-]+)"
_HOST = rf"[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[a-z]{{2,}}\b"
EMAIL_BRACKETED = re.compile(rf"{_LOCAL}{_AT_BRACKETED}{_HOST}", re.I)
EMAIL_WORD_AT = re.compile(rf"{_LOCAL}{_AT_WORD}({_HOST})", re.I)
DOT_SPELLED = re.compile(_DOT_SPELLED, re.I)
# A word: letters, perhaps hyphened ("verified", "co-signed"); a local part with a letter that
# is no word (canary.z9q, j_doe, jane+x) is an address's.
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


def plain(text: str) -> str:
    """What the text reads as: percent-decoded, then NFKC (compatibility forms folded), again
    until nothing changes (at most MAX_DECODES rounds): `%2540` is `%40` decoded once, and a
    fullwidth percent sign and digits (U+FF05, U+FF14, U+FF10) fold to `%40` (review s35
    outside L2: a page path holding `jane%2540example.com` was kept)."""
    if text.isascii() and "%" not in text:
        return text  # nothing to decode, and NFKC leaves every ASCII character as it is
    read = text
    for _ in range(MAX_DECODES):
        decoded = unicodedata.normalize("NFKC", unquote(read))
        if decoded == read:
            break
        read = decoded
    return read


def holds_email(text: str) -> bool:
    read = plain(text)
    if "@" in read or ("&" in read and AT_REFERENCE.search(read) is not None):
        return True
    if read.isascii() and "at" not in read.lower():
        return False  # every spelled-out form needs an "at" (in ASCII, no other case of it)
    read = _unjoined(read)
    return EMAIL_BRACKETED.search(read) is not None or _word_at_address(read)


def _unjoined(read: str) -> str:
    """`read` with an at or dot spelled between underscores, hyphens or plus signs written as
    its spaced form (`jane_at_example_dot_com` -> `jane (at) example dot com`)."""
    read = _JOINED_AT_UNDERSCORED.sub(" (at) ", read)
    return _JOINED_DOT.sub(" dot ", _JOINED_AT.sub(" at ", read))


def holds_number(text: str) -> bool:
    read = plain(text)
    # Taking the dates out only turns digits and separators into a space: text with no run
    # of seven digits has none after it either (the capture's evidence runs this per token).
    return (
        NUMBER_LIKE.search(read) is not None
        and NUMBER_LIKE.search(_without_dates(read)) is not None
    )


def holds_grouped_number(text: str) -> bool:
    """A phone number written in groups of two to four digits (GROUPED_NUMBER), a date at its
    start aside: for text judged in dot-separated parts, where holds_number sees none."""
    read = plain(text)
    if len(read) < _GROUPED_SHORTEST:
        return False  # most versions (537.36, 5.0): too short to hold one
    found = GROUPED_NUMBER.search(read)  # finditer's matches, without its iterator's cost
    while found is not None:
        digits = sum(ch.isdigit() for ch in found[0])
        dated = _GROUPED_DATE.match(found[0])
        if dated and _calendar_date(*dated.groups()):
            digits -= 8  # the date's digits are the stamp's, not a phone's
        if digits >= 10:
            return True
        found = GROUPED_NUMBER.search(read, found.end())
    return False


def holds_identifier(text: str) -> bool:
    """An email address or a phone (or card) number, however written."""
    return holds_email(text) or holds_number(text)


def names_any(text: str, values: Iterable[str], shortest: int = 4) -> bool:
    """Whether `text` holds one of `values` as a word of its own, case-insensitively (a
    customer id in a reason). Values shorter than `shortest` are left out: a customer id "42"
    in "42 attempts" is chance."""
    read = plain(text).casefold()
    return any(_holds_word(read, value.casefold()) for value in values if len(value) >= shortest)


def _holds_word(read: str, word: str) -> bool:
    r"""`word` in `read` with no word character or hyphen either side: the regex
    `(?<![\w-])word(?![\w-])` without compiling one per value (an import checks each row's
    values: a pattern each missed re's cache and cost a quarter of the import's time)."""
    start = read.find(word)
    while start != -1:
        end = start + len(word)
        if not (start and _word_char(read[start - 1])) and not (
            end < len(read) and _word_char(read[end])
        ):
            return True
        start = read.find(word, start + 1)
    return False


def _word_char(ch: str) -> bool:
    """re's `\\w` on str (Unicode alphanumeric, or the underscore), or a hyphen."""
    return ch.isalnum() or ch in "_-"


def _word_at_address(read: str) -> bool:
    """`local at host dot tld`, or `local at host.tld` when the local part is no word."""
    return any(
        DOT_SPELLED.search(found[2]) or _address_local(found[1])
        for found in EMAIL_WORD_AT.finditer(read)
    )


def _address_local(local: str) -> bool:
    core = local.strip(".+-")  # "Inc. at example.com": the sentence's dot, not the address's
    return any(ch.isalpha() for ch in core) and _WORD.fullmatch(core) is None


def _is_date(found: re.Match[str]) -> bool:
    """A real calendar date of a plausible year: year-month-day, or day/month or month/day with
    the year last."""
    y, _, m, d, a, b, year = found.groups()
    candidates = [(y, m, d)] if y else [(year, b, a), (year, a, b)]
    return any(_calendar_date(*parts) for parts in candidates)


def _calendar_date(year: str, month: str, day: str) -> bool:
    if int(year) not in _YEARS:
        return False
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _stands_alone(found: re.Match[str]) -> bool:
    before = found.string[: found.start()]
    return not _JOINED.search(before) or _VERSION.search(before) is not None


def _without_dates(text: str) -> str:
    return DATE_LIKE.sub(
        lambda found: " " if _stands_alone(found) and _is_date(found) else found[0], text
    )
