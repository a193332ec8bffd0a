"""The environment the handlers see in the local stack (they read it as on Lambda).

Template values first (Globals and each function's Environment, parameter defaults), then
what the local stack supplies instead of AWS: its table and queue names, its own URL for the
sandbox base URLs in local/systems.json (its presence is also what makes config load accept
plain-HTTP loopback URLs), fake credentials, and scaled-down retry back-off, status-check
delays and vendor-call timeout, so a flow that takes hours against real vendors completes
here within a minute.
"""

from pathlib import Path
from typing import Any

from local.template_config import environment as template_environment

REGION = "us-east-1"
# Every SigV4-signed call to the local front is this principal (signatures are not verified
# here), and it is on both of the admin function's allow-lists: the README's `curl
# --aws-sigv4` examples work locally. On AWS the lists name LinkerRole and OperatorRole.
LOCAL_IAM_CALLER = "arn:aws:iam::123456789012:user/local-signed-caller"
# What moto needs from any process that emulates AWS (the local stack, the bench), and the
# one local-mode signal (the documented development hash key applies only with it).
FAKE_AWS_ENV = {
    "OPTOUT_LOCAL_MODE": "true",
    "LINKER_PRINCIPALS": LOCAL_IAM_CALLER,
    "OPERATOR_PRINCIPALS": LOCAL_IAM_CALLER,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # moto does not route the account-based endpoints recent botocore picks for Streams.
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon
}
# The functions' service (the metrics' dimension; on AWS the stack's name).
LOCAL_SERVICE_NAME = "optout-bridge-local"
# A retried job should finish in seconds locally, not minutes; the back-off shape is unchanged.
RETRY_BASE_SECONDS = "0.5"
RETRY_MAX_SECONDS = "3"
# Submitted jobs (Google, Segment regulations): first status check after 1 s, then 2 s; a job
# the sandbox never confirms fails after 30 minutes instead of a week. The give-up counts from
# the submission, and a check message waits its turn in the queue like any other: at two
# minutes (as before) the 2,000 soak failed 8 Google Ads jobs whose checks were held up by
# the backlog, although the sandbox would have confirmed each at its next check.
CONFIRM_DELAY_SECONDS = "1"
CONFIRM_MAX_DELAY_SECONDS = "2"
# Google Ads' own first check (30 minutes after the removal, as Google asks) scaled to ~2 s,
# so a local run or the soak waits no real half hour for the sandbox's answer.
FIRST_CONFIRM_SCALE = "0.001"
CONFIRM_GIVE_UP_SECONDS = "1800"
# A vendor call times out after 1 s instead of 10 (a sandbox's "timeout" fault holds its
# answer longer), so a soak with timeouts among its faults does not wait minutes on them.
HTTP_TIMEOUT_SECONDS = "1"
# The local stack runs one invocation at a time per system (one queue poller, one worker
# instance each: local/stack.py), so each paces its calls at the system's whole
# rate_limit_per_second: the same bound as MaxConcurrency invocations at rate / MaxConcurrency.
MAX_CONCURRENCY = "1"
# The reconciliation sweep (every 10 s here) checks each request at 15 and 30 minutes old, and
# a job is "stuck" untouched for 20 minutes. The first check is the deployed one: this stack
# resolves a few events a second, so a burst of thousands keeps its stream busy for many
# minutes, and a 2-minute check (as before) re-drove ~1,100 events of the 2,000 soak that were
# only waiting their turn, which added to the backlog it mistook for loss. The job grace is
# likewise longer than a burst's queue backlog here.
SWEEP_CHECKPOINTS_SECONDS = "900,1800"
SWEEP_WINDOW_SECONDS = "12"
SWEEP_JOB_GRACE_SECONDS = "1200"
# The event sources' MaximumBatchingWindowInSeconds (template: stream 1 s, SQS 5 s) scaled the
# same way: an idle request waits a tenth as long at each hop, while a burst still fills whole
# batches (BatchSize, visibility timeouts, redrive and filters are the template's, unscaled).
BATCHING_WINDOW_SCALE = 0.1


def scaled_window(seconds: float) -> float:
    return seconds * BATCHING_WINDOW_SCALE


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
            # On AWS the stack's name (template: AWS::StackName, which has no default here).
            "POWERTOOLS_SERVICE_NAME": LOCAL_SERVICE_NAME,
            "TABLE_NAME": table_name,
            "SYSTEMS_CONFIG": str(systems_config),
            "QUEUE_URL_TEMPLATE": queue_url_template,
            "LOCAL_STACK_URL": url,
            "LOCAL_SECRETS_FILE": str(secrets_file),
            "RETRY_BASE_SECONDS": RETRY_BASE_SECONDS,
            "RETRY_MAX_SECONDS": RETRY_MAX_SECONDS,
            "CONFIRM_DELAY_SECONDS": CONFIRM_DELAY_SECONDS,
            "CONFIRM_MAX_DELAY_SECONDS": CONFIRM_MAX_DELAY_SECONDS,
            "FIRST_CONFIRM_SCALE": FIRST_CONFIRM_SCALE,
            "CONFIRM_GIVE_UP_SECONDS": CONFIRM_GIVE_UP_SECONDS,
            "HTTP_TIMEOUT_SECONDS": HTTP_TIMEOUT_SECONDS,
            "MAX_CONCURRENCY": MAX_CONCURRENCY,
            "SWEEP_CHECKPOINTS_SECONDS": SWEEP_CHECKPOINTS_SECONDS,
            "SWEEP_WINDOW_SECONDS": SWEEP_WINDOW_SECONDS,
            "SWEEP_JOB_GRACE_SECONDS": SWEEP_JOB_GRACE_SECONDS,
            # The demo site calls the API from the stack's own origin.
            "ALLOWED_ORIGINS": f"{url},{url.replace('127.0.0.1', 'localhost')}",
            # ... and serves the webform, which the API's pages link back to.
            "PRIVACY_PAGE_URL": f"{url}/privacy.html",
        }
    )
    return env
