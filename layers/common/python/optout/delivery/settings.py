"""Worker configuration, validated once per cold start from the environment.

A plain dataclass, not a pydantic model, read the way `optout.settings.Settings` is (plain
forms directly, any other through pydantic's TypeAdapter, imported only then): a worker's cold
start imports no pydantic (docs/decisions.md, "The systems configuration without pydantic").
A bad value stops the function at its start (ValueError, naming the variable, never its
value), as the model's ValidationError (a ValueError too) did.
"""

from dataclasses import dataclass, fields

from optout.settings import Bounds, check_bounds, check_kinds, environment_values

SQS_MAX_VISIBILITY_SECONDS = 43_200  # 12 h: the most ChangeMessageVisibility accepts
SQS_MAX_DELAY_SECONDS = 900  # 15 min: the most SendMessage's DelaySeconds accepts
# Kept from the function's timeout for what follows the vendor calls: the jobs' writes, the
# visibility changes and the batch response (the worker's time budget; `make template`'s
# check that a system's pace fits a batch in the timeout).
END_MARGIN_SECONDS = 5.0
# A job's writes start only with this much of the function's time left: a throttled write
# gives up after about 3 s (aws.BUDGET: 3 tries, sleeps of at most 1 s then 2 s), and 1 s is
# for the visibility changes and the batch response. Past it, the rest of the batch's
# entries come back unwritten, so the invocation still answers (docs/reliability.md).
WRITES_STOP_SECONDS = 4.0


@dataclass(frozen=True)  # no slots: rebuilding the class for them costs a cold start ~1 ms
class WorkerSettings:
    table_name: str
    systems_config: str = "config/systems.json"
    # Production runs one worker per system and sets this; the local stack runs every system
    # in one process and leaves it empty, so the system always comes from the message.
    system_name: str | None = None
    max_receive_count: int = 8  # = the queue's redrive maxReceiveCount
    # = the event source mapping's MaximumBatchingWindowInSeconds: how long before the
    # invocation SQS may have delivered a message (its 12 h visibility counts from then).
    # The default is the most AWS allows, right whatever the mapping says.
    batch_window_seconds: float = 300
    retry_base_seconds: float = 30
    retry_max_seconds: float = 3600
    http_timeout_seconds: float = 10
    # Tries of one vendor call before its failure fails the attempt (connectors/http.py).
    http_attempts: int = 3
    # = the event source's ScalingConfig MaximumConcurrency (template.yaml, `SystemLimits`):
    # each invocation paces its vendor calls at rate_limit_per_second / this, so the system's
    # invocations together never pass the rate (connectors/pace.py). 1 where one invocation
    # runs at a time per system (the local stack, a CLI run).
    max_concurrency: int = 1
    # A status check of a submitted job holds it for this long (other checks wait); shorter
    # than the queue's visibility timeout, so a check redelivered after a crash can take it.
    lease_seconds: int = 60
    local_secrets_file: str | None = None
    # Submitted (asynchronous) jobs: the first status check after this long, then doubling up
    # to the cap (a delayed SQS message each time, never a sleeping Lambda); a job still not
    # final after confirm_give_up_seconds fails ("vendor did not confirm within ...").
    confirm_delay_seconds: float = 60
    # Multiplies a connector's own first check delay (`first_confirm_seconds`, Google's 30
    # minutes): 1 on AWS; the local stack shortens it as it does the other schedules.
    first_confirm_scale: float = 1
    confirm_max_delay_seconds: float = 900
    confirm_give_up_seconds: float = 7 * 24 * 3600

    def __post_init__(self) -> None:
        check_kinds(self, _KINDS, _OPTIONAL)
        check_bounds(self, _BOUNDS)

    @classmethod
    def from_env(cls) -> "WorkerSettings":
        return cls(**environment_values(cls, _KINDS))


# The model's ge/gt/le, as check_bounds reads them.
_BOUNDS: Bounds = {
    "max_receive_count": (1, False, None),
    "batch_window_seconds": (0, False, 300),
    "retry_base_seconds": (0, True, None),
    "retry_max_seconds": (0, True, SQS_MAX_VISIBILITY_SECONDS),
    "http_timeout_seconds": (0, True, None),
    "http_attempts": (1, False, 5),
    "max_concurrency": (1, False, 1000),  # Lambda's own bounds are 2..1000
    "lease_seconds": (1, False, None),
    "confirm_delay_seconds": (0, True, SQS_MAX_DELAY_SECONDS),
    "first_confirm_scale": (0, True, 1),
    "confirm_max_delay_seconds": (0, True, SQS_MAX_DELAY_SECONDS),
    "confirm_give_up_seconds": (0, True, None),
}
_INTS = frozenset({"max_receive_count", "http_attempts", "lease_seconds", "max_concurrency"})
_OPTIONAL = frozenset({"system_name", "local_secrets_file"})
_KINDS: dict[str, type] = {
    item.name: int if item.name in _INTS else float if item.name in _BOUNDS else str
    for item in fields(WorkerSettings)
}
