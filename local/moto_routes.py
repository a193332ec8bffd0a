"""Which moto handler serves a URL, found once per URL instead of on every call (local stack).

Profiled under a burst (docs/performance.md part E), moto's `BotocoreStubber.process_request`
was the largest single line of the stack's own CPU: for every AWS call it tries the URL
against moto's list of every service's URL patterns in order (DynamoDB is about the 60th of
178, SQS the 170th), then builds the matched backend's whole URL map (a property that
formats every path again) and tries those patterns too. Which handler serves a URL depends
on the URL and moto's static tables alone, so the search (the same two loops, in the same
order, without calling anything) runs once per URL and its answer is kept; everything else
of the call is moto's: the passthrough and allow-list settings are asked every call, the
backend is looked up, the request is made into moto's own `Request` (moto's
`normalize_request`, which decodes byte headers), recorded, the handler called with it and
its HTTP errors turned into answers as moto does. A URL the search finds no handler for
takes moto's own path (its 404, or a real request).

This copies the rest of moto's `process_request`, as of moto 5.2.5 (which makes its own
werkzeug `Request` from botocore's inside it and hands that to the handler; moto 5.2.4 began
handing handlers that request, and a copy of the 5.2.1 body failed every call with an
AttributeError). install() checks that moto's method still makes the calls this copy makes,
and refuses to install if not: after a moto upgrade, re-read both.

This replaces `BotocoreStubber.process_request`, so it must be installed before the lock of
local/moto_guard.py wraps that method (install() refuses otherwise: the lock must stay
outermost). tests/unit/local/test_moto_routes.py compares answers and errors with moto's.
"""

import re
from typing import Any

from moto import backend_index, backends
from moto.core import DEFAULT_ACCOUNT_ID, botocore_stubber  # type: ignore[attr-defined]
from moto.core.base_backend import BackendDict
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.config import passthrough_service, passthrough_url, service_whitelisted
from moto.core.exceptions import (  # type: ignore[attr-defined]
    HTTPException,
    ServiceNotWhitelisted,
)
from moto.core.utils import get_equivalent_url_in_aws_domain
from moto.moto_api import recorder

from local import moto_guard
from local.patching import Patches

_patches = Patches()
# clean URL -> (service, the backend URL pattern that matched, its handler), or None: no
# handler (moto's own path answers).
_routes: dict[str, tuple[str, str, Any] | None] = {}
# What moto's own process_request calls and this copy calls too: its names, as compiled.
MIRRORED = frozenset(
    {"get_equivalent_url_in_aws_domain", "passthrough_url", "backend_url_patterns",
     "passthrough_service", "service_whitelisted", "get_backend", "urls",
     "normalize_request", "_record_request", "raw_url", "get_headers", "get_body"}
)  # fmt: skip


def install() -> None:
    """Idempotent; before moto_guard.install() (its lock wraps what this installs)."""
    if _patches.installed():
        return
    if moto_guard.installed():
        raise RuntimeError("install moto_routes before moto_guard: the lock must be outermost")
    missing = MIRRORED - set(BotocoreStubber.process_request.__code__.co_names)
    if missing:
        raise RuntimeError(
            "moto's BotocoreStubber.process_request no longer calls "
            f"{', '.join(sorted(missing))}: local/moto_routes.py copies it, re-read both"
        )
    _patches.swap(BotocoreStubber, "process_request", _process_request)


def uninstall() -> None:
    _patches.restore()
    _routes.clear()


def installed() -> bool:
    return _patches.installed()


def _process_request(self: BotocoreStubber, request: Any) -> Any:
    parsed_url, _ = get_equivalent_url_in_aws_domain(request.url)
    clean_url = f"{parsed_url.scheme}://{parsed_url.netloc}{parsed_url.path}"
    if clean_url not in _routes:
        _routes[clean_url] = _search(clean_url)
    route = _routes[clean_url]
    if route is None or passthrough_url(clean_url):
        return _patches.original(BotocoreStubber, "process_request")(self, request)
    service, _, handler = route
    if passthrough_service(service):
        return None
    if not service_whitelisted(service):
        raise ServiceNotWhitelisted(service)
    _backend_of(service)  # as moto's path, which looks the backend up on every call
    # Through the module: moto's, or the local stack's quicker one (local/moto_speedups.py).
    normalized = botocore_stubber.normalize_request(request)  # type: ignore[attr-defined]
    try:
        recorder._record_request(normalized)
        status, headers, body = handler(normalized, normalized.raw_url, normalized.headers)
    except HTTPException as error:
        status = error.code
        headers = error.get_headers()
        body = error.get_body()
    return status, headers, body


def _backend_of(service: str) -> Any:
    """The backend moto's dispatch picks for `service` (its default account and region)."""
    backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
    if isinstance(backend_dict, BackendDict):
        regions = backend_dict[DEFAULT_ACCOUNT_ID]
        return regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
    return backend_dict["global"]


def _search(clean_url: str) -> tuple[str, str, Any] | None:
    """moto's two loops (services, then the service's URLs), calling nothing."""
    for service, pattern in backend_index.backend_url_patterns:
        if not pattern.match(clean_url):
            continue
        if passthrough_service(service) or not service_whitelisted(service):
            return None  # moto's path says so on every call
        for url, handler in _backend_of(service).urls.items():
            if re.compile(url).match(clean_url):
                return service, url, handler
    return None
