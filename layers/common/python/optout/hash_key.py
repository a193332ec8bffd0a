"""The HMAC key for lookup keys: from Secrets Manager in production (optout/secrets.py).

Fails closed: outside local mode (OPTOUT_LOCAL_MODE=true, set only by the local stack and the
tests) a missing HASH_KEY_SECRET_NAME stops the function at cold start. Falling back to the
public development key would make every lookup key guessable by anyone who read the README.
"""

from optout.secrets import get_secret
from optout.settings import Settings

SECRET_CACHE_SECONDS = 300


class HashKeyNotConfigured(RuntimeError):
    """No HASH_KEY_SECRET_NAME outside local mode: refuse to start."""


def load_hash_key(settings: Settings) -> bytes:
    if settings.hash_key_secret_name:
        return get_secret(settings.hash_key_secret_name, SECRET_CACHE_SECONDS).encode()
    if settings.optout_local_mode:
        return settings.local_hash_key.encode()
    raise HashKeyNotConfigured(
        "HASH_KEY_SECRET_NAME is not set; the development key is allowed only with "
        "OPTOUT_LOCAL_MODE=true (local stack, tests)"
    )
