"""`optout`: status, lookup, report, import, replay, backfill, holds, deny, retire, export and
verify-export for operators.

Every command talks to the stack's operator routes (IAM, SigV4): the local stack with
`--base-url http://127.0.0.1:3000`, a deployed one with `--stack-name NAME --region R`. Bad input,
an unknown request, a wrong stack or missing credentials end with one line on stderr and a
non-zero exit, never a traceback (`OPTOUT_DEBUG=1` shows it).
"""

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.exceptions import TyperException

from optout_cli import csv_import, export_out
from optout_cli.client import Api
from optout_cli.errors import CliError
from optout_cli.report import csv_out, html, markdown
from optout_cli.shown import shown
from optout_cli.target import resolve

app = typer.Typer(
    name="optout",
    help="Operate optout-bridge: request status, lookups, §7102 reports, imports, replays, "
    "backfills, held links, denials, retiring a system, audit exports and their verification.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # docstrings are wrapped at 96 columns: markdown joins a paragraph's lines in the help
    rich_markup_mode="markdown",
)
holds_app = typer.Typer(
    help="Links held at the cluster cap or as a second account on one browser: list, "
    "release or reject them."
)
app.add_typer(holds_app, name="holds")
out = Console()
err = Console(stderr=True)
REQUEST_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# A backfill step's (or a rederived) job's request id, as job ids and logs name it
JOB_REQUEST_ID = re.compile(REQUEST_ID.pattern.removesuffix("$") + r"~[0-9a-f]{12}$")
HOLD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9]{3}$")
SYSTEM = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
REPLAY_WAIT_SECONDS = 60.0
# Events an operator makes: no consumer and no deadline (`optout status` says who, and what)
OPERATOR_EVENTS = ("replay", "redrive", "retire", "backfill", "hold_release", "hold_reject")


class ReportFormat(StrEnum):
    md = "md"
    csv = "csv"
    html = "html"


class ExportFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class DenialCode(StrEnum):
    suspected_fraud = "suspected_fraud"
    not_a_consumer = "not_a_consumer"
    outside_jurisdiction = "outside_jurisdiction"
    other = "other"


# -- where to ------------------------------------------------------------------------------


@dataclass
class Where:
    """The global options, and (for tests) the HTTP transport to use instead of the network."""

    url: str | None = None
    stack: str | None = None
    region: str | None = None
    profile: str | None = None
    transport: httpx.BaseTransport | None = None


@app.callback()
def target(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--base-url", "--url", help="The local stack, "
                                            "e.g. http://127.0.0.1:3000",
                                            envvar="OPTOUT_URL")] = None,
    stack: Annotated[str | None, typer.Option("--stack-name", "--stack", help="A deployed "
                                              "stack's name (its IamApiUrl output)",
                                              envvar="OPTOUT_STACK")] = None,
    region: Annotated[str | None, typer.Option(help="The stack's AWS region",
                                               envvar="AWS_REGION")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile to sign with",
                                                envvar="AWS_PROFILE")] = None,
) -> None:  # fmt: skip
    """Where the stack is: --base-url for the local stack, --stack-name NAME --region R on
    AWS (calls signed with SigV4 using your AWS credentials)."""
    where = ctx.obj if isinstance(ctx.obj, Where) else Where()
    where.url, where.stack, where.region, where.profile = url, stack, region, profile
    ctx.obj = where


def api(ctx: typer.Context) -> Api:
    where: Where = ctx.obj
    return Api(resolve(where.url, where.stack, where.region, where.profile), where.transport)


# -- status and lookup -----------------------------------------------------------------------


@app.command()
def status(
    ctx: typer.Context,
    request_id: Annotated[
        str, typer.Argument(help="The request id (a UUID), or a job's `<UUID>~<hex>`")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full record as JSON")] = False,
) -> None:
    """A request's status and, per system, the receipt that satisfies it. A backfill's status
    lists its jobs; a job's request id (`<id>~<hex>`, before the `:system` of a job id) shows
    them."""
    request_id = request_id.lower().split(":", 1)[0]  # a job id's `:system` left out
    if not JOB_REQUEST_ID.match(request_id):
        _check(REQUEST_ID, request_id, "REQUEST_ID must be a request id (a UUID, or <UUID>~<hex>)")
    record = api(ctx).get(f"/v1/admin/requests/{request_id}")
    if as_json:
        out.print_json(json.dumps(record), ensure_ascii=True)  # no control reaches the terminal
        return
    if record.get("made_by"):  # jobs under a request id of their own: no event, no deadline
        out.print(f"[bold]{record['request_id']}[/] [bold]{record['status']}[/]  jobs made by "
                  f"{record['made_by']} (`optout status {record['made_by']}`)",
                  soft_wrap=True)  # fmt: skip
        _jobs(record)
        return
    _header(record)
    evidence = (record.get("event") or {}).get("evidence") or {}
    agent = evidence.get("agent")
    if agent:  # who filed for the consumer: counsel may ask that agent for the permission
        known_as = f" ({shown(agent['agent_id'])})" if agent.get("agent_id") else ""
        out.print(f"filed by agent: {shown(agent['name'])}{known_as}", soft_wrap=True, markup=False)
    token = evidence.get("identity_token") or {}
    if token.get("left_out"):  # a stale token the webform set aside: counsel may ask why
        out.print(
            f"identity token left out: {shown(token['left_out'])}", soft_wrap=True, markup=False
        )
    if record.get("denial"):
        denial = record["denial"]
        out.print(f"[bold red]denied[/] {denial['denied_at']} by {escape(denial['denied_by'])}: "
                  f"{denial['reason_code']} - {escape(denial['reason'])}",
                  soft_wrap=True)  # fmt: skip
        if denial.get("systems_under_way"):  # made before the denial, or while it landed
            out.print("jobs already under way when denied (they may reach the vendor): "
                      + ", ".join(denial["systems_under_way"]),
                      soft_wrap=True, markup=False)  # fmt: skip
    # One block per system, not a table: at 80 columns a table cut receipt times and vendor
    # references, which are the evidence.
    for system in record.get("systems", []):
        _system_block(system)
    _jobs(record)
    # Not counted above: no job, no proof (a recent no_record there: what that job recorded).
    for quiet in record.get("not_asked", []):
        out.print(f"[bold]{quiet['system']}[/]  {escape(quiet['note'])}", soft_wrap=True)
    # Done, but a type the request named was refused there or never sent (§7102: in part)
    for part in record.get("not_taken", []):
        types = ", ".join(part["identifier_types"])
        out.print(f"[bold]{part['system']}[/]  not taken: {types} (the request is complied "
                  "with in part)", soft_wrap=True)  # fmt: skip
    _scope(record)


def _scope(record: dict[str, Any]) -> None:
    """Every other system configured when the request was resolved, with why it got no job,
    and the fingerprint of the systems file then in force (docs/operations.md, "A request's
    record"); "not recorded" for a request resolved before they were kept (2026-12-03)."""
    resolution = record.get("resolution") or {}
    skipped = record.get("systems_skipped")
    if skipped is None:
        by_operator = (record.get("event") or {}).get("event_type") in OPERATOR_EVENTS
        if resolution and not resolution.get("denied") and not by_operator:
            out.print("systems not planned: not recorded (resolved before 2026-12-03)",
                      soft_wrap=True)  # fmt: skip
        return
    for system in skipped:
        out.print(f"[bold]{system['system']}[/]  {escape(system['note'])}", soft_wrap=True)
    config = record.get("systems_config") or "not recorded"
    out.print(f"systems config at resolution: {config}", soft_wrap=True, markup=False)


def _jobs(record: dict[str, Any]) -> None:
    """A backfill step's jobs (under a request id of their own): what each sent, its receipt."""
    for job in record.get("jobs", []):
        receipt = job.get("receipt") or {}
        when = f"  {job['completed_at']}" if job.get("completed_at") else ""
        retired = job.get("retired")  # left open by its system's retirement: no longer owed
        state = f"retired ({job.get('status')})" if retired else str(job.get("status"))
        out.print(f"[bold]{job['system']}[/]  {state}{_history(job)}{when}",
                  soft_wrap=True)  # fmt: skip
        out.print(f"  job {job['job_id']}", soft_wrap=True, markup=False)
        if retired:
            _print_retirement(retired)
        _receipt_line(receipt)
        _lost_answers(job, "  ")


def _header(record: dict[str, Any]) -> None:
    """The request's first lines, each whole (`| grep deadline` finds it): its status,
    received and deadline, and its systems' count; an operator's event has no deadline and no
    consumer, so it says who acted and what it did instead."""
    completed = f", completed {record['completed_at']}" if record.get("completed_at") else ""
    event = record.get("event") or {}
    by_operator = event.get("event_type") in OPERATOR_EVENTS
    if by_operator:
        out.print(f"[bold]{record['request_id']}[/] [bold]{record['status']}[/]  "
                  f"{event['event_type']} at {record['received_at']}{completed}",
                  soft_wrap=True)  # fmt: skip
        _operator_action(event, record.get("resolution") or {})
    else:
        out.print(f"[bold]{record['request_id']}[/] [bold]{record['status']}[/]  received "
                  f"{record['received_at']}, deadline {record['deadline']}{completed}",
                  soft_wrap=True)  # fmt: skip
    # A backfill's jobs count ("0 of 0" not), and those its system's retirement left open; a
    # request's retired systems by name, with their jobs' own status: a refusal before the
    # retirement shows on a request that reads completed (review s30 operator F3)
    named = record.get("retired") or []
    count = int(record.get("systems_retired") or len(named))
    retired = f", {count} retired" if count else ""
    states = {s["system"]: s.get("status") for s in record.get("systems", [])}
    if named:
        retired += ": " + ", ".join(f"{name} ({states[name]})" if states.get(name) else name
                                    for name in named)  # fmt: skip
    if record["systems_total"] or retired or not by_operator:
        out.print(f"systems: {record['systems_done']} of {record['systems_total']} done, "
                  f"{record['systems_failed']} failed{retired}", soft_wrap=True)  # fmt: skip


def _system_block(system: dict[str, Any]) -> None:
    """One system's lines: its state, receipt, what was sent, and what satisfies it."""
    receipt = system.get("receipt") or {}
    own = system.get("status")
    state = str(system.get("satisfied") or own)
    # "no_record" counts as done (a receipt), but must not read as an applied opt-out
    state += (f" ({own})" if own and own != state else "") + _history(system)
    when = f"  {system['completed_at']}" if system.get("completed_at") else ""
    out.print(f"[bold]{system['system']}[/]  {state}{when}", soft_wrap=True)
    _receipt_line(receipt)
    _lost_answers(system, "  ")
    sent = _what_was_sent(system, receipt)
    if sent:
        out.print(f"  {sent}", soft_wrap=True, markup=False)
    if receipt.get("note"):
        out.print(f"  note: {receipt['note']}", soft_wrap=True, markup=False)
    for further in system.get("split_jobs", []):
        # the request's further own job: another person it named, told their own purposes
        out.print(f"  and its job {further.get('job_id')} ({further.get('status')}"
                  f"{_history(further)}, {further.get('completed_at') or '-'})",
                  soft_wrap=True)  # fmt: skip
        also = _what_was_sent(further, further.get("receipt") or {})
        if also:
            out.print(f"    {also}", soft_wrap=True, markup=False)
    for c in system.get("satisfied_by", []):
        # cited while in flight, then ended as no proof for this request: it satisfies
        # nothing (the request gets a job of its own)
        said = "cited, no proof:" if c.get("no_proof") else "satisfied by"
        out.print(f"  {said} {c['request_id']} ({c.get('status')}{_history(c)}, "
                  f"{c.get('completed_at') or '-'})", soft_wrap=True)  # fmt: skip
        cited = _what_was_sent(c, c.get("receipt") or {})
        if cited:  # what that job sent, as for the request's own (review s16 drill F5)
            out.print(f"    {cited}", soft_wrap=True, markup=False)
        _lost_answers(c, "    ")
    if system.get("proof") == "both":
        out.print("  and its own job", soft_wrap=True)
    for later in system.get("delivered_later", []):
        # a failed job whose every flight later jobs delivered (the deadline watch recorded it)
        by = ", ".join(f"{d.get('job_id')} ({d.get('completed_at')})"
                       for d in later.get("delivered_by") or ())  # fmt: skip
        out.print(
            f"  failed job {later.get('job_id')} delivered later by {by}; "
            f"recorded {later.get('recorded_at')}",
            soft_wrap=True,
            markup=False,
        )
    retired = system.get("retired")
    if retired:  # an operator retired the system: its open jobs are no longer owed
        _print_retirement(retired)
    if system.get("not_planned_reason") == "system_removed":
        out.print("  not planned: the system was no longer configured", soft_wrap=True)


def _receipt_line(receipt: dict[str, Any]) -> None:
    """The vendor's reference or the error, and a failure's reason class (a fixed word:
    `credentials_rejected` says what the worker's log said, for an operator who cannot read
    it; review s30 operator F4). A receipt failed before 2026-12-03 (session 30) has none."""
    reference = receipt.get("vendor_ref") or receipt.get("error")
    reason = f" (reason: {receipt['reason_class']})" if receipt.get("reason_class") else ""
    if reference or reason:
        out.print(f"  receipt: {reference or '-'}{reason}", soft_wrap=True, markup=False)


# A receipt's lists of identities left unsent (the layer's keys.UNSENT_LISTS: the CLI is
# installed without the layer, a test keeps the two equal).
UNSENT_LISTS = ("identities_unformed", "identities_not_sent")


def _what_was_sent(job: dict[str, Any], receipt: dict[str, Any]) -> str:
    """Identifier types sent and refused, identities left unsent (counted: this view's own,
    then the job's others, `identities_not_shown`), purposes and the vendor's HTTP status: what
    counsel asks of a receipt (types and counts only, never a value)."""
    sent = receipt.get("identifier_types_sent")
    tried = receipt.get("identifier_types_attempted")
    unsent = sum(len(receipt.get(name) or ()) for name in UNSENT_LISTS)
    others = int(receipt.get("identities_not_shown") or 0)
    by_uid2 = _to_uid2_operator(receipt)
    if by_uid2:  # what went, and the status, are the UID2 operator's (proof34 L2)
        sent_line = (f"sent to the UID2 operator (hashed, to map to a UID2): "
                     f"{', '.join(sent or ())}; nothing sent to The Trade Desk")  # fmt: skip
    else:
        sent_line = f"sent: {', '.join(sent)}" if sent else ""
    status = receipt.get("http_status")
    parts = [sent_line,
             f"tried: {', '.join(tried)}" if tried and not sent else "",
             f"refused: {', '.join(receipt.get('identifier_types_rejected') or ())}"
             if receipt.get("identifier_types_rejected") else "",
             f"not sent: {unsent} of this request's identities" if unsent else "",
             f"not sent: {others} other identities the job carried" if others else "",
             f"purposes: {', '.join(job.get('purposes') or ())}" if job.get("purposes") else "",
             (f"UID2 operator HTTP {status}" if by_uid2 else f"HTTP {status}")
             if status else ""]  # fmt: skip
    return "; ".join(p for p in parts if p)


# The layer's receipt_words.SENT_TO_UID2_OPERATOR and UID2_NO_RECORD_NOTE (a test keeps them
# equal)
SENT_TO_UID2_OPERATOR = "uid2_operator"
UID2_NO_RECORD_NOTE = "no UID2 for this person (UID2 operator"


def _to_uid2_operator(receipt: dict[str, Any]) -> bool:
    """A receipt whose types went to a UID2 operator, not to its system: The Trade Desk's
    no_record for a person the operator could not map, where The Trade Desk was never called
    (status.to_uid2_operator). `sent_to` says so since 2026-12-04; an older one its note."""
    if receipt.get("sent_to") is not None:
        return bool(receipt["sent_to"] == SENT_TO_UID2_OPERATOR)
    return str(receipt.get("note") or "").startswith(UID2_NO_RECORD_NOTE)


def _operator_action(event: dict[str, Any], resolution: dict[str, Any]) -> None:
    """An operator event's who and what (its `--json` has the rest): what it did once the
    resolver ran it, "not run yet" before."""
    operation = event.get("operation") or {}
    evidence = event.get("evidence") or {}
    kind, system = event["event_type"], operation.get("system")
    if kind == "redrive":  # moved by the route itself: nothing left for the resolver to do
        moved = _count(int(operation.get("dlq_moved") or 0), "dead letter")
        did = f"moved {moved} back to the queue"
    elif kind == "retire":
        did = f"retired: {evidence.get('reason') or '-'}"
    elif kind == "hold_release":
        did = f"released hold {operation.get('hold_id')}"
    elif kind == "hold_reject":
        did = f"rejected hold {operation.get('hold_id')}: its carry withdrawn"
    elif kind == "replay" and "replayed" in resolution:
        did = f"replayed {_count(int(resolution['replayed']), 'failed job')}"
        if resolution.get("not_replayed"):
            did += f", {int(resolution['not_replayed'])} not replayed"
        if resolution.get("delivered_later"):
            did += f", {int(resolution['delivered_later'])} delivered later (not re-sent)"
    elif kind == "backfill" and "scanned" in resolution:
        did = (f"{'resend: ' if int(operation.get('resend') or 0) else ''}read "
               f"{int(resolution['scanned'])} states, {int(resolution.get('planned') or 0)} "
               f"opted out, {int(resolution.get('jobs_total') or 0)} jobs")  # fmt: skip
    else:
        did = "not run yet (the resolver carries it out within seconds)"
    if resolution.get("continued_by"):
        did += f"; continued by {resolution['continued_by']}"
    what = f"{system}, {did}" if system else did
    out.print(f"by {evidence.get('acted_by') or '-'}: {what}", soft_wrap=True, markup=False)


def _print_retirement(retired: dict[str, Any]) -> None:
    """Who retired the system, when and why; then each later retire (the name added back and
    removed again: it retires the jobs made since the one before it)."""
    for i, r in enumerate([retired, *(retired.get("retired_again") or ())]):
        word = "retired again" if i else "retired"
        out.print(f"  {word} {r.get('retired_at')} by {r.get('retired_by')}: {r.get('reason')}",
                  soft_wrap=True, markup=False)  # fmt: skip


def _lost_answers(job: dict[str, Any], indent: str) -> None:
    """A `done` another copy of the send got while the receipt above was written first (a
    no_record or failure that stands): the vendor applied the opt-out, so "no such person"
    is never shown without it."""
    for lost in job.get("lost_answers") or []:
        details = "; ".join(p for p in (f"HTTP {lost['http_status']}" if lost.get("http_status")
                                        else "", lost.get("vendor_ref") or "") if p)  # fmt: skip
        out.print(f"{indent}also answered {lost.get('status')} at {lost.get('at')}"
                  f"{f' ({details})' if details else ''}, by a second copy of the send whose "
                  "write came after the receipt above", soft_wrap=True, markup=False)  # fmt: skip


def _history(job: dict[str, Any]) -> str:
    """A job's failures and replays, so a re-sent delivery never reads as a clean one. A job
    failed now counts that failure too (`failures` keeps only those a replay started over
    from): failed again after one replay reads `failed; failed 2x; replayed 1x` (review s30
    operator F7: it read `failed 1x`); a first failure reads `failed` alone."""
    failures, replays = len(job.get("failures") or []), int(job.get("replays") or 0)
    failed_now = job.get("status") == "failed"
    failures += failed_now
    attempts = int(job.get("attempts") or 0)
    counted = failures > 1 or (failures and not failed_now)
    parts = [f"failed {failures}x" if counted else "", f"replayed {replays}x" if replays else "",
             f"{attempts} attempts" if attempts > 1 else ""]  # fmt: skip
    return "".join(f"; {p}" for p in parts if p)


@app.command()
def lookup(
    ctx: typer.Context,
    email: Annotated[str | None, typer.Option(help="An email address")] = None,
    phone: Annotated[
        str | None, typer.Option(help="A phone number in E.164: + and country code")
    ] = None,
    customer_id: Annotated[str | None, typer.Option(help="Your customer id")] = None,
    device_id: Annotated[str | None, typer.Option(help="A banner device id")] = None,
) -> None:
    """What is held on one identifier (sent in the body, never in a URL)."""
    id_type, value = _one_identifier(email, phone, customer_id, device_id)
    found = api(ctx).post("/v1/admin/lookup", {"type": id_type, "value": value})
    out.print_json(json.dumps(found), ensure_ascii=True)


# -- reports -----------------------------------------------------------------------------------


@app.command()
def report(
    ctx: typer.Context,
    year: Annotated[int | None, typer.Option(help="The calendar year (default: this one)",
                                             min=2020, max=2100)] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="md, csv or html")] = (
        ReportFormat.md
    ),
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here "
                                                "(html: report-YEAR.html by default)")] = None,
) -> None:  # fmt: skip
    """The CCPA §7102 figures of a year (received, complied with, denied, days to respond)."""
    year = year or datetime.now(UTC).year
    figures = api(ctx).get("/v1/admin/metrics", {"year": str(year)})
    renderer = {"md": markdown.render, "csv": csv_out.render, "html": html.render}[fmt.value]
    text = renderer(figures)
    if output is None and fmt is ReportFormat.html:
        output = Path(f"report-{year}.html")
    if output is None:
        sys.stdout.write(text)
        return
    _write(output, text)
    err.print(f"wrote {output}", soft_wrap=True, markup=False)  # one line, a long path too


# -- import ------------------------------------------------------------------------------------


@app.command("import")
def import_csv(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The CSV file (docs/operations.md: columns)")],
    restart: Annotated[bool, typer.Option(help="Ignore a saved position; start at line 1")] = (
        False
    ),
) -> None:
    """Historical opt-outs from another tool: batched, resumable, duplicates skipped."""
    client = api(ctx)
    total = csv_import.count_rows(file)
    with _progress() as bar:
        task = bar.add_task("importing", total=total)
        state = csv_import.run_import(client, file, restart, lambda n: bar.advance(task, n))
    if state.resumed_from:  # the state file's totals count every run on this file
        out.print(f"resumed after line {state.resumed_from}; totals over every run on this file:")
    out.print(f"stored {state.stored}, skipped {state.duplicates} duplicates, "
              f"rejected {state.rejected_rows} rows", soft_wrap=True)  # fmt: skip
    ids = csv_import.request_ids_path(file)
    if ids.is_file():  # external_id -> request id, for `optout status` (no identifier values)
        out.print(f"request id of each row (line, external_id, request_id): {ids}", soft_wrap=True)
    if state.rejected_rows:
        table = Table("line", "field", "reason", title="rejected rows (no values shown)")
        for row in csv_import.first_rejected(file, 20):  # the file is in line order
            table.add_row(str(row.get("line")), str(row.get("field")), str(row.get("reason")))
        out.print(table)
        out.print(f"every rejected row: {csv_import.rejected_path(file)}", soft_wrap=True,
                  markup=False)  # fmt: skip


# -- replay, holds, deny -------------------------------------------------------------------------


@app.command()
def replay(
    ctx: typer.Context,
    system: Annotated[str, typer.Argument(help="The system's name in systems.json")],
    wait: Annotated[bool, typer.Option(help="Wait for the replay to be carried out")] = True,
) -> None:
    """A system's dead letters and failed jobs back to work (after fixing its cause)."""
    _check(SYSTEM, system, "SYSTEM must be a system name (lower case, digits, _)")
    client = api(ctx)
    moved, left = _redrive(client, system)
    started = client.post(f"/v1/admin/systems/{system}/replay", expect=(202,))
    out.print(f"replay requested ({started['request_id']})")
    left_failed = _wait_for_replay(client, system, started["request_id"]) if wait else False
    if moved:
        # A letter of a job whose failure was never listed (its write failed on its last
        # receive) lists it when the worker takes the letter: after this replay read the list
        # (review s17 diff-worker R1).
        out.print(f"the {_count(moved, 'dead-letter message')} moved back may list failed "
                  f"jobs once {system}'s worker takes them, after this replay read its list: "
                  f"run `optout replay {system}` again in a few minutes to re-send those",
                  soft_wrap=True)  # fmt: skip
    # After the replay's report and the hint (review s22 diff C6: a job the replay left
    # failed exited before the hint, in the very case it is for): the exit code says either
    if left or left_failed:
        raise typer.Exit(1)


def _redrive(client: Api, system: str) -> tuple[int, int]:
    """The system's DLQ back on its queue: (letters moved, letters still in it). Each call
    long-polls until its time is spent, so a call that moved none while some remain means
    they are in flight (a send or delete that failed: visible again within 30 s) or not yet
    counted."""
    moved = 0
    while True:
        found = client.post(f"/v1/admin/systems/{system}/redrive")
        moved += int(found["moved"])
        left = int(found["remaining"])
        if found.get("request_id"):  # the event recording who moved them (`optout status ID`)
            out.print(f"redrive recorded as {found['request_id']}")
        if not found["moved"] or not left:
            break
    out.print(f"{_count(moved, 'dead-letter message')} back on {system}'s queue")
    if left:
        out.print(f"{_count(left, 'dead-letter message')} {'is' if left == 1 else 'are'} "
                  f"still in {system}'s DLQ: run `optout replay {system}` again in a minute",
                  soft_wrap=True)  # fmt: skip
    return moved, left


def _wait_for_replay(client: Api, system: str, replay_id: str) -> bool:
    """Until the replay has run. A large one goes on in follow-up events (its resolution's
    `continued_by`), each bounded: the counts are summed along the chain, and the wait starts
    again at each one (it made progress). True when it left failed jobs it could not re-send."""
    totals = {"replayed": 0, "not_replayed": 0, "delivered_later": 0}
    current = replay_id
    deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    while time.monotonic() < deadline:
        record = client.get(f"/v1/admin/requests/{current}")
        resolution = record.get("resolution") or {}
        if "replayed" in resolution:
            for name in totals:
                totals[name] += int(resolution.get(name) or 0)
            if not resolution.get("continued_by"):
                return _replayed(system, replay_id, totals)
            current = str(resolution["continued_by"])
            deadline = time.monotonic() + REPLAY_WAIT_SECONDS
            continue
        time.sleep(1.0)
    if current != replay_id:
        out.print(f"the replay goes on: {_count(totals['replayed'], 'failed job')} re-sent so far; "
                  f"`optout status {current}` shows when its next part ran",
                  soft_wrap=True)  # fmt: skip
        return False
    out.print("the replay is queued; `optout status` on its id shows when it ran")
    return False


def _replayed(system: str, replay_id: str, resolution: dict[str, int]) -> bool:
    """What the replay did, and no more: its jobs are sent, not yet delivered (a job that
    fails again, because the cause is not fixed, is listed for the next replay). True when
    some failed job could not be re-sent."""
    sent = resolution["replayed"]
    if sent:
        out.print(f"{_count(sent, 'failed job')} re-sent to {system}: sent, not yet delivered. If "
                  f"{system} still refuses them they fail again (JobsFailedAlarm): run "
                  f"`optout replay {system}` again in a few minutes; it re-sends only jobs that "
                  f"failed since, so 0 means every one was delivered or is still being tried. "
                  f"`optout report` shows {system}'s failed count as the watch reads those "
                  f"requests again: a job that ends after its next run is counted at a later "
                  f"check, within the hour for a request past its deadline.",
                  soft_wrap=True)  # fmt: skip
    else:
        out.print(f"no failed jobs of {system} to re-send")
    if resolution.get("delivered_later"):
        out.print(f"{_count(resolution['delivered_later'], 'failed job')} not re-sent: later jobs "
                  f"of the same people delivered every identity and purpose of each, and "
                  f"{system} confirmed them (`optout status` on a request shows which)",
                  soft_wrap=True)  # fmt: skip
    if resolution.get("not_replayed"):
        out.print(f"{_count(resolution['not_replayed'], 'failed job')} could not be re-sent (see "
                  f"the log: `failed job not replayed`); `optout status {replay_id} --json` counts "
                  "them (and names its follow-up, `continued_by`, if it had one); one that failed "
                  f"again moments ago is listed by its worker: run `optout replay {system}` again "
                  "in a few minutes",
                  soft_wrap=True)  # fmt: skip
        return True
    return False


@app.command()
def backfill(
    ctx: typer.Context,
    system: Annotated[str, typer.Argument(help="The system's name in systems.json")],
    resend: Annotated[
        bool,
        typer.Option(
            help="Send everyone opted out again (its destination changed: a new ad "
            "account, audience, webhook URL)"
        ),
    ] = False,
    wait: Annotated[bool, typer.Option(help="Follow the backfill until it has run")] = True,
) -> None:
    """Send a system the opt-outs already recorded (after adding it, or a purpose or an
    identifier type to it, to the deployed systems config). Scans the table: see
    docs/operations.md for its cost."""
    _check(SYSTEM, system, "SYSTEM must be a system name (lower case, digits, _)")
    client = api(ctx)
    params = {"resend": "true"} if resend else None
    started = client.call("POST", f"/v1/admin/systems/{system}/backfill", None, params=params,
                          expect=(202,))  # fmt: skip
    out.print(f"backfill requested ({started['request_id']})")
    earlier = started.get("open_backfills") or []
    if earlier:  # not refused: the operator may mean it (review s14 operator 6)
        again = (
            "the people their jobs carry are sent again"
            if resend
            else "the people their jobs carry count as in flight for them, not sent again"
        )
        err.print(f"warning: an earlier backfill of {system} is still open (steps not run, or "
                  f"jobs not answered yet): {', '.join(earlier)}; {again}. `optout status "
                  f"{earlier[0]}` shows its jobs", soft_wrap=True)  # fmt: skip
    if wait:
        _wait_for_backfill(client, system, started["request_id"], resend)


def _wait_for_backfill(client: Api, system: str, backfill_id: str, resend: bool) -> None:
    """Until every event of the backfill has run: each scans part of the table and names its
    follow-up (`continued_by`); the counts are summed along the chain, printed as it goes."""
    totals = {"scanned": 0, "planned": 0, "identities": 0, "jobs_total": 0,
              "in_flight_earlier": 0}  # fmt: skip
    earlier: set[str] = set()
    current = backfill_id
    deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    while time.monotonic() < deadline:
        resolution = client.get(f"/v1/admin/requests/{current}").get("resolution") or {}
        if "scanned" not in resolution:
            time.sleep(1.0)
            continue
        for name in totals:
            totals[name] += int(resolution.get(name) or 0)
        earlier.update(str(b) for b in resolution.get("earlier_backfills") or ())
        out.print(f"{totals['scanned']} states read, {totals['planned']} opted out, "
                  f"{totals['identities']} identities in {totals['jobs_total']} jobs for {system}",
                  soft_wrap=True)  # fmt: skip
        if not resolution.get("continued_by"):
            _in_flight_earlier(system, totals["in_flight_earlier"], sorted(earlier), resend)
            _backfilled(system, backfill_id, totals["jobs_total"])
            return
        current = str(resolution["continued_by"])
        deadline = time.monotonic() + REPLAY_WAIT_SECONDS
    if current == backfill_id:  # not one step ran: nothing was sent (review s14 operator 6)
        err.print(f"the backfill of {system} has not run yet: its event is still queued or "
                  f"failing (see the resolver's log). `optout status {backfill_id}` shows when "
                  "it ran", soft_wrap=True)  # fmt: skip
        raise typer.Exit(1)
    out.print(f"the backfill goes on; `optout status {current}` shows when its next part ran",
              soft_wrap=True)  # fmt: skip


def _in_flight_earlier(system: str, people: int, earlier: list[str], resend: bool) -> None:
    """Identities whose marks name an earlier backfill's job with no answer yet: a plain
    backfill counted them as carried, a resend sent them again (review s14 operator 6)."""
    if not people:
        return
    what = "sent again by this one" if resend else "not sent by this one"
    err.print(f"warning: {people} identities were in flight for an earlier backfill of {system} "
              f"whose job has no answer yet ({', '.join(earlier)}): {what}. If that job fails "
              f"for good, `optout replay {system}` sends it again", soft_wrap=True)  # fmt: skip


def _backfilled(system: str, backfill_id: str, jobs: int) -> None:
    """What a finished backfill did, and no more: jobs sent are not yet delivered."""
    if not jobs:
        out.print(f"backfill of {system} done: no job needed; everyone opted out already has "
                  f"a job for {system}, delivered or in flight (`--resend` sends them again)",
                  soft_wrap=True)  # fmt: skip
        return
    out.print(f"backfill of {system} done: {jobs} jobs sent, not yet delivered. "
              f"`optout status {backfill_id}` shows each job's status and receipt; a job "
              f"{system} refuses for good raises JobsFailedAlarm: `optout replay {system}` "
              "after fixing the cause", soft_wrap=True)  # fmt: skip


@holds_app.command("list")
def holds_list(
    ctx: typer.Context, limit: Annotated[int, typer.Option(min=1, max=500)] = 100
) -> None:
    """Held links: undecided first, then decided, each newest first (types and keyed hashes
    only)."""
    found = api(ctx).get("/v1/admin/holds", {"limit": str(limit)})
    if not found["holds"]:
        out.print("no held links")
        return
    # One block per hold, not a table: at 80 columns a table cut `released` and `rejected`
    # to the same "re…", and the hold id must stay whole to be copied.
    for hold in found["holds"]:
        sides = " + ".join(f"{hold[s]['type']}:{hold[s]['key'][:12]}… ({hold['cluster_' + s]})"
                           for s in ("a", "b"))  # fmt: skip
        out.print(f"{hold['hold_id']}  [bold]{hold['status']}[/]", soft_wrap=True)
        why = ("a second account on one browser" if hold.get("reason") == "second_account"
               else f"at cap {hold['cap']}")  # fmt: skip
        out.print(f"  held {hold['held_at']} {why}: {sides}", soft_wrap=True)
        if hold.get("decided_at"):
            by = f" by {hold['decided_by']}" if hold.get("decided_by") else ""
            out.print(f"  decided {hold['decided_at']}{by}", soft_wrap=True)
        if hold.get("release_request_id"):
            out.print(f"  release request {hold['release_request_id']}", soft_wrap=True)


@holds_app.command("release")
def holds_release(ctx: typer.Context, hold_id: str) -> None:
    """Link the pair (one person after all) and resolve the cluster again."""
    _check(HOLD_ID, hold_id, "HOLD_ID looks like <request id>.<n>, as `optout holds list` shows")
    found = api(ctx).post(f"/v1/admin/holds/{hold_id}/release", expect=(202,))
    request_id = found["request_id"]
    out.print(f"{hold_id}: {found['status']} by request {request_id} "
              f"(`optout status {request_id}` shows when it linked)", soft_wrap=True)  # fmt: skip


@holds_app.command("reject")
def holds_reject(ctx: typer.Context, hold_id: str) -> None:
    """Never link the pair (a second account's: and withdraw its carry to that browser)."""
    _check(HOLD_ID, hold_id, "HOLD_ID looks like <request id>.<n>, as `optout holds list` shows")
    found = api(ctx).post(f"/v1/admin/holds/{hold_id}/reject", expect=(200,))
    request_id = found.get("request_id")
    withdrawn = (f" by request {request_id} (`optout status {request_id}` shows when the "
                 "browser dropped the account's carry)") if request_id else ""  # fmt: skip
    out.print(f"{hold_id}: {found['status']}{withdrawn}", soft_wrap=True)


@app.command()
def deny(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The request id (a UUID)")],
    reason: Annotated[str, typer.Option(help="Why, in words: never the person's identifiers")],
    code: Annotated[DenialCode, typer.Option(help="The reason code")] = (
        DenialCode.suspected_fraud
    ),
) -> None:
    """Deny an opt-out request (CCPA §7026(e)) or a request to limit (§7027(f)) that no system
    has confirmed yet, with a reason code: suspected fraud (the default), not a consumer,
    outside the jurisdiction, or another reason."""
    _check(REQUEST_ID, request_id.lower(), "REQUEST_ID must be a request id (a UUID)")
    body = {"reason_code": code.value, "reason": reason}
    found = api(ctx).post(f"/v1/admin/requests/{request_id.lower()}/deny", body)
    out.print(f"{found['request_id']}: denied at {found['denied_at']} ({found['reason_code']})",
              soft_wrap=True)  # fmt: skip
    # What the denial does not stop: jobs already made go on (docs/operations.md)
    under_way = found.get("systems_under_way") or []
    if under_way:
        out.print("jobs already under way (they may reach the vendor): " + ", ".join(under_way),
                  soft_wrap=True, markup=False)  # fmt: skip
    if found.get("resolved") is False:
        out.print("the resolver had not recorded this request yet: jobs a run under way makes "
                  f"are added to its record (`optout status {found['request_id']}`)",
                  soft_wrap=True, markup=False)  # fmt: skip


# -- retire ------------------------------------------------------------------------------------


@app.command()
def retire(
    ctx: typer.Context,
    system: Annotated[str, typer.Argument(help="The system's name, removed from the config")],
    reason: Annotated[str, typer.Option(help="Why, in words: never a person's identifiers")],
) -> None:
    """A removed system's open jobs no longer owed (removed, renamed, contract ended): kept as
    evidence. Deploy without it first: a system still configured is refused (409)."""
    _check(SYSTEM, system, "SYSTEM must be a system name (lower case, digits, _)")
    found = api(ctx).post(f"/v1/admin/systems/{system}/retire", {"reason": reason})
    if found.get("already_retired"):  # the first retirement stands; this attempt is recorded
        out.print(f"{found['system']}: already retired at {found['retired_at']} "
                  f"({found['retirement_id']}), kept; retired again as {found['request_id']} "
                  "(it retires the jobs made since the last retirement, if any)",
                  soft_wrap=True)  # fmt: skip
        return
    out.print(f"{found['system']}: retired at {found['retired_at']} ({found['request_id']})",
              soft_wrap=True)  # fmt: skip


# -- export ------------------------------------------------------------------------------------


@app.command("export")
def export_records(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write")],
    email: Annotated[str | None, typer.Option(help="One identity: an email")] = None,
    phone: Annotated[str | None, typer.Option(help="One identity: a phone number in E.164")] = None,
    customer_id: Annotated[str | None, typer.Option(help="One identity: a customer id")] = None,
    device_id: Annotated[str | None, typer.Option(help="One identity: a device id")] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="A range: first UTC day (YYYY-MM-DD)")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="A range: last UTC day (YYYY-MM-DD)")
    ] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv")] = (
        ExportFormat.jsonl
    ),
) -> None:
    """Every event, link, state, job and receipt of one identity or of a date range."""
    named = [v for v in (email, phone, customer_id, device_id) if v]
    if named and (start or end):
        raise CliError("export one identity or a date range, not both")
    if named:
        id_type, value = _one_identifier(email, phone, customer_id, device_id)
        route, body = "/v1/admin/exports/identity", {"type": id_type, "value": value}
    elif start and end:
        route, body = "/v1/admin/exports/range", {"from": _day(start, "--from"),
                                                  "to": _day(end, "--to")}  # fmt: skip
    else:
        raise CliError("say what to export: --email/--phone/--customer-id/--device-id, "
                       "or --from and --to")  # fmt: skip
    client = api(ctx)
    with _progress() as bar:
        task = bar.add_task("exporting", total=None)

        def on_page(progress: dict[str, Any]) -> None:
            bar.update(task, total=progress.get("total"), completed=progress.get("done", 0))

        done = export_out.export(client, route, body, output, fmt.value, on_page)
    sealed = f"{export_out.seal_path(output)}" if fmt == ExportFormat.csv else "its last line"
    out.print(
        f"wrote {done.records} records to {output}, sha256 {done.sha256} (sealed: "
        f"{sealed}; `optout verify-export {output}` checks it)",
        soft_wrap=True,
    )
    if named:  # an identity's requests are listed once the deadline watch has enrolled them
        err.print(_export_gap(done.complete_through), soft_wrap=True)  # one line for grep


@app.command("verify-export")
def verify_export(
    file: Annotated[Path, typer.Argument(help="An export's file (a CSV's seal beside it)")],
) -> None:
    """Whether an export's file is the one `optout export` wrote: its seal, the records of
    each kind and its digests. Exit 1 naming what does not match; never prints a record."""
    found = export_out.verify(file)
    out.print(f"ok: {found.records} records, sha256 {found.sha256}, records_sha256 "
              f"{found.records_sha256}", soft_wrap=True)  # fmt: skip


# -- helpers -------------------------------------------------------------------------------------


def _export_gap(complete_through: str | None) -> str:
    if complete_through is None:
        return ("the deadline watch has not enrolled any request yet: requests that name this "
                "identity may be missing (it lists them within minutes)")  # fmt: skip
    return (f"requests received after {complete_through} may not be listed yet (the deadline "
            "watch lists a request within about 35 minutes of its arrival): to be sure of "
            "one received later, export again once it is that old")  # fmt: skip


def _count(n: int, thing: str) -> str:
    """`1 failed job`, `3 failed jobs`: a count an operator reads aloud into a ticket."""
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _one_identifier(
    email: str | None, phone: str | None, customer_id: str | None, device_id: str | None
) -> tuple[str, str]:
    given = {"email": email, "phone": phone, "customer_id": customer_id, "device_id": device_id}
    named = [(k, v) for k, v in given.items() if v]
    if len(named) != 1:
        raise CliError("give exactly one of --email, --phone, --customer-id, --device-id")
    return named[0][0], str(named[0][1])


def _check(pattern: re.Pattern[str], value: str, message: str) -> None:
    if not pattern.fullmatch(value):
        raise CliError(message)


def _day(text: str, option: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise CliError(f"{option} must be a day, YYYY-MM-DD") from None


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise CliError(f"{path}: {error.strerror}") from None


def _progress() -> Progress:
    """A bar on a terminal only: redirected, rich's transient bar still ends with an empty
    line, which then came before the command's result (review s16 drill)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=err, transient=True,  # gone at the end: errors stay one line
        disable=not err.is_terminal,
    )  # fmt: skip


GLOBAL_OPTIONS = ("--base-url", "--url", "--stack-name", "--stack", "--region", "--profile")


def global_options_first(argv: list[str]) -> list[str]:
    """`optout status ID --base-url U` works as `optout --base-url U status ID` does: the
    options that say where the stack is are moved in front of the command."""
    front: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            front.append(arg)
            if "=" not in arg:
                front.append(next(args, ""))
        else:
            rest.append(arg)
    return front + rest


INTERRUPTED = "interrupted (an import resumes where it stopped)"
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report it


def run(argv: list[str] | None = None, transport: httpx.BaseTransport | None = None) -> None:
    """The console script: every failure is one line on stderr (usage errors exit 2); always
    ends with SystemExit (0 when all went well)."""
    args = global_options_first(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="optout", obj=Where(transport=transport),
                   standalone_mode=False)  # fmt: skip
    except CliError as error:
        _fail(error.message, error.exit_code)
    except TyperException as error:  # Typer's usage errors (click exceptions)
        if type(error).__name__ == "NoArgsIsHelpError":  # `optout`, `optout holds`: the help
            getattr(error, "show", lambda: None)()
            sys.exit(2)
        _fail(_usage_line(error), int(getattr(error, "exit_code", 2)))
    except (KeyboardInterrupt, typer.Abort):
        _fail(INTERRUPTED, INTERRUPTED_EXIT)
    except Exception as error:
        if os.environ.get("OPTOUT_DEBUG"):
            raise
        _fail(f"unexpected {type(error).__name__} (OPTOUT_DEBUG=1 shows where)", 1)
    if code == INTERRUPTED_EXIT:  # Typer turns a Ctrl-C inside a command into a silent 130
        _fail(INTERRUPTED, INTERRUPTED_EXIT)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_line(error: TyperException) -> str:
    message = getattr(error, "format_message", lambda: str(error))()
    context = getattr(error, "ctx", None)
    where = f"{context.command_path} --help" if context is not None else "optout --help"
    return " ".join(f"{message} (see {where})".split())


def _fail(message: str, code: int) -> None:
    err.print(f"optout: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)
