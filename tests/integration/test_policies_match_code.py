"""Every action a function's role grants is one its own code can make, or one Lambda makes
with that role for the function's event source: derived from the code, not listed by hand.

The other direction, every call a handler makes is allowed, is checked at the end of every
moto test (tests/support/iam.py). This one finds a grant nothing uses: for each function, the
`optout` modules its `functions/<dir>/app.py` imports, directly or through each other (every
import statement, those inside functions too), and in them every call of a botocore operation
of the services the functions use (`optout.aws.SERVICES`), by its Python name
(`send_message_batch` is `sqs:SendMessage`, `transact.delete(...)` in a transaction is
`dynamodb:DeleteItem`). Its granularity is the action: which partition or queue a call
reaches is data, not code, so the partitions each action may reach are pinned by the
per-role tests (tests/integration/test_iam_calls.py, test_template.py) and by
docs/deploy.md's "Least privilege" table (test_least_privilege_doc.py). The modules a handler
imports are more than it runs, so this can miss a grant, never invent one.
"""

import ast
import copy
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from local import iam as local_iam
from optout.aws import SERVICES
from tests.support import sam

PACKAGE_ROOT = sam.ROOT / "layers" / "common" / "python"

# A transaction's items (optout/store/transact.py's helpers) are authorised as these actions.
TRANSACT_HELPERS = {
    "put": "dynamodb:PutItem",
    "update": "dynamodb:UpdateItem",
    "delete": "dynamodb:DeleteItem",
    "condition_check": "dynamodb:ConditionCheckItem",
}
# What Lambda does with the function's role, per event source (AWS Lambda developer guide:
# "Execution role permissions" of the DynamoDB and SQS event sources, and "Adding a
# destination" for an on-failure SQS destination; checked 2026-12-04), and for every function
# its logs and, with active tracing, its trace segments.
STREAM_READS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                "dynamodb:ListStreams"}  # fmt: skip
QUEUE_POLLS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
RUNTIME = {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments",
           "xray:PutTelemetryRecords"}  # fmt: skip


@cache
def _operations() -> dict[str, set[str]]:
    """A botocore method name -> the IAM actions it needs, for SERVICES."""
    session = botocore.session.get_session()
    found: dict[str, set[str]] = {}
    for service in SERVICES:
        for operation in session.get_service_model(service).operation_names:
            action = local_iam.ACTION_OF.get((service, operation), f"{service}:{operation}")
            found.setdefault(xform_name(operation), set()).add(action)
    return found


def _module_file(name: str) -> Path | None:
    path = PACKAGE_ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _imported(path: Path, package: str) -> set[str]:
    """The optout modules `path` imports (`package`: its own, for relative imports)."""
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if node.module else parent
            # `from optout.store import transact` imports a module; `from x import f` a name
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    found: set[str] = set()
    for name in names:
        parts = name.split(".")
        if parts[0] != "optout":
            continue
        found |= {".".join(parts[:n]) for n in range(1, len(parts) + 1)
                  if _module_file(".".join(parts[:n]))}  # fmt: skip
    return found


def _closure(app: Path) -> list[Path]:
    """`app` and every optout module it imports, directly or not."""
    seen: dict[str, Path] = {}
    todo: list[tuple[str, Path]] = [("", app)]
    while todo:
        name, path = todo.pop()
        if name in seen:
            continue
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for module in _imported(path, package) - seen.keys():
            file = _module_file(module)
            assert file is not None
            todo.append((module, file))
    return list(seen.values())


@cache
def code_actions(app: Path) -> frozenset[str]:
    """The IAM actions of every AWS call in `app` and the optout modules it imports."""
    actions: set[str] = set()
    for path in _closure(app):
        for node in ast.walk(_tree(path)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method, owner = node.func.attr, node.func.value
            actions |= _operations().get(method, set())
            if isinstance(owner, ast.Name) and owner.id == "transact":
                actions |= {TRANSACT_HELPERS[method]} if method in TRANSACT_HELPERS else set()
    return frozenset(actions)


def lambdas_actions(translated: dict[str, Any], function: str) -> dict[str, set[str]]:
    """Resource ARN (as the roles resolve it, local/iam.py) -> the actions Lambda takes on it
    with `function`'s role: its event source's reads, its on-failure destination's sends."""
    resources = translated["Resources"]
    found: dict[str, set[str]] = {}
    for mapping in resources.values():
        props = mapping["Properties"]
        if mapping["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        if props["FunctionName"] != {"Ref": function}:
            continue
        source = local_iam._resolve(props["EventSourceArn"], resources)
        if ":sqs:" in source:
            found.setdefault(source, set()).update(QUEUE_POLLS)
        else:  # a table's stream: the role's statement names the table's streams by pattern
            found.setdefault(source, set()).update(STREAM_READS)
        destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if destination is not None:
            arn = local_iam._resolve(destination, resources)
            found.setdefault(arn, set()).add("sqs:SendMessage")
    return found


def unused_grants(translated: dict[str, Any], roles: dict[str, list[dict[str, Any]]]) -> list[str]:
    """(function: action on resource) for each granted action neither its code nor Lambda
    for it makes."""
    source = sam.load()["Resources"]
    unused: list[str] = []
    for function, statements in sorted(roles.items()):
        uri = source[function]["Properties"]["CodeUri"]
        made = code_actions(sam.ROOT / uri / "app.py")
        by_lambda = lambdas_actions(translated, function)
        for statement in statements:
            for action in local_iam._as_list(statement["Action"]):
                for resource in statement["Resource"]:
                    lambdas = {a for arn, acts in by_lambda.items() for a in acts
                               if local_iam._resource_matches(resource, arn)}  # fmt: skip
                    if action not in made | lambdas | RUNTIME:
                        unused.append(f"{function}: {action} on {resource}")
    return unused


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", local_iam.REGION)
        return sam.effective(sam.translate(), {})


def test_every_granted_action_is_one_the_functions_code_or_its_event_source_makes(
    translated: dict[str, Any],
) -> None:
    assert unused_grants(translated, local_iam.load_roles()) == []


def test_the_code_read_finds_each_functions_calls() -> None:
    # A few calls each handler is known to make, through modules it imports indirectly
    calls = {d: code_actions(sam.ROOT / "functions" / d / "app.py")
             for d in ("capture_api", "resolver", "worker", "sweeper")}  # fmt: skip
    assert {"dynamodb:PutItem", "secretsmanager:GetSecretValue"} <= calls["capture_api"]
    # send_message_batch (optout/jobs_queue.py); scan (optout/store/scan.py, a backfill)
    assert {"sqs:SendMessage", "dynamodb:Scan"} <= calls["resolver"]
    assert {"sqs:ChangeMessageVisibility", "dynamodb:UpdateItem"} <= calls["worker"]
    # transact.delete: none of the sweeper's modules deletes inside a transaction
    assert "dynamodb:DeleteItem" in calls["sweeper"]
    assert "dynamodb:Scan" not in calls["capture_api"]


def test_a_grant_no_code_makes_is_named(translated: dict[str, Any]) -> None:
    # Given the capture role with a Scan of the table and the admin's with a purge of a DLQ
    # (actions none of their code makes), and Braze's worker with a send to its own queue
    template = copy.deepcopy(sam.load())
    resources = template["Resources"]

    def grant(role: str, action: str, resource: Any) -> None:
        policy = resources[role]["Properties"]["Policies"][0]["PolicyDocument"]
        policy["Statement"].append({"Effect": "Allow", "Action": [action], "Resource": resource})

    table = resources["CaptureFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    grant("CaptureFunctionRole", "dynamodb:Scan", table["Statement"][2]["Resource"])
    grant("AdminFunctionRole", "sqs:PurgeQueue", {"Fn::GetAtt": ["brazeDeadLetterQueue", "Arn"]})
    grant("brazeWorkerRole", "sqs:SendMessage", {"Fn::GetAtt": ["brazeJobsQueue", "Arn"]})
    roles = local_iam.load_roles(template)

    # Then each is named, and nothing else: Braze's worker never sends (a synchronous
    # connector), but its code could (Google Ads' and Segment's status checks): the check
    # reads code, not configuration, so that one stays with the template tests
    # (test_only_a_worker_whose_connector_checks_status_later_may_send_to_its_queue)
    unused = unused_grants(translated, roles)
    assert [u.split(" on ")[0] for u in unused] == [
        "AdminFunction: sqs:PurgeQueue",
        "CaptureFunction: dynamodb:Scan",
    ]


def test_lambdas_own_reads_count_only_on_the_function_s_event_source(
    translated: dict[str, Any],
) -> None:
    # The resolver's stream reads are Lambda's for its stream mapping; a worker's receive is
    # Lambda's on its own jobs queue only, not on another system's
    arn = f"arn:aws:{{}}:{local_iam.REGION}:{local_iam.ACCOUNT}:{{}}".format
    assert lambdas_actions(translated, "ResolverFunction") == {
        arn("dynamodb", "table/*-table/stream/*"): STREAM_READS,
        arn("sqs", "*-ResolverFailureQueue-*"): {"sqs:SendMessage"},
    }
    braze = lambdas_actions(translated, "brazeWorker")
    assert {arn.rsplit(":", 1)[-1] for arn, acts in braze.items() if acts == QUEUE_POLLS} == {
        "*-braze-jobs"
    }
