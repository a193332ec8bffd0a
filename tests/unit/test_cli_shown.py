"""`optout status`'s one-line view of text a stranger typed (cli/optout_cli/shown.py)."""

import pytest

from optout_cli.shown import shown


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Acme\nfiled by agent: Fake", "Acme\\nfiled by agent: Fake"),  # a forged line
        ("Acme\rFake", "Acme\\rFake"),  # a carriage return overwriting the line
        ("a\tb", "a\\tb"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # ESC (refused at capture, all the same)
        ("\x1b]8;;http://e.example\x07x", "\\x1b]8;;http://e.example\\x07x"),  # an OSC 8 link
        ("back\x08\x7f", "back\\x08\\x7f"),
        ("\x9b2J\x85", "\\x9b2J\\x85"),  # C1: CSI, NEL
        ("Acme \u202eevil", "Acme \\u202eevil"),  # a bidi override
        ("a\u2028b\u2066c", "a\\u2028b\\u2066c"),
    ],
)
def test_controls_are_shown_as_their_escapes(text: str, line: str) -> None:
    assert shown(text) == line


@pytest.mark.parametrize(
    "text", ["Acme [Agents] (A-1)", "Agence Lumière", "وكيل", "👩‍💻 agents", "می‌خواهم", ""]
)
def test_printable_text_is_shown_as_it_is(text: str) -> None:
    # ZWJ in emoji and ZWNJ in Persian are text, not controls (as capture has it)
    assert shown(text) == text
