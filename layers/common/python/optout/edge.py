"""The edge's shared secret: with the edge on, only requests CloudFront forwarded are served.

`DisableExecuteApiEndpoint` closes the execute-api URL, but the API's custom domain (the
edge's origin) is public DNS: a caller who finds it could skip the WAF. CloudFront adds
`X-Origin-Verify: <secret>` to every origin request; the capture function refuses public
requests without it. No secret configured (edge off, local stack, tests): every request passes.
"""

import hmac

from optout.secrets import get_secret
from optout.settings import Settings

HEADER = "x-origin-verify"
SECRET_CACHE_SECONDS = 300  # a rotated value is picked up within this (docs/deploy.md)


class EdgeGuard:
    def __init__(self, secret_name: str | None) -> None:
        self._secret_name = secret_name

    @classmethod
    def from_settings(cls, settings: Settings) -> "EdgeGuard":
        guard = cls(settings.edge_secret_name)
        guard._secret()  # fail at cold start, not on the first request, if it cannot be read
        return guard

    def admits(self, header_value: str | None) -> bool:
        secret = self._secret()
        if secret is None:
            return True
        return header_value is not None and hmac.compare_digest(header_value.encode(), secret)

    def _secret(self) -> bytes | None:
        if not self._secret_name:
            return None
        return get_secret(self._secret_name, SECRET_CACHE_SECONDS).encode()
