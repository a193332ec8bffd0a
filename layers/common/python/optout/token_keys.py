"""The identity-token keys: from Secrets Manager in production (optout/secrets.py).

The secret is JSON: `{"kid": "k2", "key": "...", "previous": {"kid": "k1", "key": "..."}}`
(`previous` only during a rotation). The template generates the first one. Without a secret
name the documented development key applies, and only in local mode: a deployed capture
function with no key refuses to start rather than accept tokens anyone could sign.
"""

import json
from typing import Any

from optout.identity_token import TokenKeys
from optout.secrets import get_secret
from optout.settings import LOCAL_TOKEN_KEY, LOCAL_TOKEN_KID, Settings

SECRET_CACHE_SECONDS = 300


class MissingTokenKey(RuntimeError):
    """No IDENTITY_TOKEN_SECRET_NAME outside local mode: fail closed."""


def load_token_keys(settings: Settings) -> TokenKeys:
    if settings.identity_token_secret_name:
        raw = get_secret(settings.identity_token_secret_name, SECRET_CACHE_SECONDS)
        return parse_token_keys(json.loads(raw))
    if not settings.optout_local_mode:
        raise MissingTokenKey("IDENTITY_TOKEN_SECRET_NAME is not set: refusing to start")
    return TokenKeys(LOCAL_TOKEN_KID, {LOCAL_TOKEN_KID: LOCAL_TOKEN_KEY.encode()})


def parse_token_keys(secret: dict[str, Any]) -> TokenKeys:
    keys = {str(secret["kid"]): str(secret["key"]).encode()}
    previous = secret.get("previous")
    if isinstance(previous, dict):
        keys[str(previous["kid"])] = str(previous["key"]).encode()
    return TokenKeys(str(secret["kid"]), keys)
