"""template.yaml for the tests: translated offline and its Conditions evaluated
(local/sam_translate.py, which the local stack shares), and linted with cfn-lint."""

import json
from functools import cache
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
    findings = _lint_with_serverless_rules(text)
    return list(findings) if serverless else [f for f in findings if not is_serverless(f)]


def is_serverless(finding: Match) -> bool:
    """Whether the finding comes from AWS's serverless rules, not cfn-lint's own."""
    return type(finding.rule).__module__.startswith(SERVERLESS_RULES)


SERVERLESS_RULES = "cfn_lint_serverless.rules"


@cache
def _lint_with_serverless_rules(text: str) -> tuple[Match, ...]:
    """One cfn-lint run per template text and process, with the serverless rules appended:
    they only add findings (cfn-lint's own rules run as without them), so the plain lint is
    this run's findings less theirs (3-4 s a run alone; four runs per process before, two now)."""
    config = ManualArgs(regions=["us-east-1"], append_rules=[SERVERLESS_RULES])
    return tuple(lint(text, config=config))
