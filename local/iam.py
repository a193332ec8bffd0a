"""Would AWS allow it? An AWS call a function makes, checked against that function's role in
the translated template.yaml, as IAM evaluates the statements this project writes: Allow
statements, actions and resources with wildcards, `ForAllValues:StringLike` on
`dynamodb:LeadingKeys` statement by statement, and a Scan's `ForAllValues:StringEquals` on
`dynamodb:Attributes` with `StringEquals` on `dynamodb:Select` (a BatchWriteItem whose keys span two
statements' partitions is refused). An UpdateItem's `dynamodb:Attributes` are its key's names
and every top-level name its update and condition expressions use, with
`StringEqualsIfExists` on `dynamodb:ReturnValues` (absent: the statement holds). A
transaction is authorised item by item, as DynamoDB does; `SendMessageBatch` needs
`sqs:SendMessage`. A transaction's Update is checked as an UpdateItem, its names included
(AWS authorises each item of a transaction as the single-item action it stands for: "Using
IAM with DynamoDB transactions", checked 2026-12-04,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html).

Not modelled, so more lenient than AWS where a statement limits `dynamodb:Attributes`: the
names of a PutItem's item, of a GetItem's, BatchGetItem's or DeleteItem's projection or
condition, and of a transaction's Put, Delete and ConditionCheck items are not collected (the
set is empty, which ForAllValues lets through). No role limits attributes on those calls
today; the attribute-limited writes are UpdateItems (the count of an account's holds among
them: store/holds.py). `ReturnValuesOnConditionCheckFailure`
is not read as `dynamodb:ReturnValues`.

moto enforces no IAM. The local stack refuses, as AWS would, a call a handler makes that its
role does not allow (`install`), and the tests check every call their handlers make
(tests/support/iam.py), so a missing permission fails here and not on the first deploy.

Names differ from a stack's: the table named `TABLE_NAME` stands for the template's table, and
`${AWS::StackName}` matches any stack name (the local and test queue and secret prefixes).
"""

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local.cfn_yaml import load_template

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": "*",
    "AWS::URLSuffix": "amazonaws.com",
}
# botocore operation -> IAM action, where they differ.
ACTION_OF = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
}
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}

Policies = dict[str, list[dict[str, Any]]]

# The statements of the AWS managed policies SAM attaches to a role it makes for a function
# (https://docs.aws.amazon.com/lambda/latest/dg/permissions-managed-policies.html and the
# managed policy reference, checked 2026-11-30). Every function has its own role now and none
# attaches them; they are read here so that one coming back shows in every IAM check (a worker
# that may read any queue) instead of passing unseen.
_LOGS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
MANAGED_POLICIES: dict[str, list[str]] = {
    "service-role/AWSLambdaBasicExecutionRole": _LOGS,
    "service-role/AWSLambdaSQSQueueExecutionRole": [
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", *_LOGS
    ],
    "service-role/AWSLambdaDynamoDBExecutionRole": [
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
        "dynamodb:ListStreams", *_LOGS,
    ],
    "AWSXrayWriteOnlyAccess": [
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
        "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries",
    ],
}  # fmt: skip


@dataclass(frozen=True)
class Request:
    """One authorisation IAM makes: an action on a resource with the partition keys it touches."""

    function: str
    operation: str
    action: str
    resource: str
    leading_keys: tuple[str, ...] = ()
    # A Scan's or Query's `dynamodb:Attributes` (the ProjectionExpression's names; empty when
    # it projects none) and `dynamodb:Select` (None when the call sets none)
    attributes: tuple[str, ...] = ()
    select: str | None = None
    # An UpdateItem's `dynamodb:ReturnValues` (None when the call sets none)
    return_values: str | None = None

    def brief(self) -> str:
        """What AWS's AccessDenied says: the function, action and resource (no key values)."""
        return f"{self.function} may not {self.action} on {self.resource}"

    def __str__(self) -> str:
        keys = f" keys {sorted(set(self.leading_keys))}" if self.leading_keys else ""
        return f"{self.function}: {self.operation} needs {self.action} on {self.resource}{keys}"


# -- what a call asks of IAM -----------------------------------------------------------------


def requests_of(
    function: str, service: str, operation: str, params: dict[str, Any]
) -> list[Request]:
    def make(action: str, resource: str, keys: tuple[str, ...] = ()) -> Request:
        return Request(function, operation, action, resource, keys)

    if service == "dynamodb":
        return _dynamodb_requests(operation, params, make)
    action = ACTION_OF.get((service, operation), f"{service}:{operation}")
    if service == "sqs":
        name = str(params.get("QueueUrl", params.get("QueueName", ""))).rstrip("/").split("/")[-1]
        return [make(action, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]
    if service == "secretsmanager":
        secret = str(params.get("SecretId", ""))
        if not secret.startswith("arn:"):  # a name: the ARN ends in six random characters
            secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret}-AbCdEf"
        return [make(action, secret)]
    return [make(action, "*")]


def _dynamodb_requests(
    operation: str, params: dict[str, Any], make: Callable[..., Request]
) -> list[Request]:
    def pk_of(key: dict[str, Any]) -> str:
        return str(next(iter(key[_partition_key(None)].values())))

    if operation in ("TransactWriteItems", "TransactGetItems"):
        made = []
        for entry in params["TransactItems"]:
            ((kind, body),) = entry.items()
            key = body.get("Item", body.get("Key", {}))
            action = f"dynamodb:{TRANSACT_ACTIONS[kind]}"
            item = make(action, _table(body["TableName"]), (pk_of(key),))
            if kind == "Update":  # authorised as an UpdateItem, its names included (review37c)
                named = (*key, *_expression_names(body, "UpdateExpression", "ConditionExpression"))
                item = replace(item, attributes=tuple(dict.fromkeys(named)))
            made.append(item)
        return made
    if operation in ("BatchGetItem", "BatchWriteItem"):
        made = []
        for table, entries in params["RequestItems"].items():
            if operation == "BatchGetItem":
                keys = tuple(pk_of(k) for k in entries["Keys"])
            else:
                keys = tuple(
                    pk_of(
                        e["PutRequest"]["Item"] if "PutRequest" in e else e["DeleteRequest"]["Key"]
                    )
                    for e in entries
                )
            made.append(make(f"dynamodb:{operation}", _table(table), keys))
        return made
    resource = _table(params.get("TableName", ""))
    if params.get("IndexName"):
        resource += f"/index/{params['IndexName']}"
    key = params.get("Key", params.get("Item"))
    if key is not None and operation == "UpdateItem":
        update: Request = make("dynamodb:UpdateItem", resource, (pk_of(key),))
        named = (*key, *_expression_names(params, "UpdateExpression", "ConditionExpression"))
        return [replace(update, attributes=tuple(dict.fromkeys(named)),
                        return_values=params.get("ReturnValues"))]  # fmt: skip
    if key is not None:
        return [make(f"dynamodb:{operation}", resource, (pk_of(key),))]
    if operation == "Query":
        return [make("dynamodb:Query", resource, (_queried_partition(params),))]
    if operation == "Scan":
        scan: Request = make("dynamodb:Scan", resource)
        return [replace(scan, attributes=_projected(params), select=params.get("Select"))]
    return [make(f"dynamodb:{operation}", resource)]


def _projected(params: dict[str, Any]) -> tuple[str, ...]:
    """The attribute names a ProjectionExpression reads (`#n` placeholders resolved)."""
    names = params.get("ExpressionAttributeNames", {})
    found = (n.strip() for n in str(params.get("ProjectionExpression", "")).split(","))
    return tuple(names.get(n, n) for n in found if n)


_EXPRESSION_WORDS = frozenset(
    {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"}
)


def _expression_names(params: dict[str, Any], *fields: str) -> tuple[str, ...]:
    """The top-level attribute names the expressions in `fields` use (`#n` resolved): not a
    value (`:v`), a function (`name(`), a keyword, or a nested path's later part (`a.b`)."""
    names = params.get("ExpressionAttributeNames", {})
    found: list[str] = []
    for field in fields:
        text = re.sub(r":\w+", " ", str(params.get(field, "")))
        for match in re.finditer(r"(?<![\w.#])(#?[A-Za-z_]\w*)\b(?!\s*\()", text):
            word = match.group(1)
            if word.upper() not in _EXPRESSION_WORDS:
                found.append(names.get(word, word))
    return tuple(found)


def _table(name: str) -> str:
    """The table's ARN; the tests' table (TABLE_NAME) stands for the template's `<stack>-table`."""
    if name == os.environ.get("TABLE_NAME"):
        name = "stack-table"
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _queried_partition(params: dict[str, Any]) -> str:
    """The partition key value a Query's key condition names (what LeadingKeys is checked on)."""
    wanted = _partition_key(params.get("IndexName"))
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for name, placeholder in re.findall(
        r"(#?[\w]+)\s*=\s*(:[\w]+)", params["KeyConditionExpression"]
    ):
        if names.get(name, name) == wanted:
            return str(next(iter(values[placeholder].values())))
    raise ValueError(
        f"a Query whose key condition names no {wanted}: {params['KeyConditionExpression']}"
    )


@cache
def _template() -> dict[str, Any]:
    loaded: dict[str, Any] = load_template(TEMPLATE)
    return loaded


@cache
def _partition_key(index: str | None) -> str:
    table = next(
        r for r in _template()["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"
    )
    schemas = {None: table["Properties"]["KeySchema"]} | {
        g["IndexName"]: g["KeySchema"]
        for g in table["Properties"].get("GlobalSecondaryIndexes", [])
    }
    return str(next(k["AttributeName"] for k in schemas[index] if k["KeyType"] == "HASH"))


# -- what the roles allow --------------------------------------------------------------------


def load_roles(template: dict[str, Any] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each function's roles from template.yaml translated offline (about a second)."""
    from local.sam_translate import effective, translate  # noqa: PLC0415 - only when checking

    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # aws-sam-translator builds ARNs in a region
    try:
        return roles_of(effective(translate(template), {}))
    finally:
        if previous is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous


def roles_of(translated: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each function's Allow statements, resources resolved, from a translated template (its
    Conditions already evaluated): its role's inline policies and the AWS managed policies it
    attaches (MANAGED_POLICIES; any other refused, as this check could not read it)."""
    resources = translated["Resources"]
    found: dict[str, list[dict[str, Any]]] = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resources[resource["Properties"]["Role"]["Fn::GetAtt"][0]]
        statements = [
            s | {"Resource": [_resolve(r, resources) for r in _as_list(s["Resource"])]}
            for policy in role["Properties"].get("Policies", [])
            for s in policy["PolicyDocument"]["Statement"]
        ]
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            statements.append(_managed(_resolve(arn, resources)))
        found[name] = statements
    return found


def _managed(arn: str) -> dict[str, Any]:
    policy = arn.partition(":policy/")[2]
    if policy not in MANAGED_POLICIES:
        raise ValueError(f"a managed policy this check cannot read: {arn}")
    return {"Effect": "Allow", "Action": MANAGED_POLICIES[policy], "Resource": ["*"]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resolve(node: Any, resources: dict[str, Any]) -> str:
    if isinstance(node, str):
        return node
    ((intrinsic, argument),) = node.items()
    if intrinsic == "Fn::Sub":

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in PSEUDO:
                return PSEUDO[name]
            logical, _, attribute = name.partition(".")
            return _attribute(logical, attribute or "Ref", resources)

        return re.sub(r"\$\{([^}]+)\}", substitute, str(argument))
    if intrinsic == "Fn::GetAtt":
        return _attribute(argument[0], argument[1], resources)
    if intrinsic == "Ref":
        return PSEUDO.get(argument) or _attribute(argument, "Ref", resources)
    raise ValueError(f"a policy resource this check cannot resolve: {node}")


def _attribute(logical: str, attribute: str, resources: dict[str, Any]) -> str:
    resource = resources[logical]
    kind, props = resource["Type"], resource.get("Properties", {})
    if kind == "AWS::SQS::Queue" and attribute in ("Arn", "QueueName"):
        # Unnamed, CloudFormation names it <stack>-<logical id>-<random>.
        name = _resolve(props["QueueName"], resources) if "QueueName" in props else f"*-{logical}-*"
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
    if kind == "AWS::DynamoDB::Table" and attribute in ("Arn", "StreamArn"):
        table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/"
        table += _resolve(props["TableName"], resources)
        return table if attribute == "Arn" else f"{table}/stream/*"
    if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
        # Unnamed, CloudFormation names it <stack>-<logical id>-<random>; its Arn ends in ":*".
        named = "LogGroupName" in props
        name = _resolve(props["LogGroupName"], resources) if named else f"*-{logical}-*"
        return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
    if kind == "AWS::SecretsManager::Secret" and attribute in ("Ref", "Id"):
        name = _resolve(props["Name"], resources)
        # Ref is the secret's ARN: its name, "-" and six random characters.
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-??????"
    raise ValueError(f"a policy names {logical}.{attribute}, which this check cannot resolve")


def allows(statements: list[dict[str, Any]], request: Request) -> bool:
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        if not any(
            fnmatchcase(request.action.lower(), a.lower()) for a in _as_list(statement["Action"])
        ):
            continue
        if not any(
            _resource_matches(pattern, request.resource) for pattern in statement["Resource"]
        ):
            continue
        if _condition_holds(statement.get("Condition", {}), request):
            return True
    return False


def _resource_matches(pattern: str, resource: str) -> bool:
    # IAM's wildcards: * any run of characters, ? one; the stack's name may be any (PSEUDO).
    return fnmatchcase(resource, pattern.replace("[", "[[]"))


def _condition_holds(condition: dict[str, Any], request: Request) -> bool:
    for operator, keys in condition.items():
        for key, patterns in keys.items():
            if (operator, key) == ("ForAllValues:StringEquals", "dynamodb:Attributes"):
                # ForAllValues holds for an empty set too: a Scan projecting nothing reads
                # every attribute, which the statement's Select condition must refuse
                if not all(a in _as_list(patterns) for a in request.attributes):
                    return False
                continue
            if (operator, key) == ("StringEqualsIfExists", "dynamodb:ReturnValues"):
                if request.return_values not in (None, *_as_list(patterns)):
                    return False
                continue
            if (operator, key) == ("StringEquals", "dynamodb:Select"):
                if request.select is None or request.select not in _as_list(patterns):
                    return False
                continue
            if (operator, key) != ("ForAllValues:StringLike", "dynamodb:LeadingKeys"):
                raise ValueError(f"a condition this check does not evaluate: {operator} {key}")
            # ForAllValues holds for an empty set, as IAM evaluates it (a Scan names no key).
            if not all(
                any(fnmatchcase(k, p) for p in _as_list(patterns)) for k in request.leading_keys
            ):
                return False
    return True


def denied(requests: list[Request], policies: Policies) -> list[Request]:
    """The requests their function's role does not allow."""
    return [
        r for r in requests if r.function not in policies or not allows(policies[r.function], r)
    ]


# -- the local stack's guard -------------------------------------------------------------


def install(
    events: Any, policies: Policies, function_of: Callable[[], str | None]
) -> Callable[[], None]:
    """Refuse, as AWS would (AccessDenied), each call made while `function_of()` names a
    function whose role does not allow it. `events`: the session's event emitter (clients made
    after this see it). Returns the uninstaller."""

    def check(params: dict[str, Any], model: Any, **_: Any) -> None:
        function = function_of()
        if function is None:
            return  # the stack's own calls: pollers, the console
        service = model.service_model.service_name
        refused = denied(requests_of(function, service, model.name, params), policies)
        if refused:
            code = "AccessDeniedException" if service == "dynamodb" else "AccessDenied"
            message = f"not authorized by template.yaml: {refused[0].brief()}"
            raise ClientError({"Error": {"Code": code, "Message": message}}, model.name)

    unique = f"local-iam-{id(check)}"
    events.register("before-parameter-build", check, unique_id=unique)
    return lambda: events.unregister("before-parameter-build", unique_id=unique)
