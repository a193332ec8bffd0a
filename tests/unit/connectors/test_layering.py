"""Connectors know vendors, not the store: a connector module imports nothing of the table's
key layout or its access (optout.store), nor of the worker or the resolver that call it
(connectors are one module each behind one small interface; vendor35 moved The Trade Desk's
receipt words out of store/keys.py to optout/receipt_words.py)."""

import ast
from pathlib import Path

import pytest

import optout.connectors

CONNECTORS = sorted(Path(optout.connectors.__file__).parent.glob("*.py"))
OUTSIDE = ("optout.store", "optout.delivery", "optout.resolver", "optout.ops")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("path", CONNECTORS, ids=lambda p: p.name)
def test_a_connector_imports_nothing_of_the_store_or_its_callers(path: Path) -> None:
    wrong = sorted(n for n in imported(path)
                   if any(n == m or n.startswith(m + ".") for m in OUTSIDE))  # fmt: skip
    assert wrong == [], f"{path.name} imports {wrong}"
