"""Review s24 stranger, finding E1: with the edge on, methods other than GET and POST reached the
capture function with no per-IP limit.

CloudFront forwards GET, HEAD, OPTIONS, PUT, PATCH, POST and DELETE to the API (it cannot forward
POST without the others); API Gateway sends every request no route matches to the `$default`
route, the capture function (a 404 in the API's envelope: `PUT /v1/opt-out`,
`HEAD /v1/consent/{id}` on the local stack), and answers an OPTIONS itself only when it is a CORS
preflight (with `Origin` and `Access-Control-Request-Method`). The WebACL's two rate rules were
scoped down to the methods GET and POST exactly, so one IP could send HEAD, PUT, PATCH or DELETE
requests up to the `$default` route's whole-API throttle (`GetThrottleRateLimit`, 500/s by
default), each a Lambda invocation of the capture function (whose reserved concurrency the
opt-outs share) and a CloudFront, WAF and API Gateway request billed. Now the second rule counts
every method but POST."""

from functools import cache
from typing import Any

import pytest

from tests.support import sam


@cache
def _resources(template: str) -> dict[str, Any]:
    resources: dict[str, Any] = sam.load_template(sam.ROOT / template)["Resources"]
    return resources


def _matches(statement: dict[str, Any], method: str) -> bool:
    """Whether a scope-down statement matches a request of this method (and nothing else)."""
    if "NotStatement" in statement:
        return not _matches(statement["NotStatement"]["Statement"], method)
    if "OrStatement" in statement:
        return any(_matches(s, method) for s in statement["OrStatement"]["Statements"])
    if "AndStatement" in statement:
        return all(_matches(s, method) for s in statement["AndStatement"]["Statements"])
    match = statement["ByteMatchStatement"]  # a KeyError: a statement this test cannot read
    assert match["FieldToMatch"] == {"Method": {}}, match
    assert match["PositionalConstraint"] == "EXACTLY", match
    assert match["TextTransformations"] == [{"Priority": 0, "Type": "NONE"}], match
    return bool(match["SearchString"] == method)


def _rate_limited(acl: dict[str, Any], method: str) -> bool:
    """Whether some per-IP rate rule counts requests of this method."""
    for rule in acl["Rules"]:
        rate = rule["Statement"].get("RateBasedStatement")
        if rate is None or "Block" not in rule["Action"]:
            continue
        assert rate["AggregateKeyType"] == "IP", rule["Name"]
        scope = rate.get("ScopeDownStatement")
        if scope is None or _matches(scope, method):
            return True
    return False


@pytest.mark.parametrize("template", ["template.yaml", "edge-waf.yaml"])
def test_every_method_the_edge_forwards_is_rate_limited_per_ip(template: str) -> None:
    main = _resources("template.yaml")
    behaviour = main["EdgeDistribution"]["Properties"]["DistributionConfig"]
    forwarded = set(behaviour["DefaultCacheBehavior"]["AllowedMethods"])
    acl = _resources(template)["EdgeWebAcl"]["Properties"]
    assert {m for m in forwarded if not _rate_limited(acl, m)} == set()
