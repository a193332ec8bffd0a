"""template.yaml: lints clean, translates offline with aws-sam-translator, least privilege,
the edge when asked for, and the per-system section in step with the production systems.

Assertions iterate over every function and role, so resources other engineers add are held
to the same rules; the capture and admin functions, the key and the table get specific checks.
"""

import json
import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from optout.connectors import CONNECTORS
from optout.delivery.retry import VISIBILITY_MARGIN_SECONDS
from optout.purposes import ALL_PURPOSES
from optout.store.delivery import job_attribute, until_attribute
from optout.sweep import SweepSettings
from optout.systems import load_systems
from scripts import gen_template
from tests.support import sam

SYSTEMS_JSON = sam.ROOT / "layers" / "common" / "config" / "systems.json"
TABLE_ARN = (
    "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${AWS::StackName}-table"
)
EDGE_ON = {
    "EnableEdge": "true",
    "ApiDomainName": "api-origin.privacy.example.com",
    "ApiCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
}
EDGE_RESOURCES = {
    "ApiDomain",
    "ApiDomainMapping",
    "EdgeOriginRequestPolicy",
    "EdgeDistribution",
    "EdgeOriginSecret",
}
# The one dimension of the stack's own metrics: its name, so that two stacks in one account and
# region never feed each other's alarms (review s20 stacks K1).
STACK_DIMENSION = [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}]
PUBLIC_ROUTES = {
    ("POST", "/v1/consent"),
    ("GET", "/v1/consent/{device_id}"),
    ("POST", "/v1/opt-out"),
    ("GET", "/v1/requests/{request_id}"),
    ("GET", "/v1/openapi.json"),
    ("ANY", "$default"),  # every unmatched request: the capture function's 404 envelope
}
IAM_ROUTES = {
    ("POST", "/v1/identity-links"),
    ("GET", "/v1/admin/requests/{request_id}"),
    ("POST", "/v1/admin/lookup"),
    ("GET", "/v1/admin/holds"),
    ("POST", "/v1/admin/holds/{hold_id}/release"),
    ("POST", "/v1/admin/holds/{hold_id}/reject"),
    ("POST", "/v1/admin/systems/{system}/replay"),
    ("GET", "/v1/admin/openapi.json"),
    ("POST", "/v1/admin/systems/{system}/redrive"),
    ("POST", "/v1/admin/systems/{system}/retire"),
    ("POST", "/v1/admin/systems/{system}/backfill"),
    ("POST", "/v1/admin/requests/{request_id}/deny"),
    ("GET", "/v1/admin/metrics"),
    ("POST", "/v1/admin/exports/identity"),
    ("POST", "/v1/admin/exports/range"),
    ("POST", "/v1/admin/imports"),
}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return sam.translate()


def _of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    resources = template["Resources"].items()
    return {name: r for name, r in resources if r["Type"] == resource_type}


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    policies = role["Properties"].get("Policies", [])
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _routes(function: str) -> set[tuple[str, str]]:
    events = sam.load()["Resources"][function]["Properties"]["Events"].values()
    # An event without Path and Method is the API's $default route.
    return {
        (e["Properties"].get("Method", "ANY"), e["Properties"].get("Path", "$default"))
        for e in events
    }


def _dynamodb_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        s
        for s in _statements(role)
        if any(str(a).startswith("dynamodb:") for a in _as_list(s["Action"]))
    ]


def _leading_keys(statement: dict[str, Any]) -> list[str]:
    condition = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
    return list(condition.get("dynamodb:LeadingKeys", []))


# -- lint, translation, generation ----------------------------------------------------------


def test_template_yaml_passes_cfn_lint() -> None:
    findings = sam.cfn_lint(sam.TEMPLATE.read_text(encoding="utf-8"))
    assert [str(f) for f in findings] == []


def test_translated_template_passes_cfn_lint(translated: dict[str, Any]) -> None:
    findings = sam.cfn_lint(translated)
    assert [str(f) for f in findings] == []


def _failure_destinations(template: dict[str, Any]) -> set[str]:
    """The queues named as a redrive policy's dead-letter target or a mapping's on-failure
    destination."""
    found: set[str] = set()

    def walk(node: Any, inside: bool) -> None:
        if isinstance(node, dict):
            if inside and isinstance(node.get("Fn::GetAtt"), list):
                found.add(node["Fn::GetAtt"][0])
            for key, value in node.items():
                walk(value, inside or key in ("RedrivePolicy", "DestinationConfig"))
        elif isinstance(node, list):
            for value in node:
                walk(value, inside)

    walk(template["Resources"], False)
    return found


def _getatt_target(value: Any) -> str:
    return value["Fn::GetAtt"][0] if isinstance(value, dict) and "Fn::GetAtt" in value else ""


def _serverless_accepted(translated: dict[str, Any], rule: str, path: list[Any]) -> bool:
    """A serverless-rules finding docs/deploy.md ("What `make lint` checks") accepts, each
    checked on the resource it names in the translated template."""
    resources = translated["Resources"]
    name = str(path[1])
    if len(path) >= 5 and path[3] == "Events":  # template.yaml: the rule SAM makes of an event
        name += str(path[4])
    resource = resources.get(name, {})
    props = resource.get("Properties", {})
    if rule == "WS1000":  # tracing is the TracingMode parameter, Active by default
        mode = translated["Parameters"]["TracingMode"]["Default"]
        return props.get("TracingConfig") == {"Mode": {"Ref": "TracingMode"}} and mode == "Active"
    if rule == "WS1004":  # its own log group, with retention, named in LoggingConfig
        group = props.get("LoggingConfig", {}).get("LogGroup", {})
        target = resources.get(group.get("Ref", "") if isinstance(group, dict) else "", {})
        return target.get("Type") == "AWS::Logs::LogGroup" and "RetentionInDays" in target.get(
            "Properties", {}
        )
    if rule == "ES6000":  # a dead-letter queue, or the stream's failure destination
        return name in _failure_destinations(translated)
    if rule == "ES1001":  # an SQS mapping: no on-failure destination exists for SQS
        source = resources.get(_getatt_target(props.get("EventSourceArn")), {})
        return resource.get("Type") == "AWS::Lambda::EventSourceMapping" and (
            source.get("Type") == "AWS::SQS::Queue"
        )
    if rule in ("ES1007", "ES4000"):  # a schedule whose function has a heartbeat alarm
        if resource.get("Type") == "AWS::Lambda::Permission":
            resource = resources.get(_getatt_target(props.get("SourceArn")), {})
        targets = resource.get("Properties", {}).get("Targets", [])
        functions = {_getatt_target(t["Arn"]) for t in targets}
        return (
            resource.get("Type") == "AWS::Events::Rule"
            and "ScheduleExpression" in resource["Properties"]
            and len(functions) == 1
            and f"{functions.pop().removesuffix('Function')}HeartbeatAlarm" in resources
        )
    return False


@pytest.mark.parametrize("which", ["template.yaml", "translated"])
def test_serverless_rules_report_only_the_accepted_findings(
    which: str, translated: dict[str, Any]
) -> None:
    """AWS's serverless rules (cfn-lint-serverless) on both forms: every finding is one that
    docs/deploy.md accepts, on a resource where its reason holds."""
    source = sam.TEMPLATE.read_text(encoding="utf-8") if which == "template.yaml" else translated
    findings = sam.cfn_lint(source, serverless=True)
    assert any(f.rule.id == "WS1004" for f in findings)  # the rules ran (their blind spot)
    refused = [str(f) for f in findings if not _serverless_accepted(translated, f.rule.id, f.path)]
    assert refused == []


def test_translation_leaves_no_serverless_resources(translated: dict[str, Any]) -> None:
    kinds = {r["Type"] for r in translated["Resources"].values()}
    assert not {k for k in kinds if k.startswith("AWS::Serverless::")}
    assert "Transform" not in translated


def test_no_language_extensions_so_sam_cli_and_checkov_read_the_file() -> None:
    assert sam.load()["Transform"] == "AWS::Serverless-2016-10-31"
    assert "Fn::ForEach" not in sam.TEMPLATE.read_text(encoding="utf-8")


def test_the_per_system_section_is_up_to_date_with_the_production_systems() -> None:
    current = sam.TEMPLATE.read_text(encoding="utf-8")
    assert gen_template.render(current, gen_template.sections()) == current, "run `make template`"


def test_make_template_refuses_a_system_its_connector_could_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the production systems with Salesforce asked to carry limit_sensitive, which its
    # default fields map does not cover (the worker would refuse every job after the deploy)
    config = json.loads(gen_template.SYSTEMS.read_text(encoding="utf-8"))
    (salesforce,) = [s for s in config["systems"] if s["type"] == "salesforce"]
    salesforce["purposes"].append("limit_sensitive")
    edited = tmp_path / "systems.json"
    edited.write_text(json.dumps(config), encoding="utf-8")
    # When the template is generated from it
    code = gen_template.main(["--check", "--systems", str(edited)])
    # Then it is refused before any build, naming the system, in one line
    assert code == 2
    err = capsys.readouterr().err
    assert "system salesforce" in err and "limit_sensitive" in err
    assert "Traceback" not in err


def test_every_worker_paces_by_the_same_mapping_row_its_event_source_is_capped_by() -> None:
    # The worker divides its system's rate by MAX_CONCURRENCY; that is a bound only while it
    # equals the event source's MaximumConcurrency, so both name the same Mapping row
    template = sam.load()
    limits = template["Mappings"]["SystemLimits"]
    for system in load_systems(SYSTEMS_JSON).systems:
        key = system.queue_key
        props = template["Resources"][f"{key}Worker"]["Properties"]
        row = {"Fn::FindInMap": ["SystemLimits", key, "MaxConcurrency"]}
        assert props["Environment"]["Variables"]["MAX_CONCURRENCY"] == row, key
        scaling = props["Events"]["Jobs"]["Properties"]["ScalingConfig"]
        assert scaling["MaximumConcurrency"] == row, key
        assert 2 <= int(limits[key]["MaxConcurrency"]) <= 1000, key


def test_make_template_refuses_a_pace_too_slow_for_one_batch_in_the_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the production systems with Braze at 0.1 calls a second: over its MaxConcurrency
    # of 2, a batch of 10 jobs (12 calls) would take 240 s to start its last call
    config = json.loads(gen_template.SYSTEMS.read_text(encoding="utf-8"))
    (braze,) = [s for s in config["systems"] if s["type"] == "braze"]
    braze["rate_limit_per_second"] = 0.1
    edited = tmp_path / "systems.json"
    edited.write_text(json.dumps(config), encoding="utf-8")
    # When the template is generated from it
    code = gen_template.main(["--check", "--systems", str(edited)])
    # Then it is refused, naming the system, its rate and the timeout, in one line
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("make template: braze: rate_limit_per_second 0.1")
    assert "MaxConcurrency 2" in err and "timeout of 30 s" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_the_shipped_paces_each_fit_a_batch_in_the_workers_timeout() -> None:
    systems = load_systems(SYSTEMS_JSON).systems
    gen_template.check_pace(sam.load(), systems)  # raises ValueError naming a system


def test_make_template_warns_of_a_system_whose_pace_cannot_fit_one_cluster_sized_job(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the shipped systems: Braze makes one call per email of a job's cluster, and at 4 a
    # second over MaxConcurrency 2 one job of MaxClusterSize (50) emails needs 51 calls, 26.5 s
    systems = load_systems(SYSTEMS_JSON).systems
    # When the template is checked
    warnings = gen_template.job_pace_warnings(sam.load(), systems)
    code = gen_template.main(["--check"])
    # Then Braze alone is named, with how big a job fits, and the check still passes
    assert [w.split(":")[0] for w in warnings] == ["braze"]
    assert "up to 51 vendor calls" in warnings[0] and "a job of 47 fits" in warnings[0]
    assert code == 0
    assert capsys.readouterr().err == f"make template: warning: {warnings[0]}\n"


def test_edge_waf_yaml_is_template_yamls_web_acl() -> None:
    standalone = sam.load_template(sam.ROOT / "edge-waf.yaml")
    assert standalone["Resources"]["EdgeWebAcl"] == {
        k: v for k, v in sam.load()["Resources"]["EdgeWebAcl"].items() if k != "Condition"
    }
    assert gen_template.main(["--check"]) == 0


def test_every_code_directory_the_template_names_exists() -> None:
    # sam build skips a missing CodeUri with a warning and still says "Build Succeeded".
    for name, resource in sam.load()["Resources"].items():
        props = resource.get("Properties", {})
        uri = props.get("CodeUri") or props.get("ContentUri")
        if uri:
            assert (sam.ROOT / uri).is_dir(), (name, uri)


# -- one queue + DLQ + worker + alarms per production system ---------------------------------


def test_every_production_system_has_its_queue_dlq_worker_and_alarms(
    translated: dict[str, Any],
) -> None:
    systems = load_systems(SYSTEMS_JSON).systems
    resources = translated["Resources"]
    limits = sam.load()["Mappings"]["SystemLimits"]
    for system in systems:
        key = system.queue_key
        redrive = resources[f"{key}JobsQueue"]["Properties"]["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [f"{key}DeadLetterQueue", "Arn"]}
        assert {f"{key}DeadLetterAlarm", f"{key}WorkerErrorsAlarm"} <= set(resources)
        worker = resources[f"{key}Worker"]["Properties"]
        assert worker["Environment"]["Variables"]["SYSTEM_NAME"] == key
        assert "MaxConcurrency" in limits[key], key
    workers = {n for n in resources if n.endswith("Worker")}
    assert workers == {f"{s.queue_key}Worker" for s in systems}


SQS_MAX_RETENTION = 14 * 24 * 3600  # MessageRetentionPeriod's most (1,209,600 s)
LEG = 12 * 3600  # SQS's longest visibility from a receive: one leg of a long Retry-After


def test_each_jobs_queue_keeps_a_message_as_long_as_sqs_allows_and_its_dlq_as_long(
    translated: dict[str, Any],
) -> None:
    # SQS deletes an expired message unread and with no DLQ: a backlog past the old 5 days
    # lost its jobs silently (review s31 abuse F4). A letter keeps its first send's clock in
    # the DLQ (standard queues), so the DLQ keeps at least as long.
    resources = translated["Resources"]
    for system in load_systems(SYSTEMS_JSON).systems:
        key = system.queue_key
        jobs = resources[f"{key}JobsQueue"]["Properties"]["MessageRetentionPeriod"]
        dlq = resources[f"{key}DeadLetterQueue"]["Properties"]["MessageRetentionPeriod"]
        assert jobs == SQS_MAX_RETENTION, key
        assert dlq >= jobs, key


def test_each_jobs_queue_has_an_alarm_on_its_oldest_messages_age(
    translated: dict[str, Any],
) -> None:
    # The expiry clock nothing watched (review s31 abuse F4). SQS leaves a message received 3
    # times or more out of the figure, with a redrive policy too, so a job waiting out a long
    # Retry-After counts at most two legs, three if the third receive still counts (SQS's
    # metrics page names the threshold both ways, checked 2026-12-04; docs/operations.md, "A
    # backlog"): the threshold is above three, and far enough below the retention that a
    # message received at it still has every leg of its own retries left.
    resources = translated["Resources"]
    for system in load_systems(SYSTEMS_JSON).systems:
        key = system.queue_key
        alarm = resources[f"{key}BacklogAgeAlarm"]["Properties"]
        assert (alarm["Namespace"], alarm["MetricName"]) == (
            "AWS/SQS", "ApproximateAgeOfOldestMessage",
        )  # fmt: skip
        assert alarm["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [f"{key}JobsQueue", "QueueName"]}}
        ]
        assert (alarm["Statistic"], alarm["ComparisonOperator"]) == (
            "Maximum", "GreaterThanThreshold",
        )  # fmt: skip
        receives = resources[f"{key}JobsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        retention = resources[f"{key}JobsQueue"]["Properties"]["MessageRetentionPeriod"]
        assert 3 * LEG < alarm["Threshold"] <= retention - receives * LEG, key
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }


def test_each_worker_gives_up_on_the_receive_its_queue_moves_the_message_on(
    translated: dict[str, Any],
) -> None:
    # What <system>BacklogAgeAlarm cannot see (a message received 3 times or more) is a job in
    # the worker's retries, and it must end in an alarm within the receives left: the worker's
    # last allowed receive (MAX_RECEIVE_COUNT) fails the job for good (JobsFailedAlarm) as SQS
    # moves its message to the DLQ (<system>DeadLetterAlarm). Set above the queue's
    # maxReceiveCount, every retried-out job would reach the DLQ still pending and never be
    # failed; below it, jobs would fail with receives unused (docs/operations.md, "What the
    # figure leaves out is alarmed elsewhere").
    resources = translated["Resources"]
    for system in load_systems(SYSTEMS_JSON).systems:
        key = system.queue_key
        queue = resources[f"{key}JobsQueue"]["Properties"]
        worker = resources[f"{key}Worker"]["Properties"]["Environment"]["Variables"]
        receives = int(queue["RedrivePolicy"]["maxReceiveCount"])
        assert int(worker["MAX_RECEIVE_COUNT"]) == receives, key
        # Out of the figure from the third receive on: at most this long before either alarm
        assert (receives - 3) * LEG <= 3 * 24 * 3600, key


def test_the_workers_visibility_margin_covers_how_long_a_poller_may_hold_a_batch(
    translated: dict[str, Any],
) -> None:
    # A throttled invocation's batch is held up to the queue's visibility timeout; then a
    # cold start and clock differences (30 s) before the worker asks SQS for its wait
    resources = translated["Resources"]
    for system in load_systems(SYSTEMS_JSON).systems:
        queue = resources[f"{system.queue_key}JobsQueue"]["Properties"]
        assert int(queue["VisibilityTimeout"]) + 30 <= VISIBILITY_MARGIN_SECONDS


def test_the_stacks_own_metrics_and_alarms_are_named_for_the_stack(
    translated: dict[str, Any],
) -> None:
    """Two stacks in one account and region (staging beside production, a re-created stack
    beside the old one) share the namespace: with one fixed dimension value, a live stack's
    heartbeat kept a dead one's WatchHeartbeatAlarm OK and its failures paged the other's
    on-call (review s20 stacks K1). Every function publishes, and every alarm on the
    namespace reads, the dimension service = the stack's name."""
    functions = _of_type(translated, "AWS::Lambda::Function")
    assert functions
    for name, function in functions.items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "OptOutBridge", name
        assert env["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}, name
    read = 0
    for name, alarm in _of_type(translated, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for metric in [props, *stats]:
            if metric.get("Namespace") == "OptOutBridge":
                assert metric.get("Dimensions") == STACK_DIMENSION, name
                read += 1
    assert read >= 20


def test_a_refused_visibility_change_has_an_alarm(translated: dict[str, Any]) -> None:
    alarm = translated["Resources"]["VisibilityRefusedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("OptOutBridge", "VisibilityRefused")
    assert alarm["Dimensions"] == STACK_DIMENSION


def test_a_worker_write_that_fails_has_an_alarm(translated: dict[str, Any]) -> None:
    # One job's failed write brings back its message alone and raises no Lambda error
    # (tests/integration/test_worker_write_faults.py): counted as JobWritesFailed instead.
    alarm = translated["Resources"]["JobWritesFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("OptOutBridge", "JobWritesFailed")
    assert alarm["Dimensions"] == STACK_DIMENSION
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)


def test_a_meta_removal_sent_unchecked_has_an_hourly_alarm(translated: dict[str, Any]) -> None:
    # A `done` Meta may not have acted on (the ad account's read refused): counted by the
    # worker (tests/integration/test_alarm_metrics.py); an hour, as the cause lasts until fixed.
    alarm = translated["Resources"]["MetaRemovalsUncheckedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("OptOutBridge", "MetaRemovalsUnchecked")
    assert alarm["Dimensions"] == STACK_DIMENSION
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 3600, 0)
    assert alarm["TreatMissingData"] == "notBreaching"


def test_a_resolver_record_that_fails_has_an_alarm(translated: dict[str, Any]) -> None:
    # A failed record beside good ones raises no Lambda error (partial batch response): the
    # resolver counts it as EventsFailed (tests/integration/test_resolver.py).
    alarm = translated["Resources"]["EventsFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("OptOutBridge", "EventsFailed")
    assert alarm["Dimensions"] == STACK_DIMENSION
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)


@pytest.mark.parametrize(
    ("alarm", "metric", "schedule"),
    [
        ("WatchHeartbeatAlarm", "WatchRunFinished", "WatchFunction"),
        ("SweeperHeartbeatAlarm", "SweepRunFinished", "SweeperFunction"),
    ],
)
def test_the_scheduled_functions_alarm_when_no_run_finishes(
    translated: dict[str, Any], alarm: str, metric: str, schedule: str
) -> None:
    # Their other alarms go quiet with no run at all (notBreaching): the heartbeat breaches on
    # missing data, after three of the function's schedule periods without a finished run.
    props = translated["Resources"][alarm]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("OptOutBridge", metric)
    assert props["Dimensions"] == STACK_DIMENSION
    assert props["TreatMissingData"] == "breaching"
    assert (props["Statistic"], props["ComparisonOperator"], props["Threshold"]) == (
        "Maximum", "LessThanThreshold", 1,
    )  # fmt: skip
    events = sam.load()["Resources"][schedule]["Properties"]["Events"].values()
    (rate,) = [e["Properties"]["Schedule"] for e in events]
    minutes = int(rate.removeprefix("rate(").split()[0])
    assert props["Period"] == minutes * 60
    assert props["EvaluationPeriods"] == props["DatapointsToAlarm"] == 3


@pytest.mark.parametrize(
    ("alarm", "metric", "rule"),
    [
        # Any re-drive pages: one lost stream record is dropped work (Sum over 5 minutes).
        ("WatchRedrivenAlarm", "WatchRedrivenRequests", ("Sum", 300, 1, 0)),
        # Only an hour in which every run's figures were partial (Minimum over an hour): a run
        # or two after a large import is normal and must not page (README, operations.md).
        ("WatchFiguresPartialAlarm", "WatchFiguresPartial", ("Minimum", 3600, 1, 0)),
        # Any job named to be sent again pages: its message was lost (session 33).
        ("WatchResentJobsAlarm", "WatchResentJobs", ("Sum", 300, 1, 0)),
        # Any part still over the item bound at the most parts (not a split itself: no alarm
        # reads `JobParts`).
        ("JobPartsOverBoundAlarm", "JobPartsOverBound", ("Sum", 300, 1, 0)),
    ],
)
def test_the_watch_alarms_fire_as_their_runbook_rows_say(
    translated: dict[str, Any], alarm: str, metric: str, rule: tuple[str, int, int, int]
) -> None:
    props = translated["Resources"][alarm]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("OptOutBridge", metric)
    assert props["Dimensions"] == STACK_DIMENSION
    statistic, period, evaluation_periods, threshold = rule
    assert (props["Statistic"], props["Period"]) == (statistic, period)
    assert props["EvaluationPeriods"] == evaluation_periods
    assert props.get("DatapointsToAlarm", evaluation_periods) == evaluation_periods
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", threshold)
    # No run, no figures: the heartbeat pages for that, not these.
    assert props["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("runbook", ["docs/operations.md", "README.md"])
def test_every_alarm_has_a_runbook_row(translated: dict[str, Any], runbook: str) -> None:
    rows = (sam.ROOT / runbook).read_text(encoding="utf-8")
    keys = [s.queue_key for s in load_systems(SYSTEMS_JSON).systems]
    for name in _of_type(translated, "AWS::CloudWatch::Alarm"):
        # A system's alarms (brazeDeadLetterAlarm) have one row: <system>DeadLetterAlarm.
        key = next((k for k in keys if name.startswith(k) and name[len(k)].isupper()), "")
        row = f"<system>{name[len(key) :]}" if key else name
        assert f"| `{row}` |" in rows, name


def test_the_resolver_falling_behind_its_stream_has_an_alarm(translated: dict[str, Any]) -> None:
    # Lag nothing else reports until the sweep's first check re-drives the waiting events
    # (review s17 alarms L3): above a batch at the function's timeout, below that check.
    resources = translated["Resources"]
    alarm = resources["ResolverIteratorAgeAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "IteratorAge")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ResolverFunction"}}]
    assert (alarm["Statistic"], alarm["ComparisonOperator"]) == ("Maximum", "GreaterThanThreshold")
    timeout_ms = resources["ResolverFunction"]["Properties"]["Timeout"] * 1000
    first_check_ms = min(SweepSettings().checkpoints).total_seconds() * 1000
    assert timeout_ms < alarm["Threshold"] < first_check_ms
    assert alarm["AlarmActions"] == {
        "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
    }


def test_the_admin_function_has_the_api_s_whole_time_for_the_year_report(
    translated: dict[str, Any],
) -> None:
    # The §7102 year report sums a year of day-shard ledgers in one call: ~12 s of CPU at the
    # Globals' 512 MB and 10 s (review s19 scale SC4). It gets what an HTTP API integration can
    # wait for (30 s, less a second for the answer) and twice the CPU.
    admin = translated["Resources"]["AdminFunction"]["Properties"]
    assert admin["Timeout"] == 29
    assert admin["MemorySize"] >= 1024


@pytest.mark.parametrize("topic", ["", "arn:aws:sns:us-east-1:123456789012:oncall"])
def test_the_stack_says_whom_its_alarms_notify(translated: dict[str, Any], topic: str) -> None:
    # The template's default notifies no one (review s17 alarms M1): an output says so.
    deployed = sam.effective(translated, {"AlarmTopicArn": topic})
    notified = deployed["Outputs"]["AlarmNotifications"]["Value"]
    actions = [a["Properties"].get("AlarmActions")
               for a in _of_type(deployed, "AWS::CloudWatch::Alarm").values()]  # fmt: skip
    if topic:
        assert notified == {"Ref": "AlarmTopicArn"}
        assert actions and all(a == [{"Ref": "AlarmTopicArn"}] for a in actions)
    else:
        assert notified.startswith("NONE: AlarmTopicArn is empty, alarms notify no one")
        assert actions and all(a is None for a in actions)


def test_each_worker_reads_only_its_own_systems_credentials(translated: dict[str, Any]) -> None:
    for system in load_systems(SYSTEMS_JSON).systems:
        role = translated["Resources"][f"{system.queue_key}WorkerRole"]
        secrets = [
            s["Resource"]
            for s in _statements(role)
            if "secretsmanager:GetSecretValue" in _as_list(s["Action"])
        ]
        assert secrets == [
            {
                "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                f"${{AWS::AccountId}}:secret:optout-bridge/systems/{system.name}-??????"
            }
        ]


def test_every_secret_grant_ends_in_the_six_characters_of_a_secrets_arn(
    translated: dict[str, Any],
) -> None:
    """`<name>-*` would also match `<name>-old`, a copy an operator may make (review s19 S9)."""
    roles = _of_type(translated, "AWS::IAM::Role").items()
    grants = [
        (name, resource)
        for name, role in roles
        for s in _statements(role)
        if any(str(a).startswith("secretsmanager:") for a in _as_list(s["Action"]))
        for resource in _as_list(s["Resource"])
    ]
    assert len(grants) >= 5 + len(load_systems(SYSTEMS_JSON).systems)
    for name, resource in grants:
        arn = resource["Fn::Sub"] if isinstance(resource, dict) else resource
        assert arn.endswith("-??????"), (name, arn)


def test_a_worker_may_update_only_its_jobs_attributes_of_a_requests_items(
    translated: dict[str, Any],
) -> None:
    """IAM cannot scope a worker's REQ# writes to its job items by sort key, but it can by
    attribute: not expires_at (TTL would delete an EVENT), nor any a job write does not use
    (review s19 S7)."""
    workers = {n: r for n, r in _of_type(translated, "AWS::IAM::Role").items()
               if n.endswith("WorkerRole")}  # fmt: skip
    assert len(workers) == len(load_systems(SYSTEMS_JSON).systems)
    for name, role in workers.items():
        updates = [s for s in _dynamodb_statements(role)
                   if "dynamodb:UpdateItem" in _as_list(s["Action"])
                   and "REQ#*" in _leading_keys(s)]  # fmt: skip
        assert updates, name
        for statement in updates:
            listed = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
            assert {"pk", "sk", "status", "receipt", "identifiers"} <= set(listed), name
            assert not {"expires_at", "day_pk", "received_at", "opt_out"} & set(listed), name
            returned = statement["Condition"]["StringEqualsIfExists"]["dynamodb:ReturnValues"]
            assert "ALL_NEW" not in returned, name


def test_every_worker_update_of_an_identity_or_a_listing_is_limited_by_attribute(
    translated: dict[str, Any],
) -> None:
    """A worker writes delivery marks on identities (one job_ and one until_ name per purpose)
    and failure listings: no opt_out, choices or link of an identity (deploy36). A purpose
    added to optout/purposes.py needs its two names in scripts/templates/system.yaml."""
    marks = {job_attribute(p) for p in ALL_PURPOSES} | {until_attribute(p) for p in ALL_PURPOSES}
    workers = {n: r for n, r in _of_type(translated, "AWS::IAM::Role").items()
               if n.endswith("WorkerRole")}  # fmt: skip
    assert workers
    for name, role in workers.items():
        limited: dict[str, set[str]] = {}
        for statement in _dynamodb_statements(role):
            if "dynamodb:UpdateItem" not in _as_list(statement["Action"]):
                continue
            (partition,) = _leading_keys(statement)  # one partition a statement
            condition = statement["Condition"].get("ForAllValues:StringEquals", {})
            limited[partition] = set(condition.get("dynamodb:Attributes", ()))
        assert set(limited) == {"REQ#*", "ID#*", "FAILED#*"}, name
        assert all(limited.values()), name
        assert marks <= limited["ID#*"], name
        assert not {"opt_out", "choices", "version", "value"} & limited["ID#*"], name
        assert {"failed_at", "listed_by", "message_of"} <= limited["FAILED#*"], name


def test_only_a_worker_whose_connector_checks_status_later_may_send_to_its_queue(
    translated: dict[str, Any],
) -> None:
    # Only a connector that may answer "submitted" (Google Ads, Segment) makes the worker send
    # itself delayed status checks; any other worker has no reason to inject job messages.
    for system in load_systems(SYSTEMS_JSON).systems:
        role = translated["Resources"][f"{system.queue_key}WorkerRole"]
        sends = [s for s in _statements(role) if "sqs:SendMessage" in _as_list(s["Action"])]
        assert bool(sends) == CONNECTORS[system.type].asynchronous, system.name
    assert {
        s.name for s in load_systems(SYSTEMS_JSON).systems if CONNECTORS[s.type].asynchronous
    } == {
        "google_ads",
        "segment",
    }


def test_every_queue_grant_names_this_stacks_queues_by_arn(translated: dict[str, Any]) -> None:
    # A pattern on the stack's name (<stack>-*-jobs) also matches the queues of a stack whose
    # name starts with "<stack>-" in the same account and region.
    resources = translated["Resources"]
    for name, role in _of_type(translated, "AWS::IAM::Role").items():
        for statement in _statements(role):
            if not any(str(a).startswith("sqs:") for a in _as_list(statement["Action"])):
                continue
            for resource in _as_list(statement["Resource"]):
                (queue, attribute) = resource["Fn::GetAtt"]
                assert (resources[queue]["Type"], attribute) == ("AWS::SQS::Queue", "Arn"), name
    sends = [
        s
        for s in _statements(resources["ResolverFunctionRole"])
        if "sqs:SendMessage" in _as_list(s["Action"])
    ]
    queues = {r["Fn::GetAtt"][0] for s in sends for r in _as_list(s["Resource"])}
    keys = {s.queue_key for s in load_systems(SYSTEMS_JSON).systems}
    assert queues == {f"{k}JobsQueue" for k in keys} | {"ResolverFailureQueue"}


def test_every_queue_refuses_calls_without_tls(translated: dict[str, Any]) -> None:
    """Each queue of the stack has a policy denying sqs:* without TLS, and allowing nothing
    (access stays with the roles' policies): review s19 S10."""
    queues = set(_of_type(translated, "AWS::SQS::Queue"))
    assert len(queues) == 1 + 2 * len(load_systems(SYSTEMS_JSON).systems)
    covered: set[str] = set()
    for policy in _of_type(translated, "AWS::SQS::QueuePolicy").values():
        props = policy["Properties"]
        (statement,) = props["PolicyDocument"]["Statement"]
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
            "Deny",
            "*",
            "sqs:*",
        )
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        named = {q["Ref"] for q in props["Queues"]}
        denied_on = {r["Fn::GetAtt"][0] for r in _as_list(statement["Resource"])}
        assert named == denied_on
        covered |= named
    assert covered == queues


def test_the_admin_and_the_watch_get_no_request_item_by_key(translated: dict[str, Any]) -> None:
    # Both read requests with Query and BatchGetItem; their only GetItems are WATCH and HOLD.
    for function in ("AdminFunction", "WatchFunction"):
        for statement in _dynamodb_statements(translated["Resources"][f"{function}Role"]):
            if "REQ#*" in _leading_keys(statement):
                assert "dynamodb:GetItem" not in _as_list(statement["Action"]), function


# -- functions ------------------------------------------------------------------------------


def test_every_function_runs_arm64_with_json_logs(translated: dict[str, Any]) -> None:
    functions = _of_type(translated, "AWS::Lambda::Function")
    assert {"CaptureFunction", "AdminFunction", "ResolverFunction"} <= set(functions)
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Architectures"] == ["arm64"], name
        assert props["LoggingConfig"]["LogFormat"] == "JSON", name
        assert props["Runtime"].startswith("python3."), name
        assert props["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": "OptOutTable"}, name


def _observability(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """Each function's (tracing mode, Lambda's system log level) when deployed with these."""
    values = {name: str(spec.get("Default")) for name, spec in template["Parameters"].items()}
    values |= parameters

    def deployed(value: Any) -> Any:
        # A parameter reference resolves; a literal stays as written (and fails the override).
        return values[value["Ref"]] if isinstance(value, dict) and "Ref" in value else value

    return {
        name: (
            deployed(function["Properties"]["TracingConfig"]["Mode"]),
            deployed(function["Properties"]["LoggingConfig"].get("SystemLogLevel")),
        )
        for name, function in _of_type(template, "AWS::Lambda::Function").items()
    }


def test_by_default_every_function_traces_actively_and_logs_lambdas_start_and_report(
    translated: dict[str, Any],
) -> None:
    # Given the stack deployed without the observability parameters
    # When each function's tracing mode and system log level are resolved
    deployed = _observability(translated, {})
    # Then every function keeps X-Ray tracing and Lambda's START/REPORT (INFO) records
    assert len(deployed) >= 3
    assert set(deployed.values()) == {("Active", "INFO")}


@pytest.mark.parametrize(
    ("tracing", "level"), [("PassThrough", "WARN"), ("Active", "DEBUG"), ("PassThrough", "INFO")]
)
def test_every_functions_tracing_and_system_log_level_follow_the_parameters(
    translated: dict[str, Any], tracing: str, level: str
) -> None:
    # Given a deploy that chooses a tracing mode and a system log level
    parameters = {"TracingMode": tracing, "SystemLogLevel": level}
    # When each function's settings are resolved
    deployed = _observability(translated, parameters)
    # Then no function keeps a literal of its own: every one follows both parameters
    assert {name: got for name, got in deployed.items() if got != (tracing, level)} == {}


def test_the_observability_parameters_allow_only_lambdas_choices() -> None:
    # Given the template's parameters
    parameters = sam.load()["Parameters"]
    # Then both offer exactly Lambda's own values (TracingConfig.Mode, SystemLogLevel), a
    # typo is refused at deploy time, and the defaults keep traces and START/REPORT records
    assert parameters["TracingMode"]["AllowedValues"] == ["Active", "PassThrough"]
    assert parameters["TracingMode"]["Default"] == "Active"
    assert parameters["SystemLogLevel"]["AllowedValues"] == ["DEBUG", "INFO", "WARN"]
    assert parameters["SystemLogLevel"]["Default"] == "INFO"


def test_tracer_never_captures_handler_answers_or_errors(translated: dict[str, Any]) -> None:
    for name, function in _of_type(translated, "AWS::Lambda::Function").items():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", name
        assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false", name


def test_the_capture_function_serves_only_the_public_routes() -> None:
    assert _routes("CaptureFunction") == PUBLIC_ROUTES
    events = sam.load()["Resources"]["CaptureFunction"]["Properties"]["Events"].values()
    assert not [e for e in events if e["Properties"].get("Auth")]


def test_the_admin_function_serves_the_iam_routes_all_behind_aws_iam() -> None:
    assert _routes("AdminFunction") == IAM_ROUTES
    for event in sam.load()["Resources"]["AdminFunction"]["Properties"]["Events"].values():
        assert event["Properties"]["Auth"] == {"Authorizer": "AWS_IAM"}


def test_capture_has_reserved_concurrency(translated: dict[str, Any]) -> None:
    props = translated["Resources"]["CaptureFunction"]["Properties"]
    assert props["ReservedConcurrentExecutions"] == {"Ref": "CaptureReservedConcurrency"}


def test_only_capture_admin_and_the_watch_may_read_the_hash_key(
    translated: dict[str, Any],
) -> None:
    # The watch only to compare it with its first run's fingerprint (ops/key_check.py)
    readers = {
        name.removesuffix("Role")
        for name, role in _of_type(translated, "AWS::IAM::Role").items()
        for s in _statements(role)
        if "secretsmanager:GetSecretValue" in _as_list(s["Action"])
        and "hash-key" in json.dumps(s["Resource"])
    }
    assert readers == {"CaptureFunction", "AdminFunction", "WatchFunction"}


# -- the HTTP API -------------------------------------------------------------------------


def test_cors_allows_no_credentials() -> None:
    cors = sam.load()["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    assert cors["AllowCredentials"] is False
    assert cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}


def test_every_post_route_is_throttled_below_the_get_default() -> None:
    template = sam.load()
    defaults = {n: p["Default"] for n, p in template["Parameters"].items() if "Default" in p}
    api = template["Resources"]["HttpApi"]["Properties"]
    get_rate = defaults[api["DefaultRouteSettings"]["ThrottlingRateLimit"]["Ref"]]
    posts = {f"{m} {p}" for m, p in PUBLIC_ROUTES | IAM_ROUTES if m == "POST"}
    assert set(api["RouteSettings"]) == posts
    for route, settings in api["RouteSettings"].items():
        rate = settings["ThrottlingRateLimit"]
        rate = defaults[rate["Ref"]] if isinstance(rate, dict) else rate
        assert rate < get_rate, route


def _access_log_fields() -> dict[str, str]:
    """The API's access line as a JSON object of its fields (a `!Sub` text: `${AWS::StackName}`
    is left as written)."""
    access_log = sam.load()["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]
    fields: dict[str, str] = json.loads(access_log["Format"]["Fn::Sub"])
    return fields


def test_the_access_log_names_the_caller_of_each_iam_route_and_no_personal_data() -> None:
    """Which operator (role and session) called which admin route: the signer's ARN, empty on
    public routes (review s19 S3); never the source IP, the path or the query string."""
    fields = _access_log_fields()
    assert fields["caller"] == "$context.identity.userArn"
    assert not {"$context.identity.sourceIp", "$context.path"} & set(fields.values())


def test_api_gateway_refusing_public_posts_has_an_alarm(translated: dict[str, Any]) -> None:
    # An HTTP API publishes no throttle metric: a 429 on the public POST routes is counted from
    # the access log (the capture function answers no 429 of its own).
    resources = translated["Resources"]
    fields = _access_log_fields()
    assert (fields["status"], fields["routeKey"]) == ("$context.status", "$context.routeKey")
    log_filter = resources["PublicPostsThrottledFilter"]["Properties"]
    assert log_filter["LogGroupName"] == {"Ref": "ApiAccessLogGroup"}
    pattern = log_filter["FilterPattern"]["Fn::Sub"]
    assert '$.status = "429"' in pattern
    assert '$.service = "${AWS::StackName}"' in pattern
    public_posts = {f"{m} {p}" for m, p in PUBLIC_ROUTES if m == "POST"}
    assert set(re.findall(r'\$\.routeKey = "([^"]+)"', pattern)) == public_posts
    (metric,) = log_filter["MetricTransformations"]
    alarm = resources["PublicPostsThrottledAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        metric["MetricNamespace"], metric["MetricName"],
    )  # fmt: skip
    # The metric's one dimension is the access line's service field (the stack's name), as
    # every other alarm on the namespace has it.
    assert metric["Dimensions"] == [{"Key": "service", "Value": "$.service"}]
    assert fields["service"] == "${AWS::StackName}"
    assert alarm["Dimensions"] == STACK_DIMENSION
    assert (alarm["Statistic"], alarm["Threshold"]) == ("Sum", 0)


@pytest.mark.parametrize(
    ("name", "metric", "emitter"),
    [
        ("CaptureErrorsAlarm", "CaptureUnavailable", "layers/common/python/optout/store/busy.py"),
        ("SweeperErrorsAlarm", "SweepChecksFailed", "functions/sweeper/app.py"),
    ],
)
def test_a_failure_answered_instead_of_raised_counts_as_the_functions_error(
    translated: dict[str, Any], name: str, metric: str, emitter: str
) -> None:
    # Review s17 F2, F8: a throttled table is answered 503 by the capture, and a failed read
    # leaves one request unchecked by the sweep, instead of raising; each is counted, and the
    # function's errors alarm sums it with Lambda's Errors.
    alarm = translated["Resources"][name]["Properties"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {(m["Namespace"], m["MetricName"]) for m in stats.values()} == {
        ("AWS/Lambda", "Errors"), ("OptOutBridge", metric),
    }  # fmt: skip
    assert f'"{metric}"' in (sam.ROOT / emitter).read_text(encoding="utf-8")
    (summed,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert set(re.findall(r"FILL\((\w+), 0\)", summed["Expression"])) == set(stats)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_a_surge_of_new_requests_has_an_alarm_before_vendor_quotas_run_out(
    translated: dict[str, Any],
) -> None:
    # Both capture metrics the function emits (its EMF names), summed over 5 minutes, against a
    # deployer's threshold (review s16 amplify A8: no alarm watched the capture rate)
    capture = (sam.ROOT / "functions" / "capture_api" / "app.py").read_text(encoding="utf-8")
    alarm = translated["Resources"]["CaptureSurgeAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    names = {stat["Metric"]["MetricName"] for stat in stats.values()}
    assert names == {"OptOutCaptured", "ConsentCaptured"}
    assert all(f'"{name}"' in capture for name in names)
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "OptOutBridge" and stat["Stat"] == "Sum"
        assert stat["Metric"]["Dimensions"] == STACK_DIMENSION
    (summed,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert set(re.findall(r"FILL\((\w+), 0\)", summed["Expression"])) == set(stats)
    assert alarm["Threshold"] == {"Ref": "CaptureSurgeThreshold"}
    assert alarm["TreatMissingData"] == "notBreaching"


def test_the_surge_alarms_default_fires_below_a_third_of_one_post_routes_throttle() -> None:
    # At 15,000 (one route's whole 5 minutes at 50/s) a flood paced under the throttle fired
    # neither this alarm nor PublicPostsThrottledAlarm (review s17 alarms M2). The rule
    # docs/deploy.md states: at most PostThrottleRateLimit x 300 / 3.
    parameters = sam.load()["Parameters"]
    threshold = parameters["CaptureSurgeThreshold"]["Default"]
    route_rate = parameters["PostThrottleRateLimit"]["Default"]
    assert threshold <= route_rate * 300 / 3
    assert parameters["CaptureSurgeThreshold"]["MinValue"] <= threshold


# WRU of one choice toggled on a browser asserting 20 identifiers (review s31 abuse F1,
# measured with bench/counting.py), against a plain device's 4.
TOGGLE_ON_A_20_EDGE_DEVICE_WRU = 106


def test_the_tables_write_units_have_an_alarm_whatever_the_post_count(
    translated: dict[str, Any],
) -> None:
    # Posts under CaptureSurgeThreshold that each rewrite 20 edges cost ~19 USD a day with no
    # alarm (review s31 abuse F1): the table's consumed write units, over CaptureSurgeAlarm's
    # 5 minutes, against a deployer's threshold.
    alarm = translated["Resources"]["TableWriteSurgeAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/DynamoDB", "ConsumedWriteCapacityUnits",
    )  # fmt: skip
    assert alarm["Dimensions"] == [{"Name": "TableName", "Value": {"Ref": "OptOutTable"}}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Sum", 300, 1)
    assert alarm["Threshold"] == {"Ref": "WriteSurgeThreshold"}
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == {
        "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
    }


def test_the_write_alarms_default_passes_a_surge_of_normal_opt_outs_not_a_toggle_loop() -> None:
    # Above what CaptureSurgeThreshold's worth of the stated mix writes (bench/guard.json's
    # ceiling per opt-out), so real traffic fires CaptureSurgeAlarm first; below what a third
    # of that many toggles on a 20-edge browser write, so such a loop fires it at a third of
    # the posts CaptureSurgeAlarm needs.
    parameters = sam.load()["Parameters"]
    threshold = parameters["WriteSurgeThreshold"]["Default"]
    posts = parameters["CaptureSurgeThreshold"]["Default"]
    guard = json.loads((sam.ROOT / "bench" / "guard.json").read_text(encoding="utf-8"))
    normal = max(guard["wru_per_opt_out_max"].values())
    assert posts * normal < threshold < posts / 3 * TOGGLE_ON_A_20_EDGE_DEVICE_WRU
    assert parameters["WriteSurgeThreshold"]["MinValue"] <= threshold


# -- least privilege ------------------------------------------------------------------------


def test_no_role_allows_wildcard_actions(translated: dict[str, Any]) -> None:
    for name, role in _of_type(translated, "AWS::IAM::Role").items():
        for statement in _statements(role):
            for action in _as_list(statement["Action"]):
                assert "*" not in action, (name, action)


def test_dynamodb_permissions_name_the_table_and_its_partitions(
    translated: dict[str, Any],
) -> None:
    for name, role in _of_type(translated, "AWS::IAM::Role").items():
        for statement in _dynamodb_statements(role):
            resources = [json.dumps(r) for r in _as_list(statement["Resource"])]
            assert all(TABLE_ARN in r for r in resources), (name, resources)
            table_actions = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                             "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                             "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"}  # fmt: skip
            if all('/index/ByDay"' in r for r in resources):
                # The index projects request ids, times, deadlines and sources only: read it.
                assert _as_list(statement["Action"]) == ["dynamodb:Query"], name
                continue
            if table_actions & set(_as_list(statement["Action"])):
                prefixes = _leading_keys(statement)
                assert prefixes, (name, "no dynamodb:LeadingKeys condition")
                partitions = {"REQ", "ID", "HOLD", "FAILED", "WATCH", "LEDGER", "RCV",  # RCV: ByDay
                              "RETIRED", "BACKFILL", "SWEEP"}  # fmt: skip
                assert all(p.split("#")[0] in partitions for p in prefixes), name


def test_capture_may_write_requests_and_read_device_state_but_not_query_identities(
    translated: dict[str, Any],
) -> None:
    granted = {
        action: _leading_keys(s)
        for s in _dynamodb_statements(translated["Resources"]["CaptureFunctionRole"])
        for action in _as_list(s["Action"])
    }
    assert granted == {
        "dynamodb:PutItem": ["REQ#*"],
        "dynamodb:Query": ["REQ#*"],
        # the earlier jobs a status cites as its proof, and its systems' retirements
        "dynamodb:BatchGetItem": ["REQ#*", "RETIRED"],
        "dynamodb:GetItem": ["ID#device_id#*"],
    }


def test_no_role_attaches_a_managed_policy(translated: dict[str, Any]) -> None:
    # SAM's roles for functions carry AWS managed policies whose Resource is "*" (any queue of
    # the account, any table's stream): every function has its own explicit role instead.
    for name, role in _of_type(translated, "AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], name
    assert not _of_type(translated, "AWS::IAM::Policy")


def test_each_function_writes_logs_to_its_own_log_group_only(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    for name, function in _of_type(translated, "AWS::Lambda::Function").items():
        role = resources[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        logs = [s for s in _statements(role) if "logs:" in json.dumps(s["Action"])]
        assert logs == [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
            }
        ], name
        star = [s for s in _statements(role) if s["Resource"] == "*"]
        xray = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        assert [s["Action"] for s in star] == [xray], name


def test_every_function_has_its_own_role(translated: dict[str, Any]) -> None:
    functions = _of_type(translated, "AWS::Lambda::Function").values()
    roles = [json.dumps(f["Properties"]["Role"]) for f in functions]
    assert len(roles) == len(set(roles))


def test_invoker_roles_may_only_invoke_their_own_routes(translated: dict[str, Any]) -> None:
    expected = {
        "LinkerRole": ["POST/v1/identity-links"],
        "OperatorRole": ["GET/v1/admin/*", "POST/v1/admin/*"],
    }
    for name, routes in expected.items():
        statement = _statements(translated["Resources"][name])[0]
        assert statement["Action"] == "execute-api:Invoke"
        arns = [r["Fn::Sub"] for r in _as_list(statement["Resource"])]
        assert arns == [
            "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
            f"${{HttpApi}}/${{Stage}}/{route}"
            for route in routes
        ]
        assert translated["Outputs"][f"{name}Arn"]["Value"] == {"Fn::GetAtt": [name, "Arn"]}


def test_the_operator_role_may_read_this_stack_alone_and_the_linker_role_nothing_more(
    translated: dict[str, Any],
) -> None:
    # `optout --stack-name` reads IamApiUrl with the credentials it signs with: a profile
    # assuming OperatorRole must be allowed DescribeStacks, on this stack only (review s30
    # newcomer F1: the role could only invoke, so the CLI stopped at CloudFormation).
    (linker,) = _statements(translated["Resources"]["LinkerRole"])
    assert linker["Action"] == "execute-api:Invoke"
    _, describe = _statements(translated["Resources"]["OperatorRole"])
    assert describe == {
        "Effect": "Allow",
        "Action": "cloudformation:DescribeStacks",
        "Resource": {"Ref": "AWS::StackId"},
    }


def test_deploy_md_names_every_admin_route_in_who_may_call_what() -> None:
    # Each route's last named segment is in docs/deploy.md's admin row (review s30 newcomer
    # F8: it left out backfill and retire)
    deploy = (sam.ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = deploy.split("## Who may call what", 1)[1].split("\n## ", 1)[0]
    (row,) = [line for line in section.splitlines() if "every route under `/v1/admin/`" in line]
    missing = []
    for method, path in sorted(_routes("AdminFunction")):
        if not path.startswith("/v1/admin/"):
            continue
        named = [p for p in path.removeprefix("/v1/admin/").split("/") if not p.startswith("{")]
        if not re.search(rf"[`/ ]{re.escape(named[-1])}[`/]", row):
            missing.append(f"{method} {path}")
    assert missing == []


def test_the_admin_allow_lists_are_the_invoker_roles(translated: dict[str, Any]) -> None:
    env = translated["Resources"]["AdminFunction"]["Properties"]["Environment"]["Variables"]
    for variable, role in (("LINKER_PRINCIPALS", "LinkerRole"), ("OPERATOR_PRINCIPALS",
                                                                 "OperatorRole")):  # fmt: skip
        name = translated["Resources"][role]["Properties"]["RoleName"]["Fn::Sub"]
        assert env[variable] == {
            "Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{name}"
        }


# -- data: the table, the key, the secret ----------------------------------------------------


def test_table_has_new_image_stream_pitr_kms_and_ttl(translated: dict[str, Any]) -> None:
    props = translated["Resources"]["OptOutTable"]["Properties"]
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert props["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "DataKey"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_backups_recovery_period_is_a_documented_parameter_of_35_days(
    translated: dict[str, Any],
) -> None:
    # Review s18 S5: deleted items and dropped identifier values stay restorable for the
    # recovery period; it was AWS's unstated default, and no document named it
    pitr = translated["Resources"]["OptOutTable"]["Properties"]["PointInTimeRecoverySpecification"]
    assert pitr["RecoveryPeriodInDays"] == {"Ref": "PointInTimeRecoveryDays"}
    parameter = sam.load()["Parameters"]["PointInTimeRecoveryDays"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (35, 1, 35)
    deploy = (sam.ROOT / "docs" / "deploy.md").read_text()
    assert "| `PointInTimeRecoveryDays` | `35` (1\N{EN DASH}35) |" in deploy


def test_table_keys_are_string_pk_and_sk(translated: dict[str, Any]) -> None:
    props = translated["Resources"]["OptOutTable"]["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types["pk"] == types["sk"] == "S"


# The evidence, what reads it, and the operators' audit trail (docs/evidence-integrity.md):
# AdminLogGroup and ApiAccessLogGroup went with the stack before review s20 stacks K6.
@pytest.mark.parametrize(
    "resource",
    [
        "OptOutTable",
        "DataKey",
        "HashKeySecret",
        "IdentityTokenSecret",
        "AdminLogGroup",
        "ApiAccessLogGroup",
    ],
)
def test_the_table_its_keys_and_the_audit_logs_survive_stack_deletion(
    translated: dict[str, Any], resource: str
) -> None:
    body = translated["Resources"][resource]
    assert (body["DeletionPolicy"], body["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_retained_log_groups_have_generated_names(translated: dict[str, Any]) -> None:
    # A retained group with a fixed name would fail the next stack of the same name on create.
    for name, group in _of_type(translated, "AWS::Logs::LogGroup").items():
        assert "LogGroupName" not in group.get("Properties", {}), name


@pytest.mark.parametrize(
    ("secret", "generated"),
    [
        ("HashKeySecret", {"PasswordLength": 64, "ExcludePunctuation": True}),
        (
            "IdentityTokenSecret",
            {
                "SecretStringTemplate": '{"kid": "k1"}',
                "GenerateStringKey": "key",
                "PasswordLength": 64,
                "ExcludePunctuation": True,
            },
        ),
    ],
)
def test_the_long_lived_secrets_generation_settings_never_change(
    translated: dict[str, Any], secret: str, generated: dict[str, Any]
) -> None:
    """An edit of GenerateSecretString makes CloudFormation put a new generated value on the
    next deploy (review s20 stacks K9): a new HMAC key orphans every lookup key, a new token
    key refuses every token the login backend signs. Pinned, so such an edit is a decision."""
    props = translated["Resources"][secret]["Properties"]
    assert props["GenerateSecretString"] == generated


# Each ARN parameter's shape, checked before any resource exists (review s20 stacks K7): the
# same mistake found mid-create rolls back and leaves the retained table, key and secrets.
ARN_SHAPES = {
    "AlarmTopicArn": (
        ["", "arn:aws:sns:eu-west-1:123456789012:optout-bridge-alarms"],
        ["optout-bridge-alarms", "arn:aws:sqs:eu-west-1:123456789012:alarms", " "],
    ),
    # A bare account ID is a principal IAM takes (as `…:root`); a comma-joined list is not one
    # principal and IAM refuses it mid-create (review s20 diff A5).
    "LinkerTrustedPrincipalArn": (
        [
            "ACCOUNT",
            "arn:aws:iam::123456789012:role/backend",
            "arn:aws:iam::210987654321:root",
            "210987654321",
        ],
        [
            "account",
            "12345678901",
            "1234567890123",
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/b",
        ],
    ),
    "OperatorTrustedPrincipalArn": (
        ["ACCOUNT", "arn:aws:iam::123456789012:role/privacy-operators", "123456789012"],
        [
            "role/privacy-operators",
            "arn:aws:s3:::bucket",
            "123456789012,210987654321",
            "arn:aws:iam::123456789012:role/ops,",
        ],
    ),
    "ApiCertificateArn": (
        ["", "arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"],
        ["0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "arn:aws:iam::123456789012:server-certificate/x"],
    ),
    "EdgeCertificateArn": (
        ["", "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"],
        ["arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"],
    ),
    "EdgeWebAclArn": (
        [
            "",
            "arn:aws:wafv2:us-east-1:123456789012:global/webacl/EdgeWebAcl-Ab12Cd34/"
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        ],
        [
            "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/acl/"
            "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        ],
    ),
}


@pytest.mark.parametrize("parameter", sorted(ARN_SHAPES))
def test_arn_parameters_refuse_what_would_fail_mid_create(parameter: str) -> None:
    declared = sam.load()["Parameters"][parameter]
    pattern = re.compile(declared["AllowedPattern"])  # CloudFormation matches the whole value
    good, bad = ARN_SHAPES[parameter]
    assert [v for v in good if not pattern.fullmatch(v)] == []
    assert [v for v in bad if pattern.fullmatch(v)] == []
    assert pattern.fullmatch(str(declared["Default"]))


@pytest.mark.parametrize("parameter", ["ApiDomainName", "EdgeDomainName"])
def test_domain_parameters_take_a_bare_lower_case_host_name(parameter: str) -> None:
    # A URL or a path fails at ApiDomain or CloudFront mid-create, after the retained table
    # exists (review s30 deploy F5); empty stays allowed (the edge off, or no alias).
    declared = sam.load()["Parameters"][parameter]
    pattern = re.compile(declared["AllowedPattern"])
    good = ["", "privacy.example.com", "api-origin.privacy.example.com", "a.b-c.example",
            "x1.example.xn--p1ai"]  # fmt: skip
    bad = ["https://api.example.com", "api.example.com/", "api.example.com:443",
           "API.example.com", "api.example.com.", "localhost", "-api.example.com",
           "api..example.com", "*.example.com", "api.example.com,edge.example.com",
           " api.example.com"]  # fmt: skip
    assert [v for v in good if not pattern.fullmatch(v)] == []
    assert [v for v in bad if pattern.fullmatch(v)] == []
    assert pattern.fullmatch(str(declared["Default"]))
    assert "host name" in declared["ConstraintDescription"]


def test_allowed_origins_take_https_origins_and_http_only_on_this_machine() -> None:
    # CloudFormation matches a CommaDelimitedList's pattern against each item. An http:// entry
    # elsewhere would let a sibling subdomain or the network path set the cookies the webform's
    # post is read with (review s29 stranger S3); a path or trailing slash never equals Origin
    declared = sam.load()["Parameters"]["AllowedOrigins"]
    pattern = re.compile(declared["AllowedPattern"])
    good = ["https://www.example.com", "https://shop.example.com:8443", "*",
            "http://127.0.0.1:8741", "http://[::1]:3288", "http://localhost"]  # fmt: skip
    bad = ["http://shop.example.com", "http://192.168.1.5:8741", "https://www.example.com/",
           "https://Www.example.com", "https://a.example/privacy", "http://localhost.evil.example",
           "http://127.0.0.1.evil.example", ""]  # fmt: skip
    assert [v for v in good if not pattern.fullmatch(v)] == []
    assert [v for v in bad if pattern.fullmatch(v)] == []
    assert pattern.fullmatch(str(declared["Default"]))


@pytest.mark.parametrize(
    "parameter",
    [
        "PostThrottleRateLimit",
        "PostThrottleBurstLimit",
        "GetThrottleRateLimit",
        "GetThrottleBurstLimit",
    ],
)
def test_a_throttle_of_zero_is_refused_at_deploy(parameter: str) -> None:
    # 0 deploys, and API Gateway then answers every request of those routes 429 (review s20
    # stacks K7).
    declared = sam.load()["Parameters"][parameter]
    assert declared["MinValue"] >= 1
    assert declared["Default"] >= declared["MinValue"]


def test_the_hash_key_is_encrypted_with_the_data_key(translated: dict[str, Any]) -> None:
    props = translated["Resources"]["HashKeySecret"]["Properties"]
    assert props["KmsKeyId"] == {"Ref": "DataKey"}


def test_the_key_policy_names_every_function_role(translated: dict[str, Any]) -> None:
    statements = translated["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    (named,) = [s for s in statements if s["Sid"] == "FunctionRoles"]
    principals = {p["Fn::GetAtt"][0] for p in named["Principal"]["AWS"]}
    functions = _of_type(translated, "AWS::Lambda::Function").values()
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions}
    assert principals == roles


def test_nobody_may_decrypt_with_the_key_except_through_dynamodb_or_secrets_manager(
    translated: dict[str, Any],
) -> None:
    statements = translated["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    for statement in statements:
        actions = _as_list(statement["Action"])
        if any(a in ("kms:*", "kms:Decrypt") for a in actions):
            services = statement["Condition"]["StringEquals"]["kms:ViaService"]
            named = [s["Fn::Sub"].split(".")[0] for s in services]
            assert named and set(named) <= {"dynamodb", "secretsmanager"}, statement["Sid"]


def test_only_a_role_that_reads_a_secret_may_decrypt_through_secrets_manager(
    translated: dict[str, Any],
) -> None:
    # The resolver and the sweeper read no secret: until session 36 the key let them (and
    # every function role) decrypt through Secrets Manager all the same (deploy36).
    resources = translated["Resources"]
    statements = resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    through: dict[str, set[str]] = {"dynamodb": set(), "secretsmanager": set()}
    for statement in statements:
        if statement["Action"] != "kms:Decrypt" or "Principal" not in statement:
            continue
        principals = _as_list(statement["Principal"]["AWS"])
        roles = {p["Fn::GetAtt"][0] for p in principals if isinstance(p, dict)}
        for service in statement["Condition"]["StringEquals"]["kms:ViaService"]:
            through[service["Fn::Sub"].split(".")[0]] |= roles
    readers = {
        name
        for name, role in _of_type(translated, "AWS::IAM::Role").items()
        if any("secretsmanager:GetSecretValue" in _as_list(s["Action"]) for s in _statements(role))
    }
    functions = _of_type(translated, "AWS::Lambda::Function").values()
    assert through["secretsmanager"] == readers
    assert {"ResolverFunctionRole", "SweeperFunctionRole"}.isdisjoint(readers)
    assert through["dynamodb"] == {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions}


def test_no_key_policy_statement_lets_a_principal_grant_itself_the_key(
    translated: dict[str, Any],
) -> None:
    """kms:Create* (or any wildcard matching CreateGrant) would let any principal IAM allows
    CreateGrant give itself, or another account, Decrypt outside DynamoDB: review s19 S2."""
    statements = translated["Resources"]["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    granting = [
        s
        for s in statements
        if any(fnmatchcase("kms:CreateGrant", a) for a in _as_list(s["Action"]))
    ]
    assert granting
    for statement in granting:
        assert _as_list(statement["Action"]) == ["kms:CreateGrant"], statement["Sid"]
        condition = statement["Condition"]
        assert condition["Bool"] == {"kms:GrantIsForAWSResource": True}, statement["Sid"]
        assert condition["StringEquals"]["kms:ViaService"], statement["Sid"]


def test_the_key_states_the_longest_deletion_waiting_period(translated: dict[str, Any]) -> None:
    assert translated["Resources"]["DataKey"]["Properties"]["PendingWindowInDays"] == 30


# -- the edge ---------------------------------------------------------------------------------


def test_without_the_edge_no_edge_resources_and_the_execute_api_url_stays(
    translated: dict[str, Any],
) -> None:
    deployed = sam.effective(translated, {})
    assert not EDGE_RESOURCES & set(deployed["Resources"])
    assert "EdgeWebAcl" not in deployed["Resources"]
    assert _execute_api_disabled(deployed) is False
    assert "execute-api" in deployed["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]


def test_with_the_edge_cloudfront_and_waf_front_the_api_and_execute_api_is_off(
    translated: dict[str, Any],
) -> None:
    deployed = sam.effective(translated, EDGE_ON)
    resources = deployed["Resources"]
    assert EDGE_RESOURCES | {"EdgeWebAcl"} <= set(resources)
    assert _execute_api_disabled(deployed) is True
    config = resources["EdgeDistribution"]["Properties"]["DistributionConfig"]
    assert config["WebACLId"] == {"Fn::GetAtt": ["EdgeWebAcl", "Arn"]}
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Ref": "ApiDomainName"}
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert resources["EdgeWebAcl"]["Properties"]["Scope"] == "CLOUDFRONT"


def test_the_edge_answers_ipv4_only_so_its_per_ip_limits_hold(translated: dict[str, Any]) -> None:
    # The WAF's rate rules count each address apart and one IPv6 client holds a /64 of them;
    # CloudFormation documents no default for IPV6Enabled, so the stack says it (review s31
    # abuse F6).
    resources = sam.effective(translated, EDGE_ON)["Resources"]
    config = resources["EdgeDistribution"]["Properties"]["DistributionConfig"]
    assert config["IPV6Enabled"] is False


def test_the_edge_forwards_gpc_and_viewer_country_but_not_host(translated: dict[str, Any]) -> None:
    resources = sam.effective(translated, EDGE_ON)["Resources"]
    config = resources["EdgeOriginRequestPolicy"]["Properties"]["OriginRequestPolicyConfig"]
    headers = {h.lower() for h in config["HeadersConfig"]["Headers"]}
    assert config["HeadersConfig"]["HeaderBehavior"] == "whitelist"
    assert {"sec-gpc", "cloudfront-viewer-country", "cloudfront-viewer-country-region"} <= headers
    assert "host" not in headers
    assert len(headers) <= 10  # CloudFront's limit per origin request policy


def test_the_waf_limits_posts_and_gets_per_ip_and_runs_the_aws_common_rules(
    translated: dict[str, Any],
) -> None:
    acl = sam.effective(translated, EDGE_ON)["Resources"]["EdgeWebAcl"]["Properties"]
    rules = {rule["Name"]: rule["Statement"] for rule in acl["Rules"]}
    # every other method too (review s16 amplify A5: one IP could spend the GET throttle and
    # the capture function's reserved concurrency, which the opt-out POSTs share; review s24
    # stranger E1: HEAD, PUT, PATCH and DELETE reach the capture function through $default)
    scopes: dict[str, Any] = {}
    for name in ("post-rate-per-ip", "get-rate-per-ip"):
        rate = rules[name]["RateBasedStatement"]
        assert rate["AggregateKeyType"] == "IP" and rate["EvaluationWindowSec"] == 300
        scopes[name] = rate["ScopeDownStatement"]
    method = scopes["post-rate-per-ip"]["ByteMatchStatement"]
    assert (method["FieldToMatch"], method["SearchString"]) == ({"Method": {}}, "POST")
    assert method["PositionalConstraint"] == "EXACTLY"
    # the other rule counts exactly what the POST rule does not
    assert scopes["get-rate-per-ip"] == {"NotStatement": {"Statement": scopes["post-rate-per-ip"]}}
    priorities = [rule["Priority"] for rule in acl["Rules"]]
    assert len(set(priorities)) == len(priorities)
    managed = {s["ManagedRuleGroupStatement"]["Name"] for s in rules.values()
               if "ManagedRuleGroupStatement" in s}  # fmt: skip
    assert "AWSManagedRulesCommonRuleSet" in managed


@pytest.mark.parametrize("template", ["template.yaml", "edge-waf.yaml"])
def test_the_waf_answers_a_rate_limited_post_429_in_the_apis_error_shape(template: str) -> None:
    # Given the edge's WebACL, in the stack and in the stand-alone template
    acl = sam.load_template(sam.ROOT / template)["Resources"]["EdgeWebAcl"]["Properties"]
    rules = {rule["Name"]: rule for rule in acl["Rules"]}

    # When a per-IP rate rule blocks a POST (or a GET: the same answer)
    block = rules["post-rate-per-ip"]["Action"]["Block"]
    assert rules["get-rate-per-ip"]["Action"]["Block"] == block

    # Then it answers 429 with Retry-After (a client retries; WAF's default 403 reads as final)
    response = block["CustomResponse"]
    assert response["ResponseCode"] == 429
    (header,) = response["ResponseHeaders"]
    assert header["Name"] == "Retry-After" and int(header["Value"]) > 0
    # and a body in the API's error envelope
    body = acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    error = json.loads(body["Content"])["error"]
    assert (error["code"], error["field"]) == ("rate_limited", None)
    # while an attack signature (the managed groups) keeps WAF's own final 403
    for name in ("aws-common-rule-set", "aws-known-bad-inputs"):
        assert rules[name]["OverrideAction"] == {"None": {}}


def test_cloudfront_proves_itself_to_the_capture_function(translated: dict[str, Any]) -> None:
    resources = sam.effective(translated, EDGE_ON)["Resources"]
    config = resources["EdgeDistribution"]["Properties"]["DistributionConfig"]
    (header,) = config["Origins"][0]["OriginCustomHeaders"]
    assert header["HeaderName"].lower() == "x-origin-verify"
    assert "${EdgeOriginSecret}" in header["HeaderValue"]["Fn::Sub"]
    env = resources["CaptureFunction"]["Properties"]["Environment"]["Variables"]
    assert env["EDGE_SECRET_NAME"] == {"Ref": "EdgeOriginSecret"}
    edge_off = sam.effective(translated, {})["Resources"]
    assert "EdgeOriginSecret" not in edge_off
    assert (
        "EDGE_SECRET_NAME"
        not in edge_off["CaptureFunction"]["Properties"]["Environment"]["Variables"]
    )


def test_an_existing_web_acl_is_used_instead_of_creating_one(translated: dict[str, Any]) -> None:
    existing = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/abc"
    deployed = sam.effective(translated, EDGE_ON | {"EdgeWebAclArn": existing})
    assert "EdgeWebAcl" not in deployed["Resources"]
    config = deployed["Resources"]["EdgeDistribution"]["Properties"]["DistributionConfig"]
    assert config["WebACLId"] == {"Ref": "EdgeWebAclArn"}


def test_the_edge_refuses_to_deploy_without_an_api_domain() -> None:
    rule = sam.load()["Rules"]["EdgeNeedsAnApiDomain"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnableEdge"}, "true"]}
    asserted = json.dumps(rule["Assertions"])
    assert "ApiDomainName" in asserted and "ApiCertificateArn" in asserted


def test_a_deploy_must_say_who_may_assume_the_invoker_roles() -> None:
    """An empty trust parameter trusted the whole account (review s19 S4): a Rule refuses it,
    always; ACCOUNT says so on purpose."""
    rule = sam.load()["Rules"]["InvokerRolesTrustSomeoneNamed"]
    assert "RuleCondition" not in rule
    asserted = [a["Assert"] for a in rule["Assertions"]]
    for parameter in ("OperatorTrustedPrincipalArn", "LinkerTrustedPrincipalArn"):
        assert {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]} in asserted


def test_the_shipped_deploy_commands_pass_that_rule() -> None:
    """samconfig.toml's overrides (`make deploy`) and the README's production command (whose
    list replaces samconfig's) each name both trust parameters."""
    config = tomllib.loads((sam.ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    overrides = config["default"]["deploy"]["parameters"]["parameter_overrides"]
    readme = (sam.ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"make deploy ARGS=\"--region[^`]*?\"\n", readme)
    for text in (overrides, command):
        for parameter in ("OperatorTrustedPrincipalArn", "LinkerTrustedPrincipalArn"):
            assert re.search(rf"{parameter}=\S", text), (parameter, text)


def test_the_readmes_first_deploy_command_sets_what_it_says_a_first_deploy_sets() -> None:
    """README's production command names every parameter its Configuration section says a
    first deploy sets (review s30 newcomer F4: it left out PrivacyPageUrl and PolicyVersion),
    and each value written out passes the parameter's AllowedPattern. EdgeWebAclArn is only
    for a stack outside us-east-1, as the command's is not."""
    readme = (sam.ROOT / "README.md").read_text(encoding="utf-8")
    (command,) = re.findall(r"make deploy ARGS=\"--region[^`]*?\"\n", readme)
    sentence = readme.split("The ones a first deploy sets:", 1)[1].split("Retention and", 1)[0]
    named = set(re.findall(r"`([A-Z][A-Za-z]+)`", sentence)) - {"EdgeWebAclArn"}
    parameters = sam.load()["Parameters"]
    given = {
        name: value
        for name, value in re.findall(r"\b([A-Z][A-Za-z]+)=(\S+)", command)
        if name in parameters
    }
    assert named - set(given) == set()
    for name, value in given.items():
        pattern = parameters[name].get("AllowedPattern")
        if pattern and not value.startswith("$"):
            assert re.fullmatch(pattern, value.rstrip('"')), (name, value)


def test_an_unchanged_stack_deploys_with_exit_0() -> None:
    """SAM CLI's --fail-on-empty-changeset is on by default: `make deploy` of an unchanged
    stack exited non-zero ("No changes to deploy") and stopped a chain of `&&` upgrade steps
    (review s30 deploy F6). samconfig.toml's key is the option's name (`sam deploy --help`,
    SAM CLI 1.170.0: --fail-on-empty-changeset/--no-fail-on-empty-changeset)."""
    config = tomllib.loads((sam.ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["default"]["deploy"]["parameters"]["fail_on_empty_changeset"] is False


@pytest.mark.parametrize("value", ["ACCOUNT", "arn:aws:iam::123456789012:role/privacy"])
def test_the_invoker_roles_trust_the_named_principal_or_the_account_when_told(
    translated: dict[str, Any], value: str
) -> None:
    account = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    roles = {
        "OperatorRole": "OperatorTrustedPrincipalArn",
        "LinkerRole": "LinkerTrustedPrincipalArn",
    }
    resources = sam.effective(translated, dict.fromkeys(roles.values(), value))["Resources"]
    for role, parameter in roles.items():
        document = resources[role]["Properties"]["AssumeRolePolicyDocument"]
        (statement,) = document["Statement"]
        wanted = account if value == "ACCOUNT" else {"Ref": parameter}
        assert statement["Principal"]["AWS"] == wanted, role


def test_the_stack_creates_a_web_acl_only_in_us_east_1() -> None:
    rule = sam.load()["Rules"]["EdgeWebAclOnlyInUsEast1"]
    assert {"Fn::Equals": [{"Ref": "EdgeWebAclArn"}, ""]} in rule["RuleCondition"]["Fn::And"]
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert "edge-waf.yaml" in assertion["AssertDescription"]


def _execute_api_disabled(deployed: dict[str, Any]) -> bool:
    (server,) = deployed["Resources"]["HttpApi"]["Properties"]["Body"]["servers"]
    flag: bool = server["x-amazon-apigateway-endpoint-configuration"]["disableExecuteApiEndpoint"]
    return flag


# -- the systems config ----------------------------------------------------------------------


def test_the_generator_refuses_a_credentials_name_off_the_naming_rule(tmp_path: Path) -> None:
    systems = json.loads(SYSTEMS_JSON.read_text(encoding="utf-8"))
    systems["systems"][0]["credentials"] = "prod/webhook-creds"
    path = tmp_path / "systems.json"
    path.write_text(json.dumps(systems), encoding="utf-8")
    with pytest.raises(ValueError, match="optout-bridge/systems/"):
        gen_template.sections(path)


def test_deploy_md_parameters_table_gives_each_parameters_default_and_range() -> None:
    """docs/deploy.md's "Parameters" table, read against template.yaml: every parameter has a
    row, its default as the template's (`empty` for "", `required` where a Rule refuses ""),
    and the range the deploy enforces (MinValue/MaxValue) in the default's cell (deploy36:
    `MaxClusterSize`'s minimum and `MaxAssertersPerIdentity`'s range were not there)."""
    text = (sam.ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Parameters\n") :]
    section = section[: section.index("\n### ")]
    cells: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        names, default = [c.strip() for c in line.strip("|").split("|")][:2]
        values = re.findall(r"`([^`]*)`", default)
        for n, name in enumerate(re.findall(r"`(\w+)`", names)):
            cells[name] = (default, values[n] if n < len(values) else "")
    template = sam.load()
    required = {
        a["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"]
        for rule in template["Rules"].values()
        if "RuleCondition" not in rule
        for a in rule["Assertions"]
    }
    parameters = template["Parameters"]
    assert set(cells) == set(parameters)
    for name, spec in parameters.items():
        cell, value = cells[name]
        default = str(spec.get("Default", ""))
        if name in required:
            assert default == "" and cell.startswith("required"), name
        elif default == "":
            assert cell.startswith("empty"), name
        else:
            assert value == default, (name, value, default)
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if low is not None and high is not None:
            assert f"({low}\u2013{high})" in cell, (name, cell)  # an en dash, as the table
        elif low is not None:
            assert re.search(rf"\((min|at least) {low}\)", cell), (name, cell)
