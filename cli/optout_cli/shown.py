"""Text a stranger typed, as the operator's terminal shows it (review s36 terminal).

The capture routes refuse most C0 controls and, in the evidence an operator reads, the
bidirectional ones, and since 2026-12-04 a line feed, a carriage return, a tab and the C1
controls (U+0080-U+009F, where U+009B is a terminal's CSI) too, and U+2028/U+2029 since
session 37 (optout/http/raw_body.py); a record stored before keeps them, as received. Printed raw,
a line feed in an agent's name makes a line of its own that reads as the CLI's ("filed by
agent: ..."), and a C1 control may drive the terminal. `shown` writes each
such character as its escape (`\\n`, `\\x9b`, `\\u202e`) instead, so the line says what was
stored and nothing more; the record itself (`--json`, the exports) keeps the text whole.
"""

import unicodedata

# Unicode's Bidi_Control characters (as optout/http/raw_body.py refuses them where shown), and
# the line and paragraph separators, which some terminals and viewers break a line at.
_ALSO = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                  "\u2028\u2029")  # fmt: skip
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def shown(text: object) -> str:
    """`text` as one line of plain characters: controls (Unicode's Cc: C0, DEL, C1),
    bidirectional controls and line separators as their escapes."""
    value = str(text)
    if value.isascii() and value.isprintable():
        return value
    return "".join(_escape(c) if _hidden(c) else c for c in value)


def _hidden(char: str) -> bool:
    return char in _ALSO or unicodedata.category(char) == "Cc"


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    point = ord(char)
    return f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}"
