"""The HMAC key for lookup keys: Secrets Manager through Powertools Parameters in production."""

from aws_lambda_powertools.utilities import parameters

from optout.settings import Settings

SECRET_CACHE_SECONDS = 300


def load_hash_key(settings: Settings) -> bytes:
    if settings.hash_key_secret_name:
        secret = parameters.get_secret(settings.hash_key_secret_name, max_age=SECRET_CACHE_SECONDS)
        return str(secret).encode()
    return settings.local_hash_key.encode()
