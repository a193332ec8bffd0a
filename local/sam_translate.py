"""Translate template.yaml offline (point code at S3, run aws-sam-translator), and evaluate
its Conditions for given parameter values, as CloudFormation would at deploy time. The local
stack reads the functions' roles from it (local/iam.py); the tests read everything else.

`effective(translated, {"EnableEdge": "true", ...})` keeps only the resources and outputs
whose Condition holds and resolves every Fn::If, so a test can ask what a deploy with those
parameters would create.
"""

import copy
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform

from local.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
LOCAL_URI_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")

# AWS managed policies SAM may name; answered here instead of by IAM (no network).
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for path, name in [
        ("service-role/", "AWSLambdaBasicExecutionRole"),
        ("service-role/", "AWSLambdaDynamoDBExecutionRole"),
        ("service-role/", "AWSLambdaSQSQueueExecutionRole"),
        ("service-role/", "AWSLambdaVPCAccessExecutionRole"),
        ("", "AWSXrayWriteOnlyAccess"),
        ("", "AWSXRayDaemonWriteAccess"),
        ("", "CloudWatchLambdaInsightsExecutionRolePolicy"),
    ]
}


class DictPolicyLoader:
    """Stands in for samtranslator's ManagedPolicyLoader, which would call IAM."""

    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def load() -> dict[str, Any]:
    return load_template(TEMPLATE)


def with_s3_uris(template: dict[str, Any]) -> dict[str, Any]:
    """Local CodeUri/ContentUri/DefinitionUri paths replaced by s3:// URIs (as `sam package`)."""
    packaged = copy.deepcopy(template)
    holders = [r.get("Properties", {}) for r in packaged.get("Resources", {}).values()]
    holders += list(packaged.get("Globals", {}).values())
    for properties in holders:
        for name in LOCAL_URI_PROPERTIES:
            value = properties.get(name)
            if isinstance(value, str) and not value.startswith("s3://"):
                properties[name] = f"s3://optout-bridge-artifacts/{value.strip('/')}.zip"
    return packaged


def translate(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """CloudFormation as aws-sam-translator produces it from template.yaml (offline)."""
    source = with_s3_uris(template if template is not None else load())
    translated: dict[str, Any] = transform(source, {}, DictPolicyLoader())
    return translated


# -- conditions ------------------------------------------------------------------------------


def effective(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """Resources and outputs a deploy with these parameters (others at their defaults) makes."""
    values = {
        name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()
    } | parameters
    conditions = template.get("Conditions", {})
    held: dict[str, bool] = {}

    def holds(name: str) -> bool:
        if name not in held:
            held[name] = bool(_evaluate(conditions[name], values, holds))
        return held[name]

    result = copy.deepcopy(template)
    for section in ("Resources", "Outputs"):
        kept = {
            key: _resolve_ifs(body, holds)
            for key, body in result.get(section, {}).items()
            if "Condition" not in body or holds(body["Condition"])
        }
        result[section] = kept
    return result


def _evaluate(node: Any, values: dict[str, str], holds: Any) -> Any:
    if isinstance(node, dict) and len(node) == 1:
        ((name, args),) = node.items()
        if name == "Ref":
            return values.get(args, f"<{args}>")  # pseudo parameters stay symbolic
        if name == "Condition":
            return holds(args)
        if name == "Fn::Equals":
            left, right = (_evaluate(a, values, holds) for a in args)
            return str(left) == str(right)
        if name == "Fn::Not":
            return not _evaluate(args[0], values, holds)
        if name == "Fn::And":
            return all(_evaluate(a, values, holds) for a in args)
        if name == "Fn::Or":
            return any(_evaluate(a, values, holds) for a in args)
    return node


def _resolve_ifs(node: Any, holds: Any) -> Any:
    if isinstance(node, list):
        return [r for r in (_resolve_ifs(n, holds) for n in node) if r != _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if list(node) == ["Fn::If"]:
        name, when_true, when_false = node["Fn::If"]
        return _resolve_ifs(when_true if holds(name) else when_false, holds)
    resolved = {key: _resolve_ifs(child, holds) for key, child in node.items()}
    return {key: child for key, child in resolved.items() if child != _NO_VALUE}


_NO_VALUE = {"Ref": "AWS::NoValue"}
