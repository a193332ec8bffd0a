"""Every relative link in README.md and docs/*.md reaches a file, and its #anchor a heading
(GitHub's slug) or an explicit <a id>: a newcomer clicks them (review s29 newcomer found one
landing on the wrong section, review s29 diff one going nowhere)."""

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


def test_the_slug_follows_githubs_rule() -> None:
    assert _slug("`GET /v1/requests/{request_id}` — status") == "get-v1requestsrequest_id--status"
