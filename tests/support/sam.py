"""template.yaml for the tests: translated offline and its Conditions evaluated
(local/sam_translate.py, which the local stack shares), and linted with cfn-lint."""

import json
from typing import Any

from cfnlint.api import ManualArgs, Match, lint  # type: ignore[import-untyped]

from local.cfn_yaml import load_template
from local.sam_translate import (
    MANAGED_POLICIES,
    ROOT,
    TEMPLATE,
    DictPolicyLoader,
    effective,
    load,
    translate,
    with_s3_uris,
)

__all__ = [
    "MANAGED_POLICIES",
    "ROOT",
    "TEMPLATE",
    "DictPolicyLoader",
    "cfn_lint",
    "effective",
    "load",
    "load_template",
    "translate",
    "with_s3_uris",
]


def cfn_lint(template: dict[str, Any] | str, *, serverless: bool = False) -> list[Match]:
    """cfn-lint's findings for a template given as data (JSON) or as YAML/JSON text;
    `serverless`: with AWS's serverless rules too (cfn-lint-serverless)."""
    text = template if isinstance(template, str) else json.dumps(template)
    rules = ["cfn_lint_serverless.rules"] if serverless else []
    config = ManualArgs(regions=["us-east-1"], append_rules=rules)
    findings: list[Match] = lint(text, config=config)
    return findings
