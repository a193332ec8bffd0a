"""A sandbox's throttle fault (status 429 in a fault plan) answered in its vendor's own shape.

Vendors throttle differently, and a connector must read each one (checked 2026-12-01,
docs/vendors.md): Salesforce answers 403 `REQUEST_LIMIT_EXCEEDED` with no wait; Meta HTTP 400
with a rate-limit code (here 80004, ads management) and the minutes to wait in
`X-Business-Use-Case-Usage`; Braze 429 with `X-RateLimit-Retry-After` and `X-RateLimit-Reset`.
Every other vendor, and Salesforce's OAuth endpoint (not an API call), answers 429 with
`Retry-After`. The plan's `retry_after` is the wait each shape carries (None: no wait).
"""

import json
import math
import re
import time
from collections.abc import Callable

from local.sandbox.wire import SandboxRequest, SandboxResponse, json_response

# A plan asking for an hour or more stands for Salesforce's daily allocation spent; a shorter
# one for its limit on concurrent long-running requests (the daily count below the allocation).
SALESFORCE_DAILY_FROM_SECONDS = 3600
SALESFORCE_ALLOCATION = 100_000
META_ACCOUNT = re.compile(r"/act_(\d+)/")
BRAZE_EXPORT_LIMIT = 250  # /users/export/ids, per minute


def generic(request: SandboxRequest, retry_after: int | None) -> SandboxResponse:
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return json_response(429, {"message": "sandbox fault 429"}, headers)


def salesforce(request: SandboxRequest, retry_after: int | None) -> SandboxResponse:
    if request.path.startswith("/services/oauth2/"):
        return generic(request, retry_after)
    daily = retry_after is not None and retry_after >= SALESFORCE_DAILY_FROM_SECONDS
    used = SALESFORCE_ALLOCATION if daily else 25
    message = (
        "TotalRequests Limit exceeded." if daily else "ConcurrentPerOrgLongTxn Limit exceeded."
    )
    return json_response(
        403,
        [{"message": message, "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
        {"sforce-limit-info": f"api-usage={used}/{SALESFORCE_ALLOCATION}"},
    )


def meta(request: SandboxRequest, retry_after: int | None) -> SandboxResponse:
    account = META_ACCOUNT.search(request.path)
    usage = {
        "type": "ads_management",
        "call_count": 100,
        "total_cputime": 20,
        "total_time": 20,
        # Meta counts whole minutes: a wait under one is 0, "not blocked"
        "estimated_time_to_regain_access": (retry_after or 0) // 60,
    }
    error = {
        "message": "(#80004) There have been too many calls to this ad-account. Wait a bit "
        "and try again.",
        "type": "OAuthException",
        "code": 80004,
        "error_subcode": 2446079,
        "fbtrace_id": "sandbox",
    }
    header = json.dumps({account[1] if account else "sandbox": [usage]})
    return json_response(400, {"error": error}, {"x-business-use-case-usage": header})


def braze(request: SandboxRequest, retry_after: int | None) -> SandboxResponse:
    headers = {"x-ratelimit-limit": str(BRAZE_EXPORT_LIMIT), "x-ratelimit-remaining": "0"}
    if retry_after is not None:
        headers["x-ratelimit-retry-after"] = str(retry_after)
        headers["x-ratelimit-reset"] = str(math.ceil(time.time()) + retry_after)
    return json_response(429, {"message": "API rate limit reached"}, headers)


THROTTLES: dict[str, Callable[[SandboxRequest, int | None], SandboxResponse]] = {
    "salesforce": salesforce,
    "meta": meta,
    "braze": braze,
}


def throttled(vendor: str, request: SandboxRequest, retry_after: int | None) -> SandboxResponse:
    return THROTTLES.get(vendor, generic)(request, retry_after)
