"""The environment the handlers see in the local stack (they read it as on Lambda).

Template values first (Globals and each function's Environment, parameter defaults), then
what the local stack supplies instead of AWS: its table and queue names, its own URL for the
sandbox base URLs in systems.json, fake credentials, and a scaled-down retry back-off.
"""

from pathlib import Path
from typing import Any

from local.template_config import environment as template_environment

REGION = "us-east-1"
# What moto needs from any process that emulates AWS (the local stack, the bench).
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # moto does not route botocore's account-based endpoints (../shared/NOTES.md).
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon
    "LOCAL_MODE": "true",  # the documented development keys (hash, identity tokens) apply
}
# A retried job should finish in seconds locally, not minutes; the back-off shape is unchanged.
RETRY_BASE_SECONDS = "0.5"
RETRY_MAX_SECONDS = "3"


def stack_environment(
    template: dict[str, Any],
    *,
    url: str,
    table_name: str,
    systems_config: Path,
    queue_url_template: str,
    secrets_file: Path,
) -> dict[str, str]:
    env = template_environment(template)
    env.update(
        {
            **FAKE_AWS_ENV,
            "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines would drown the console
            "TABLE_NAME": table_name,
            "SYSTEMS_CONFIG": str(systems_config),
            "QUEUE_URL_TEMPLATE": queue_url_template,
            "LOCAL_STACK_URL": url,
            "LOCAL_SECRETS_FILE": str(secrets_file),
            "RETRY_BASE_SECONDS": RETRY_BASE_SECONDS,
            "RETRY_MAX_SECONDS": RETRY_MAX_SECONDS,
            # The demo site calls the API from the stack's own origin.
            "ALLOWED_ORIGINS": f"{url},{url.replace('127.0.0.1', 'localhost')}",
        }
    )
    return env
