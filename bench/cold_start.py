"""Stage 3: import-and-init time of each function in a fresh interpreter, against a fresh
interpreter that only imports boto3. Median of N rounds after one warm-up round; each round
probes every target once, in an order rotated from round to round, so the baseline and each
function share the machine's state (load, caches, clock) instead of each getting its own
stretch of time. (Until 2026-11-30 the stage ran each target's N probes in one block: on the
quiet machine that measured capture at x1.78 while 12 interleaved rounds a minute later gave
x1.32, because what drifts between blocks is charged to whichever block it falls in.)

"Init" is what a cold container does before its first event: import app.py (with the layer
on the path, as Lambda mounts it at /opt/python) and build the per-container services that
the handlers otherwise build lazily on the first event (settings, boto3 clients, systems
config). No AWS call is made: clients are created, not used.

Importing a module on first use instead of at import moves its cost, it does not remove it:
so for capture the probe also times the container's **first request** after init (a banner
opt-out, the handler's whole path, its one PutItem answered by botocore's Stubber in place of
the network), and for the resolver and the worker their **first batch** (one banner opt-out's
stream record; its job message to the webhook worker, the vendor's answer a 200): their AWS
calls recorded over moto in this process first, then answered by botocore's Stubber in the
probe (bench/first_batch.py). Those figures sit beside the goal's, not in it.

Bytecode as on Lambda: the layer ships the optout package compiled (layers/common/Makefile,
`compileall --invalidation-mode checked-hash`) and /opt is read-only, so the probe compiles
the package the same way first and then writes nothing (PYTHONDONTWRITEBYTECODE=1): the
function's own app.py is compiled at every cold start, as Lambda's /var/task has no .pyc.
(Before, the probe inherited the caller's PYTHONDONTWRITEBYTECODE when set, and then timed
compiling the whole package at every run: what a layer without bytecode costs.)
"""

import compileall
import json
import os
import py_compile
import subprocess
import sys
from typing import Any

from bench.environment import AWS_ENV, LAYER_PYTHON, ROOT, SECRETS_FILE, SYSTEMS_CONFIG
from bench.progress import Progress
from bench.stats import median, ratio

# Each probe prints {"import_ms", "init_ms", "first_ms"} measured inside the fresh interpreter.
PROBE = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
{imports}
t1 = time.perf_counter()
{init}
t2, c2 = time.perf_counter(), time.process_time()
{first}
t3 = time.perf_counter()
print(json.dumps({{"import_ms": (t1 - t0) * 1000, "init_ms": (t2 - t1) * 1000,
                  "first_ms": (t3 - t2) * 1000, "cpu_ms": (c2 - c0) * 1000}}))
"""
# Capture's first request: the stub and the event are made before the clock starts (t2).
# cpu_ms: the process's CPU time for import + init, which other work on a shared machine
# moves far less than the wall time (reported beside it, never instead of it).
FIRST_REQUEST = """
from botocore.stub import Stubber
event, stub = json.loads({event!r}), Stubber(app.services().capture._table.client)
stub.add_response("put_item", {{}})
stub.activate()
class Context:
    function_name, memory_limit_in_mb, aws_request_id = "capture", 512, "cold-probe"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:capture"
t2 = time.perf_counter()
answer = app.handler(event, Context())
assert answer["statusCode"] == 202, answer
"""

LOAD = """
import importlib.util
spec = importlib.util.spec_from_file_location("app", "{path}")
app = importlib.util.module_from_spec(spec); sys.modules["app"] = app
spec.loader.exec_module(app)
"""

TARGETS: dict[str, tuple[str, str]] = {
    "boto3 only (baseline)": ("import boto3", "pass"),
    "capture": (LOAD.format(path=ROOT / "functions/capture_api/app.py"), "app.services()"),
    "resolver": (LOAD.format(path=ROOT / "functions/resolver/app.py"), "app.resolver()"),
    "worker": (LOAD.format(path=ROOT / "functions/worker/app.py"), "app.services()"),
}
BASELINE = "boto3 only (baseline)"
FIRST_BATCH = ("resolver", "worker")


def run(repeats: int, progress: Progress) -> dict[str, Any]:
    from bench import first_batch  # noqa: PLC0415

    compileall.compile_dir(
        LAYER_PYTHON / "optout",
        quiet=1,
        invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(AWS_ENV)
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONPATH=str(LAYER_PYTHON),
        TABLE_NAME="optout-bench-table",
        SYSTEMS_CONFIG=str(SYSTEMS_CONFIG),
        QUEUE_URL_TEMPLATE="https://sqs.us-east-1.amazonaws.com/123456789012/x-{queue_key}-jobs",
        LOCAL_SECRETS_FILE=str(SECRETS_FILE),
        LOCAL_STACK_URL="http://127.0.0.1:9",
        OPTOUT_LOCAL_MODE="true",
    )
    batches = first_batch.record(env)
    firsts = {
        "capture": _first_request(),
        **{name: _first_batch(name, batches[name]) for name in FIRST_BATCH},
    }
    codes = {
        name: PROBE.format(
            imports=imports.strip(), init=init, first=firsts.get(name, "pass").strip()
        )
        for name, (imports, init) in TARGETS.items()
    }
    probed = _interleaved(codes, env, repeats, progress)
    found: dict[str, Any] = {}
    for name, code in codes.items():
        runs = probed[name]
        total = [r["import_ms"] + r["init_ms"] for r in runs]
        found[name] = {
            "import_ms": round(median([r["import_ms"] for r in runs]), 1),
            "init_ms": round(median([r["init_ms"] for r in runs]), 1),
            "total_ms": round(median(total), 1),
            "cpu_ms": round(median([r["cpu_ms"] for r in runs]), 1),
        }
        if name == "capture":
            found[name]["first_request_ms"] = round(median([r["first_ms"] for r in runs]), 1)
        if name in FIRST_BATCH:
            found[name]["first_batch_ms"] = round(median([r["first_ms"] for r in runs]), 1)
        found[name]["heaviest_imports_ms"] = _heaviest_imports(code, env)
        progress.note(f"{name}: {found[name]['total_ms']} ms")
    base, cpu_base = found[BASELINE]["total_ms"], found[BASELINE]["cpu_ms"]
    for figures in found.values():
        figures["ratio_to_boto3"] = round(ratio(figures["total_ms"], base), 2)
        figures["cpu_ratio_to_boto3"] = round(ratio(figures["cpu_ms"], cpu_base), 2)
    return {"repeats": repeats, "functions": found}


def _interleaved(
    codes: dict[str, str], env: dict[str, str], repeats: int, progress: Progress
) -> dict[str, list[dict[str, float]]]:
    """One warm-up round, then `repeats` rounds of every target once, the order rotated by one
    each round (no target always follows the same one)."""
    names = list(codes)
    for name in names:
        _probe(codes[name], env)  # warms the page cache; not counted
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(_probe(codes[name], env))
        progress.note(f"round {round_ + 1} of {repeats}")
    return runs


def _first_request() -> str:
    from bench import workload  # noqa: PLC0415

    banner = workload.Request(
        "banner",
        "/v1/consent",
        {"device_id": "cold-probe-device-0001", "opt_out": {"sale": True, "share": True}},
        {},
    )
    return FIRST_REQUEST.format(event=json.dumps(workload.http_event(banner)))


def _first_batch(name: str, recorded: dict[str, Any]) -> str:
    """The replay's stubs are made before the clock starts (t2), as capture's are."""
    from bench import first_batch  # noqa: PLC0415

    prepare = first_batch.replay(name, recorded)
    return prepare + "\nt2 = time.perf_counter()\n" + first_batch.HANDLE


def _probe(code: str, env: dict[str, str]) -> dict[str, float]:
    answer = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if answer.returncode != 0:
        raise RuntimeError(f"cold-start probe failed: {answer.stderr[-2000:]}")
    last = answer.stdout.strip().splitlines()[-1]
    parsed: dict[str, float] = json.loads(last)
    return parsed


def _heaviest_imports(code: str, env: dict[str, str], top: int = 5) -> dict[str, float]:
    """Top-level packages by self import time (-X importtime), to say where a cold start goes."""
    answer = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        env=env, cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    by_package: dict[str, float] = {}
    for line in answer.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        package = parts[2].strip().split(".")[0]
        by_package[package] = by_package.get(package, 0.0) + int(parts[0]) / 1000
    heaviest = sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
    return {name: round(ms, 1) for name, ms in heaviest}
