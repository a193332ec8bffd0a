"""docs/deploy.md's "Least privilege" table says every table grant each function role has, no
more and no fewer: read against the roles of the translated template.yaml (local/iam.py), so a
grant added to the template without its row, or a row the template lost, fails here (review
s30 deploy F4: the table under-counted the sweeper's `WATCH` writes and six other grants)."""

import re
from collections import defaultdict
from typing import Any

import pytest

from local.iam import load_roles
from tests.support import sam

DEPLOY_MD = sam.ROOT / "docs" / "deploy.md"
SECTION = "## Least privilege on the table and the key"
ITEM_ACTIONS = (
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "ConditionCheckItem", "PartiQLSelect", "PartiQLInsert",
    "PartiQLUpdate", "PartiQLDelete",
)  # fmt: skip
ROLES = {
    "capture": "CaptureFunction",
    "admin": "AdminFunction",
    "resolver": "ResolverFunction",
    "watch": "WatchFunction",
    "sweeper": "SweeperFunction",
}
WORKER = "worker (each)"

Grant = tuple[str, str]  # (action, what it reaches: a partition, "index ByDay [partition]", "*")


def _rows() -> list[tuple[str, str, str]]:
    text = DEPLOY_MD.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] in (*ROLES, WORKER):
            rows.append((cells[0], cells[1], cells[2]))
    return rows


def _documented() -> dict[str, set[Grant]]:
    found: dict[str, set[Grant]] = defaultdict(set)
    for role, actions, reach in _rows():
        names = [a for a in re.findall(r"\b[A-Z][A-Za-z]+\b", actions) if a in ITEM_ACTIONS]
        where = reach.split(" (")[0]
        places = re.findall(r"`([^`]+)`", where)
        if "whole table" in where:
            targets = ["*"]
        elif "index `ByDay`" in where:
            rest = [p for p in places if p != "ByDay"]
            targets = [f"index ByDay {p}" for p in rest] or ["index ByDay"]
        else:
            targets = places
        found[role] |= {(a, t) for a in names for t in targets}
    return found


def _granted(statements: list[dict[str, Any]]) -> set[Grant]:
    found: set[Grant] = set()
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        names = [a.removeprefix("dynamodb:") for a in actions if a.startswith("dynamodb:")]
        names = [a for a in names if a in ITEM_ACTIONS]
        if not names:
            continue
        condition = statement.get("Condition", {})
        keys = condition.get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys", [])
        for resource in statement["Resource"]:
            index = "/index/" in resource
            prefix = f"index {resource.rsplit('/', 1)[1]}" if index else ""
            targets = [f"{prefix} {k}".strip() for k in keys] if keys else [prefix or "*"]
            found |= {(a, t) for a in names for t in targets}
    return found


@pytest.fixture(scope="module")
def roles() -> dict[str, list[dict[str, Any]]]:
    return load_roles()


def test_the_table_lists_every_table_grant_of_every_role(
    roles: dict[str, list[dict[str, Any]]],
) -> None:
    documented = _documented()
    wrong: dict[str, dict[str, list[Grant]]] = {}
    functions = [(role, function) for role, function in ROLES.items()]
    workers = [name for name in roles if name.endswith("Worker")]
    assert workers
    functions += [(WORKER, worker) for worker in workers]
    for role, function in functions:
        granted = _granted(roles[function])
        extra, missing = granted - documented[role], documented[role] - granted
        if extra or missing:
            wrong[function] = {"not in the table": sorted(extra), "not granted": sorted(missing)}
    assert wrong == {}


def test_an_attribute_limited_grant_names_its_attributes_in_its_row(
    roles: dict[str, list[dict[str, Any]]],
) -> None:
    rows = _rows()
    functions = {**ROLES, WORKER: next(n for n in roles if n.endswith("Worker"))}
    for role, function in functions.items():
        for statement in roles[function]:
            condition = statement.get("Condition", {})
            limited = condition.get("ForAllValues:StringEquals", {}).get("dynamodb:Attributes")
            if not limited:
                continue
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            names = {a.removeprefix("dynamodb:") for a in actions}
            # a worker has three such statements (REQ#, ID#, FAILED#), each with its own row
            candidates = [r for r in rows if r[0] == role and "dynamodb:Attributes" in r[1]
                          and names & set(re.findall(r"\b[A-Z][A-Za-z]+\b", r[1]))]  # fmt: skip
            assert candidates, (role, sorted(names))
            missing = min(
                ([a for a in limited if f"`{a}`" not in r[1]] for r in candidates), key=len
            )
            assert missing == [], (role, missing)


def test_every_operator_iam_list_for_the_table_names_the_keys_decrypt() -> None:
    # The table is encrypted with DataKey, whose policy delegates its use to IAM: DynamoDB
    # decrypts the table key on the caller's behalf, for writes as for reads (review s30
    # deploy F3). A list of DynamoDB actions for an operator's credentials without it would
    # be refused on AWS only.
    docs = dict.fromkeys([sam.ROOT / "README.md", *sorted((sam.ROOT / "docs").glob("*.md"))])
    lists = [
        line
        for path in docs
        for line in path.read_text(encoding="utf-8").splitlines()
        if "credentials allowed `dynamodb:" in line
    ]
    assert len(lists) >= 2, "the upgrade scripts' IAM lists are no longer found"
    assert [line[:120] for line in lists if "`kms:Decrypt` on the table's key" not in line] == []
