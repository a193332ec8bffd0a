"""Which moto handler serves a URL, found once per URL instead of on every call (local stack).

Profiled under a burst (docs/performance.md part E), moto's `BotocoreStubber.process_request`
was the largest single line of the stack's own CPU: for every AWS call it tries the URL
against moto's list of every service's URL patterns in order (DynamoDB is about the 60th of
178, SQS the 170th), then builds the matched backend's whole URL map (a property that
formats every path again) and tries those patterns too. Which handler serves a URL depends
on the URL and moto's static tables alone, so the search (the same two loops, in the same
order, without calling anything) runs once per URL and its answer is kept; everything else
of the call is moto's: the passthrough and allow-list settings are asked every call, the
backend is looked up, byte headers are decoded, the request is recorded, the handler called
and its HTTP errors turned into answers as moto does. A URL the search finds no handler for
takes moto's own path (its 404, or a real request).

This replaces `BotocoreStubber.process_request`, so it must be installed before the lock of
local/moto_guard.py wraps that method (install() refuses otherwise: the lock must stay
outermost). tests/unit/local/test_moto_routes.py compares answers and errors with moto's.
"""

import re
from typing import Any

from moto import backend_index, backends
from moto.core import DEFAULT_ACCOUNT_ID  # type: ignore[attr-defined]
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


def install() -> None:
    """Idempotent; before moto_guard.install() (its lock wraps what this installs)."""
    if _patches.installed():
        return
    if moto_guard.installed():
        raise RuntimeError("install moto_routes before moto_guard: the lock must be outermost")
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
    for header, value in request.headers.items():
        if isinstance(value, bytes):
            request.headers[header] = value.decode("utf-8")
    try:
        recorder._record_request(request)
        status, headers, body = handler(request, request.url, request.headers)
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
