"""Stage 7 (`import`): `optout import` end to end at two sizes, and how its time per row grows.

What runs is what `optout import FILE.csv` runs: the CLI's `run_import`
(cli/optout_cli/csv_import.py: batches of up to 100 rows under 15,000 bytes, each signed with
SigV4, the state file and the side files written after each) posts every batch through an
httpx transport that builds the API Gateway event as the local stack does (local/apigw.py,
the routes of template.yaml) to the admin function's own handler, whose
`POST /v1/admin/imports` (optout/ops/importer.py) checks and keys the rows and writes them
to the table in moto: per batch one BatchGetItem of the request ids, then BatchWriteItems of
the events and of their reminders. Each size gets a fresh moto and table (no stream: nothing
reads it here, and moto would keep a copy of every item in it), so the larger run starts as the
smaller did. The CSV is seeded: 1 row in 100 bad in one of four ways, the rest with an email,
half with a phone, a quarter with a device id.

Per size: rows a second (wall, everything); the CPU time per row outside moto (this thread's
CPU less what it spent inside moto's answers and in the bench's call counter: the CLI, the
event conversion, the handler and the importer, which run on a laptop and in Lambda, where
DynamoDB's work is not ours); AWS calls and estimated write units per row (bench/counting.py).
The ratio is the larger size's CPU per row over the smaller's: an import whose work per row
does not grow with the rows before it reads about x1.0; a cost growing with the rows read so
far (a list scanned per row, a file rewritten per batch: review s19 SC5) reads about the
ratio of the sizes (x10). A constant cost per row, however large (f22fe68's regex compiled
per value was a quarter of the time), moves the CPU per row and the rows a second, not the
ratio: compare those between runs on the same machine, and the profile. Nothing here passes
or fails on a time; bench/guard.py judges the calls per row only.
"""

import csv
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.counting import CallCounter, Tally, emulator_cpu_seconds
from bench.progress import Progress
from bench.stats import ratio

STAGE = "import"
SIZES = (5_000, 50_000)
QUICK_SIZES = (1_000, 10_000)
HEADER = ("external_id", "received_at", "email", "phone", "device_id", "source", "jurisdiction")
BAD = (  # every 100th row, in turn: (column, value); each is rejected with that column named
    ("email", "not-an-email-{n}"),
    ("received_at", "yesterday-{n}"),
    ("source", "carrier-pigeon-{n}"),
    ("phone", "555-{n}-x"),
)
WARM_UP = 150  # rows imported before each measured run (two batches), not measured
LOCAL_URL = "http://127.0.0.1:3000"  # never dialled: the transport answers in-process


def run(sizes: tuple[int, ...], progress: Progress) -> dict[str, Any]:
    measured = []
    with tempfile.TemporaryDirectory(prefix="optout-bench-import-") as folder:
        for size in sizes:
            source = Path(folder) / f"history-{size}.csv"
            write_csv(source, size)
            measured.append(_measure(source, size, progress))
            progress.note(f"{size:,} rows: {measured[-1]['rows_per_second']:.0f} rows/s")
    return summarise(measured)


def summarise(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """The sizes' figures with the larger's time per row over the smaller's (first and last)."""
    small, large = sizes[0], sizes[-1]
    return {
        "sizes": sizes,
        "ratio": {
            "rows": f"{large['rows']} / {small['rows']}",
            "cpu_per_row": round(ratio(large["cpu_us_per_row"], small["cpu_us_per_row"]), 2),
            "wall_per_row": round(ratio(large["wall_us_per_row"], small["wall_us_per_row"]), 2),
        },
    }


def figures(rows: int, wall_s: float, cpu_s: float, moto_cpu_s: float, counter_cpu_s: float,
            tally: Tally, answered: dict[str, int]) -> dict[str, Any]:  # fmt: skip
    """One size's figures from its measured totals: this thread's CPU less moto's and the
    counter's is the import's own."""
    own = max(cpu_s - moto_cpu_s - counter_cpu_s, 0.0)
    return {
        "rows": rows,
        **answered,
        "wall_s": round(wall_s, 2),
        "rows_per_second": round(rows / wall_s, 1) if wall_s else float("nan"),
        "wall_us_per_row": round(wall_s / rows * 1e6, 1),
        "cpu_us_per_row": round(own / rows * 1e6, 1),
        "cpu_s": round(cpu_s, 2),
        "moto_cpu_s": round(moto_cpu_s, 2),
        "counter_cpu_s": round(counter_cpu_s, 2),
        "aws_calls_per_row": round(tally.total() / rows, 4),
        "calls": dict(sorted(tally.calls.items())),
        "wru_per_row": round(tally.wru / rows, 3),
        "rru_per_row": round(tally.rru / rows, 3),
    }


def write_csv(path: Path, rows: int, prefix: str = "legacy") -> int:
    """`rows` seeded opt-outs from 2026 (1 in 100 bad); returns how many are bad."""
    bad = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(rows):
            row = {"external_id": f"{prefix}-{n}",
                   "received_at": f"2026-{n % 10 + 1:02d}-{n % 28 + 1:02d}T10:00:00Z",
                   "email": f"person-{n}@example.com",
                   "phone": f"+1 415 555 {n % 10_000:04d}" if n % 2 else "",
                   "device_id": f"legacy-device-{n:08d}" if n % 4 == 1 else "",
                   "source": ("webform", "agent")[n % 2], "jurisdiction": "US-CA"}  # fmt: skip
            if n % 100 == 42:
                column, value = BAD[(n // 100) % len(BAD)]
                row[column] = value.format(n=n)
                bad += 1
            writer.writerow([row[c] for c in HEADER])
    return bad


class _TimedCounter(CallCounter):
    """The call counter, with the CPU its own hook spends kept apart (it is the bench's)."""

    cpu_s = 0.0

    def _after_call(self, model: Any, parsed: Any, context: dict[str, Any], **kw: Any) -> None:
        started = time.thread_time()
        try:
            super()._after_call(model, parsed, context, **kw)
        finally:
            self.cpu_s += time.thread_time() - started


def _measure(source: Path, size: int, progress: Progress) -> dict[str, Any]:
    from bench.pipeline import MotoPipeline  # noqa: PLC0415 - moto only when the stage runs

    counter = _TimedCounter()
    pipeline = MotoPipeline(counter, table_name=f"optout-bench-import-{size}")
    with _without_stream():
        pipeline.start(with_workers=False)
    try:
        api = _api(pipeline.admin)
        from optout_cli import csv_import  # noqa: PLC0415

        # One small import first: the first batch pays one-time costs (lazy imports, the
        # function's services, botocore's models) that would weigh more per row at the
        # smaller size. Its rows have their own ids; the table keeps them (WARM_UP items).
        warm_up = source.with_name(f"warm-up-{size}.csv")
        write_csv(warm_up, WARM_UP, prefix="warm-up")
        csv_import.run_import(api, warm_up, False, lambda _: None)
        api.posts, counter.cpu_s = 0, 0.0
        done = [0]

        def advanced(rows: int) -> None:
            done[0] += rows
            progress.tick(f"importing {size:,} rows", done[0], size)

        with counter.stage(STAGE) as tally:
            moto = emulator_cpu_seconds()
            wall, cpu = time.perf_counter(), time.thread_time()
            total = csv_import.count_rows(source)
            state = csv_import.run_import(api, source, False, advanced)
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            moto = emulator_cpu_seconds() - moto
        answered = {"stored": state.stored, "duplicates": state.duplicates,
                    "rejected": state.rejected_rows, "batches": api.posts}  # fmt: skip
        assert total == size and state.stored + state.rejected_rows == size, (total, answered)
        return figures(size, wall, cpu, moto, counter.cpu_s, tally, answered)
    finally:
        pipeline.stop()


@contextmanager
def _without_stream() -> Iterator[None]:
    """`create_table` without the template's stream specification, for this stage's tables."""
    import local.aws_resources as resources  # noqa: PLC0415
    from local.cfn_yaml import load_template  # noqa: PLC0415

    original: Callable[..., str] = resources.create_table

    def create_table(dynamodb: Any, name: str, template: Any = None) -> str:
        loaded = load_template(resources.TEMPLATE) if template is None else template
        for resource in loaded["Resources"].values():
            if isinstance(resource, dict) and resource.get("Type") == "AWS::DynamoDB::Table":
                resource["Properties"].pop("StreamSpecification", None)
        return original(dynamodb, name, loaded)

    resources.create_table = create_table
    try:
        yield
    finally:
        resources.create_table = original


def _api(admin: Any) -> Any:
    """The CLI's `Api` for the local URL, its calls answered by the admin function's handler."""
    import httpx  # noqa: PLC0415

    from bench.environment import invoke  # noqa: PLC0415
    from local.apigw import from_result, to_event  # noqa: PLC0415
    from local.aws_resources import TEMPLATE  # noqa: PLC0415
    from local.cfn_yaml import load_template  # noqa: PLC0415
    from local.http_types import Incoming  # noqa: PLC0415
    from local.template_config import http_routes  # noqa: PLC0415
    from optout_cli.client import Api  # noqa: PLC0415
    from optout_cli.target import LOCAL_CREDENTIALS, Target  # noqa: PLC0415

    routes = [r for r in http_routes(load_template(TEMPLATE)) if r.path.startswith("/v1/admin/")]

    class Admin(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            for route in routes:
                params = route.match(request.method, request.url.path)
                if params is not None:
                    break
            else:
                return httpx.Response(404, json={"error": {"code": "not_found"}})
            incoming = Incoming(request.method, request.url.raw_path.decode(),
                                list(request.headers.items()), request.read())  # fmt: skip
            answer = from_result(invoke(admin, to_event(incoming, route, params), "admin"))
            return httpx.Response(answer.status, headers=answer.headers, content=answer.body)

    class Counted(Api):
        posts = 0

        def post(self, *args: Any, **kwargs: Any) -> Any:
            self.posts += 1
            return super().post(*args, **kwargs)

    return Counted(Target(LOCAL_URL, "us-east-1", LOCAL_CREDENTIALS), transport=Admin())
