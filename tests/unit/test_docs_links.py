"""Every relative link in README.md and docs/*.md reaches a file, and its #anchor a heading
(GitHub's slug) or an explicit <a id>: a newcomer clicks them (review s29 newcomer found one
landing on the wrong section, review s29 diff one going nowhere). A section named in words,
`docs/operations.md, "What the evidence keeps"` or `README "Expiry"`, is a link too: it must name
a heading, a bold lead, a paragraph, list item or table cell that starts with those words (review
s36 newcomer: `README "Rotation"` and `README, "Opt-out"` named nothing there)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCED = re.compile(r"```.*?```", re.S)


def _slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped (not - or _), spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(doc: Path) -> set[str]:
    text = doc.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    found = set(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    for heading in re.findall(r"^#{1,6} (.+)$", FENCED.sub("", text), re.M):
        slug = _slug(heading)
        found.add(f"{slug}-{seen[slug]}" if slug in seen else slug)  # GitHub numbers repeats
        seen[slug] = seen.get(slug, 0) + 1
    return found


def _links(doc: Path) -> list[str]:
    text = FENCED.sub("", doc.read_text(encoding="utf-8"))
    return [link for link in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", link)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_relative_link_reaches_its_file_and_anchor(doc: Path) -> None:
    broken = []
    for link in _links(doc):
        path, _, anchor = link.partition("#")
        target = (doc.parent / path).resolve() if path else doc
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no such heading")
    assert not broken, broken


# `docs/x.md, "Section"`, `x.md "Section"`, `README, "Section"`, `[docs/x.md](…), "Section"`
SECTION_REF = re.compile(
    r'\b((?:\.\./)?(?:docs/)?[a-z][a-z\-]*\.md|README)(?:\]\([^)\s]*\))?,?\s+"([^"]{2,120})"'
)


def _words(text: str) -> str:
    """Lower case, markup (backticks, bold, an <a id> before the words) and trailing
    punctuation dropped, line breaks as spaces: a quoted name wraps like any text."""
    text = re.sub(r"<a [^>]*></a>|[`*]", "", text)
    return re.sub(r"\s+", " ", text).strip().rstrip(".…:,").strip().lower()


def _section_starts(doc: Path) -> list[str]:
    text = FENCED.sub("", doc.read_text(encoding="utf-8"))
    starts = re.findall(r"^#{1,6} (.+)$", text, re.M)  # headings
    starts += re.findall(r"\*\*(.+?)\*\*", text, re.S)  # bold leads
    starts += re.split(r"\n\s*\n", text)  # paragraphs
    starts += re.findall(r"^\s*(?:[-*] |\d+\. )(.+)$", text, re.M)  # list items
    starts += re.findall(r"\| ([^|\n]+)", text)  # table cells
    return [_words(start) for start in starts]


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_section_named_in_words_is_there(doc: Path) -> None:
    broken = []
    for name, section in SECTION_REF.findall(FENCED.sub("", doc.read_text(encoding="utf-8"))):
        if name == "README":
            target = ROOT / "README.md"
        else:
            target = ROOT / name if name.startswith("docs/") else (doc.parent / name).resolve()
        if not target.exists():
            broken.append(f'{name} "{section}": no such file')
        elif not any(start.startswith(_words(section)) for start in _section_starts(target)):
            broken.append(f'{name} "{section}": no such section')
    assert not broken, broken


def test_a_section_named_in_words_is_found_as_written() -> None:
    text = 'see docs/deploy.md, "The HMAC key\n  must never change"; README "Expiry"'
    refs = SECTION_REF.findall(text)
    assert refs == [("docs/deploy.md", "The HMAC key\n  must never change"), ("README", "Expiry")]
    deploy = _section_starts(ROOT / "docs" / "deploy.md")
    readme = _section_starts(ROOT / "README.md")
    assert any(start.startswith(_words(refs[0][1])) for start in deploy)
    assert any(start.startswith("expiry") for start in readme)
    assert not any(start.startswith("rotation") for start in readme)  # a word mid-paragraph


def test_the_slug_follows_githubs_rule() -> None:
    assert _slug("`GET /v1/requests/{request_id}` — status") == "get-v1requestsrequest_id--status"
