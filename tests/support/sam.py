"""Translate template.yaml offline: expand Fn::ForEach, point code at S3, run aws-sam-translator.

aws-sam-translator handles the AWS::Serverless transform only; AWS::LanguageExtensions is done
by CloudFormation (or `sam build`). So the helper expands `Fn::ForEach::<Name>` blocks itself
(over a literal list or a CommaDelimitedList parameter's default), replacing the loop
identifier in logical ids, in Fn::Sub strings and in Ref, then drops that transform.
"""

import copy
import json
import re
from pathlib import Path
from typing import Any

from cfnlint.api import ManualArgs, Match, lint  # type: ignore[import-untyped]
from samtranslator.translator.transform import transform

from local.cfn_yaml import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"
FOR_EACH = "Fn::ForEach::"
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


def expand_for_each(template: dict[str, Any]) -> dict[str, Any]:
    """The template with every Fn::ForEach block expanded and LanguageExtensions removed."""
    expanded = copy.deepcopy(template)
    parameters = expanded.get("Parameters", {})
    mappings = expanded.get("Mappings", {})
    for section in ("Conditions", "Resources", "Outputs"):
        if section in expanded:
            expanded[section] = _find_in_map_defaults(
                _expand(expanded[section], parameters), mappings
            )
    transforms = expanded.get("Transform")
    if isinstance(transforms, list):
        remaining = [t for t in transforms if t != LANGUAGE_EXTENSIONS]
        expanded["Transform"] = remaining[0] if len(remaining) == 1 else remaining
    return expanded


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
    source = with_s3_uris(expand_for_each(template if template is not None else load()))
    translated: dict[str, Any] = transform(source, {}, DictPolicyLoader())
    return translated


def cfn_lint(template: dict[str, Any] | str) -> list[Match]:
    """cfn-lint's findings for a template given as data (JSON) or as YAML/JSON text."""
    text = template if isinstance(template, str) else json.dumps(template)
    findings: list[Match] = lint(text, config=ManualArgs(regions=["us-east-1"]))
    return findings


# -- expansion ---------------------------------------------------------------------------


def _expand(section: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in section.items():
        if key.startswith(FOR_EACH):
            identifier, collection, body = value
            for item in _collection(collection, parameters):
                result.update(_expand(_substitute(body, identifier, item), parameters))
        else:
            result[key] = value
    return result


def _collection(collection: Any, parameters: dict[str, Any]) -> list[str]:
    if isinstance(collection, list):
        return [str(item) for item in collection]
    if isinstance(collection, dict) and list(collection) == ["Ref"]:
        default = parameters[collection["Ref"]]["Default"]
        items = default.split(",") if isinstance(default, str) else default
        return [str(item).strip() for item in items if str(item).strip()]
    raise ValueError(f"unsupported Fn::ForEach collection: {collection!r}")


def _substitute(node: Any, identifier: str, value: str) -> Any:
    def text(s: str) -> str:
        alphanumeric = re.sub(r"[^A-Za-z0-9]", "", value)
        return s.replace("${" + identifier + "}", value).replace("&{" + identifier + "}",
                                                                 alphanumeric)  # fmt: skip

    if isinstance(node, list):
        return [_substitute(item, identifier, value) for item in node]
    if not isinstance(node, dict):
        return node
    if node == {"Ref": identifier}:
        return value
    out: dict[str, Any] = {}
    for key, child in node.items():
        if key == "Fn::Sub" and isinstance(child, str):
            out[key] = text(child)
        elif key == "Fn::Sub" and isinstance(child, list):
            out[key] = [text(child[0]), *(_substitute(c, identifier, value) for c in child[1:])]
        else:
            out[text(key)] = _substitute(child, identifier, value)
    return _literal_logical_ids(out)


def _literal_logical_ids(node: dict[str, Any]) -> Any:
    """A Sub left without variables is the literal (as CloudFormation resolves it), so
    `GetAtt [Sub "xDLQ", Arn]` and `Ref: Sub "xDLQ"` (LanguageExtensions only) name resources."""
    if list(node) == ["Fn::Sub"] and isinstance(node["Fn::Sub"], str):
        return node["Fn::Sub"] if "${" not in node["Fn::Sub"] else node
    return node


def _find_in_map_defaults(node: Any, mappings: dict[str, Any]) -> Any:
    """`FindInMap [map, key, key, {DefaultValue: x}]` (LanguageExtensions only), resolved."""
    if isinstance(node, list):
        return [_find_in_map_defaults(item, mappings) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {key: _find_in_map_defaults(child, mappings) for key, child in node.items()}
    args = resolved.get("Fn::FindInMap")
    if list(resolved) == ["Fn::FindInMap"] and isinstance(args, list) and len(args) == 4:
        *path, fallback = args
        if all(isinstance(part, str) for part in path) and isinstance(fallback, dict):
            name, top, second = path
            found = mappings.get(name, {}).get(top, {}).get(second)
            return found if found is not None else fallback["DefaultValue"]
    return resolved
