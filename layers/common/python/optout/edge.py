"""The edge's shared secret: with the edge on, only requests CloudFront forwarded are served.

`DisableExecuteApiEndpoint` closes the execute-api URL, but the API's custom domain (the
edge's origin) is public DNS: a caller who finds it could skip the WAF. CloudFront adds
`X-Origin-Verify: <secret>` to every origin request; the capture function refuses public
requests without it. No secret configured (edge off, local stack, tests): every request passes.
"""

import hmac

from aws_lambda_powertools.utilities import parameters

from optout.settings import Settings

HEADER = "x-origin-verify"
SECRET_CACHE_SECONDS = 300


class EdgeGuard:
    def __init__(self, secret: str | None) -> None:
        self._secret = secret.encode() if secret else None

    @classmethod
    def from_settings(cls, settings: Settings) -> "EdgeGuard":
        if not settings.edge_secret_name:
            return cls(None)
        secret = parameters.get_secret(settings.edge_secret_name, max_age=SECRET_CACHE_SECONDS)
        return cls(str(secret))

    def admits(self, header_value: str | None) -> bool:
        if self._secret is None:
            return True
        return header_value is not None and hmac.compare_digest(header_value.encode(), self._secret)
