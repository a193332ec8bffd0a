"""Every alarm on the stack's own metrics reads a metric the handlers really publish (review s17
alarms T1).

CloudWatch matches an alarm to its metric by namespace, name and the exact set of dimensions.
A metric renamed in the code or the template, or a dimension added on one side only (a default
`system` dimension in the worker), leaves the alarm watching a metric nobody publishes: blind,
and no other test fails. Each test below drives a failure through the real handlers, reads
the EMF lines they print (what CloudWatch turns into metrics on Lambda: tests/support/emf.py)
and checks that every alarm PROVED lists for it reads a metric published with a value above 0.
Both sides are read as deployed (the alarms from the translated template), so a rename on
either side fails here; the last tests hold PROVED to the template and the tests' Powertools
environment to the functions'.
"""

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from optout import secrets as secret_store
from optout.ops.importer import ImportService
from optout.resolver import parts
from optout.settings import LOCAL_HASH_KEY
from optout.store.codec import serialize
from optout.store.table import Table
from optout.timestamps import iso
from tests.conftest import TEST_ENV, Aws
from tests.integration.test_pending_resend import lost_after_one_answer
from tests.integration.test_sweeper import move_into_the_past
from tests.integration.test_watch import MinutesLeft
from tests.integration.test_watch_backlog import time_for
from tests.integration.test_worker import EMAIL, Stack, stack  # noqa: F401 - the fixture
from tests.support import sam
from tests.support.aws_hooks import session_hooks
from tests.support.emf import (
    STACK_NAME,
    EmittedMetrics,
    MetricKey,
    alarm_metrics,
    log_filter_metrics,
)
from tests.support.http_events import http_event
from tests.support.lambdas import FakeLambdaContext, invoke, load_function
from tests.support.pipeline import Pipeline, build_pipeline
from tests.support.production_secrets import HASH_KEY, TOKEN_KEY, production_secrets
from tests.support.seed import seed_request
from tests.support.tokens import token_for

NAMESPACE = "OptOutBridge"  # the stack's own metrics (optout/observability.py)
PRODUCTION_SYSTEMS = "layers/common/config/systems.json"  # the layer's, as on Lambda
THROTTLED = {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return sam.translate()


@pytest.fixture
def pipe(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    yield build_pipeline(aws, monkeypatch)


def assert_alarms_read_what_was_published(
    translated: dict[str, Any], emitted: EmittedMetrics, test: Callable[..., None]
) -> None:
    alarms = sorted(alarm for alarm, proving in PROVED.items() if proving is test)
    assert alarms, f"{test.__name__} is in no PROVED entry"
    read = alarm_metrics(translated, NAMESPACE)
    published = emitted.totals()
    for alarm in alarms:
        for key in read[alarm]:
            seen = [f"{k}: {v}" for k, v in published.items() if k.name == key.name]
            assert published.get(key, 0) > 0, f"{alarm} reads {key}; published: {seen}"


# -- capture --------------------------------------------------------------------------------


def test_new_opt_outs_and_consent_choices_feed_the_surge_alarm(
    pipe: Pipeline, emitted_metrics: EmittedMetrics, translated: dict[str, Any]
) -> None:
    # When a new opt-out and a new consent choice are captured
    pipe.post("/v1/opt-out", {"email": "surge@example.com"})
    pipe.post("/v1/consent", {"device_id": "dev-surge-aaaaaaaaaaaa", "opt_out": {"sale": True}})
    # Then both metrics CaptureSurgeAlarm sums are published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_new_opt_outs_and_consent_choices_feed_the_surge_alarm
    )


def test_a_store_that_refuses_the_capture_feeds_capture_errors(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given DynamoDB throttling the capture's write past the client's retries
    monkeypatch.setattr("time.sleep", lambda _: None)  # botocore's back-off

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": THROTTLED}, "PutItem")  # type: ignore[arg-type]

    with session_hooks("alarm-capture", pipe.capture.services.cache_clear) as register:
        register("provide-client-params.dynamodb.PutItem", throttle)
        # When an opt-out arrives, it is answered 503 (not raised: Lambda's Errors stays 0)
        answer = invoke(pipe.capture, http_event("POST", "/v1/opt-out", {"email": "t@example.com"}))
    assert answer["statusCode"] == 503
    # Then the metric CaptureErrorsAlarm adds to Lambda's Errors is published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_store_that_refuses_the_capture_feeds_capture_errors
    )


def test_a_token_secret_of_the_wrong_shape_feeds_token_keys_unusable(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given a production container whose token secret was mistyped ("secret" for "key")
    production_secrets(monkeypatch)
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=TOKEN_KEY, SecretString=json.dumps({"kid": "k2", "secret": "n" * 64})
    )
    capture = load_function("capture_api")
    capture.services.cache_clear()
    # When a token-less opt-out comes (taken), then one with a token (taken without the token:
    # our keys cannot verify it)
    bare = {"email": "t@example.com"}
    assert invoke(capture, http_event("POST", "/v1/opt-out", bare))["statusCode"] == 202
    tokened = {**bare, "identity_token": token_for(kid="k2", email="t@example.com")}
    assert invoke(capture, http_event("POST", "/v1/opt-out", tokened))["statusCode"] == 202
    # Then TokenKeysUnusableAlarm's metric is published
    assert_alarms_read_what_was_published(
        translated,
        emitted_metrics,
        test_a_token_secret_of_the_wrong_shape_feeds_token_keys_unusable,
    )


# -- resolver -------------------------------------------------------------------------------


def test_a_failed_stream_record_feeds_events_failed(
    pipe: Pipeline, emitted_metrics: EmittedMetrics, translated: dict[str, Any]
) -> None:
    # Given a stream batch whose record is corrupt (no request id)
    pipe.post("/v1/opt-out", {"email": "poisoned@example.com"})
    batch = pipe.event_records()
    del batch[0]["dynamodb"]["NewImage"]["request_id"]
    # When the resolver takes it: answered, not raised (Lambda's Errors stays 0)
    answer = pipe.resolve(batch)
    assert len(answer["batchItemFailures"]) == 1
    # Then EventsFailedAlarm's metric is published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_failed_stream_record_feeds_events_failed
    )


def test_a_refused_assertion_feeds_assertions_refused(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given a browser that may assert one identifier, and already did
    pipe = build_pipeline(aws, monkeypatch, MAX_ASSERTED="1")
    device = "dev-asserter-aaaaaaaaaa"
    pipe.post("/v1/consent", {"device_id": device, "identity": {"email": "a1@example.com"}})
    pipe.resolve()
    # When it names a second one
    pipe.post("/v1/consent", {"device_id": device, "identity": {"email": "a2@example.com"}})
    pipe.resolve()
    # Then the refusal's metric is published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_refused_assertion_feeds_assertions_refused
    )


def test_a_held_link_feeds_links_held(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given an account whose cluster is full (the cap of 2: the email and one browser)
    pipe = build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="2")
    for device in ("dev-held-one-aaaaaaaaaa", "dev-held-two-aaaaaaaaaa"):
        # When it logs in on a second browser (held at the cap, nothing else tells anyone)
        token = token_for(email="held@example.com", device_id=device)
        pipe.post("/v1/consent", {"device_id": device, "identity_token": token})
        pipe.resolve()
    # Then the hold's metric is published, and an alarm reads it (identity37 F3)
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_held_link_feeds_links_held
    )


def test_a_refused_hold_feeds_holds_refused(
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given an account whose cluster is full (the cap of 2) and whose undecided holds are at
    # their bound (MAX_ASSERTED 1: one)
    pipe = build_pipeline(aws, monkeypatch, MAX_CLUSTER_SIZE="2", MAX_ASSERTED="1")
    for device in ("dev-refused-one-aaaaaaa", "dev-refused-two-aaaaaaa", "dev-refused-three-aaaa"):
        # When it logs in on a third browser (neither held nor linked)
        token = token_for(email="refused@example.com", device_id=device)
        pipe.post("/v1/consent", {"device_id": device, "identity_token": token})
        pipe.resolve()
    # Then the refusal's metric is published, and an alarm reads it (holds37)
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_refused_hold_feeds_holds_refused
    )


def test_a_job_part_still_over_the_bound_at_the_most_parts_feeds_its_alarm(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given an item bound no part can meet (at `MaxClusterSize` 99 none passes it: 16 parts of
    # 300 KB are far past what a cluster reaches)
    monkeypatch.setattr(parts, "JOB_ITEM_BOUND", 1)
    # When an opt-out naming three identities is resolved: its jobs go to the most parts
    body = {"email": "parts@example.com", "customer_id": "cust-parts-1",
            "device_id": "dev-parts-aaaaaaaaaa"}  # fmt: skip
    pipe.post("/v1/opt-out", body)
    pipe.resolve()
    # Then the metric of a part still over the bound is published
    assert_alarms_read_what_was_published(
        translated,
        emitted_metrics,
        test_a_job_part_still_over_the_bound_at_the_most_parts_feeds_its_alarm,
    )


OVER_THE_BOUND = test_a_job_part_still_over_the_bound_at_the_most_parts_feeds_its_alarm


# -- worker ---------------------------------------------------------------------------------


def test_a_job_refused_for_good_feeds_jobs_failed(
    stack: Stack,  # noqa: F811 - the fixture imported above
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given a job whose vendor answers a permanent 400
    stack.put_request("r1", ["meta"], EMAIL)
    stack.send("meta", "r1")
    stack.server.sandboxes["meta"].set_faults(1.0, 400)
    # When the worker tries it
    stack.run("meta")
    assert stack.job("r1", "meta")["status"] == "failed"
    # Then JobsFailedAlarm's metric is published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_job_refused_for_good_feeds_jobs_failed
    )


def test_a_refused_visibility_change_feeds_visibility_refused(
    stack: Stack,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given a job whose vendor answers 503 (retried later), and SQS refusing the wait
    stack.put_request("r1", ["webhook"], EMAIL)
    stack.send("webhook", "r1")
    stack.server.sandboxes["webhook"].set_faults(1.0, 503)

    def refuse(**_: Any) -> None:
        error = {"Error": {"Code": "InvalidParameterValue", "Message": "refused"}}
        raise ClientError(error, "ChangeMessageVisibility")  # type: ignore[arg-type]

    monkeypatch.setattr(stack.worker.services().sqs, "change_message_visibility", refuse)
    # When the worker tries it
    answer, _ = stack.run("webhook")
    assert len(answer["batchItemFailures"]) == 1
    # Then VisibilityRefusedAlarm's metric is published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_refused_visibility_change_feeds_visibility_refused
    )


def test_a_throttled_job_write_feeds_job_writes_failed(
    stack: Stack,  # noqa: F811 - the fixture imported above
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given a Google Ads job whose status check's message SQS throttles
    stack.put_request("r1", ["google_ads"], EMAIL)
    stack.send("google_ads", "r1")

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": THROTTLED}, "SendMessage")  # type: ignore[arg-type]

    with session_hooks("alarm-worker", stack.worker.services.cache_clear) as register:
        register("provide-client-params.sqs.SendMessage", throttle)
        # When the worker delivers it: that message comes back, nothing raised
        answer, _ = stack.run("google_ads")
    assert len(answer["batchItemFailures"]) == 1
    # Then JobWritesFailedAlarm's metric is published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_throttled_job_write_feeds_job_writes_failed
    )


def test_a_meta_removal_sent_with_the_account_unchecked_feeds_its_alarm(
    stack: Stack,  # noqa: F811 - the fixture imported above
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given a Meta job, and a token Meta refuses to read the ad account with (code 200)
    stack.put_request("r1", ["meta"], EMAIL)
    stack.send("meta", "r1")
    stack.server.sandboxes["meta"].vendor.account_refused = (403, 200)
    # When the worker delivers it: done, the receipt noted "not checked"
    stack.run("meta")
    job = stack.job("r1", "meta")
    assert job["status"] == "done" and "not checked" in job["receipt"]["note"]
    # Then MetaRemovalsUncheckedAlarm's metric is published (before, only a WARNING log said
    # so: review s29 lead D1)
    assert_alarms_read_what_was_published(
        translated,
        emitted_metrics,
        test_a_meta_removal_sent_with_the_account_unchecked_feeds_its_alarm,
    )


# -- deadline watch -------------------------------------------------------------------------


def test_overdue_and_due_soon_requests_feed_the_watchs_alarms(
    table: Table,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a request past its deadline and one due in two days, neither complete
    monkeypatch.setenv("SYSTEMS_CONFIG", PRODUCTION_SYSTEMS)
    now = datetime.now(UTC)
    seed_request(table, 1, now - timedelta(days=25), "processing")  # due 21 days after
    seed_request(table, 2, now - timedelta(days=10), "processing",
                 deadline=(now + timedelta(days=2)).date())  # fmt: skip
    # When EventBridge invokes the watch and its run finishes
    summary = load_function("watch").handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    assert (summary["overdue"], summary["due_soon"], summary["finished"]) == (1, 1, True)
    # Then the overdue, due-soon and heartbeat metrics are published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_overdue_and_due_soon_requests_feed_the_watchs_alarms
    )


class TimeForChecks(FakeLambdaContext):
    """A Lambda context whose time left is test_watch_backlog's `time_for`: plenty for the
    first `calls` reads of it, then under the checks' stop: the run stops before every
    reminder due."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.time_left = time_for(calls)

    def get_remaining_time_in_millis(self) -> int:
        return int(self.time_left() * 1000)


def test_a_lost_import_and_a_run_short_of_time_feed_the_watchs_alarms(
    table: Table,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an opt-out imported two days ago whose stream record never reached the resolver
    # (nothing resolves here), and 20 imported now, none checked yet
    monkeypatch.setenv("SYSTEMS_CONFIG", PRODUCTION_SYSTEMS)
    now = datetime.now(UTC).replace(microsecond=0)
    importer = ImportService(table, LOCAL_HASH_KEY.encode(), 1095)
    received = (now - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def rows(prefix: str, count: int) -> list[dict[str, Any]]:
        return [{"line": n + 2, "external_id": f"{prefix}-{n}", "received_at": received,
                 "email": f"{prefix.lower()}-{n}@example.com"} for n in range(count)]  # fmt: skip

    assert importer.import_rows(rows("LOST", 1), now - timedelta(days=2), "arn:op").stored == 1
    assert importer.import_rows(rows("NEW", 20), now, "arn:op").stored == 20
    # When EventBridge invokes the watch and it has time for a few checks only
    summary = load_function("watch").handler({"detail-type": "Scheduled Event"},
                                             TimeForChecks(8))  # fmt: skip
    # Then it stopped short and said its figures are partial, and the metrics of that and of
    # the lost import it re-drove (checked first: its reminder is the oldest) are published
    assert (summary["finished"], summary["figures_partial"]) == (False, True)
    proving = test_a_lost_import_and_a_run_short_of_time_feed_the_watchs_alarms
    assert_alarms_read_what_was_published(translated, emitted_metrics, proving)


def test_old_pending_jobs_named_again_feed_the_watchs_resent_alarm(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given an opt-out that arrived 25 hours ago, whose jobs' messages were lost
    request_id, _ = lost_after_one_answer(pipe)
    move_into_the_past(pipe, request_id, datetime.now(UTC) - timedelta(hours=25))
    monkeypatch.setenv("WATCH_BACKFILL_DAYS", "3")
    monkeypatch.setenv("WATCH_LAG_SECONDS", "0")
    # When EventBridge invokes the deadline watch
    load_function("watch").handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    # Then the metric of the jobs it named to send again is published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_old_pending_jobs_named_again_feed_the_watchs_resent_alarm
    )


def test_a_changed_hmac_key_and_a_system_added_without_a_backfill_feed_their_alarms(
    table: Table,
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
    tmp_path: Path,
) -> None:
    # Given a production watch whose last run saw one system fewer, under the first HMAC key
    production_secrets(monkeypatch)
    config = json.loads(Path(PRODUCTION_SYSTEMS).read_text())
    fewer = {**config, "systems": config["systems"][1:]}
    (tmp_path / "fewer.json").write_text(json.dumps(fewer))
    monkeypatch.setenv("SYSTEMS_CONFIG", str(tmp_path / "fewer.json"))
    load_function("watch").handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    # When the key is changed and the missing system deployed, with no backfill of it
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=HASH_KEY, SecretString="z" * 64
    )
    monkeypatch.setattr(secret_store, "_cached", {})
    monkeypatch.setenv("SYSTEMS_CONFIG", PRODUCTION_SYSTEMS)
    summary = load_function("watch").handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    assert summary["hash_key_changed"] is True
    assert summary["systems_not_backfilled"] == [config["systems"][0]["name"]]
    # Then HashKeyChangedAlarm's and SystemsNotBackfilledAlarm's metrics are published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics,
        test_a_changed_hmac_key_and_a_system_added_without_a_backfill_feed_their_alarms,
    )  # fmt: skip


KEY_OR_SYSTEMS = test_a_changed_hmac_key_and_a_system_added_without_a_backfill_feed_their_alarms


def test_an_unreadable_hmac_key_feeds_the_watch_checks_alarm_and_the_overdue_one(
    table: Table,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given an overdue request and a production watch whose HMAC-key secret is gone
    seed_request(table, 1, datetime.now(UTC) - timedelta(days=30), "processing")
    monkeypatch.setenv("WATCH_BACKFILL_DAYS", "40")
    production_secrets(monkeypatch)
    monkeypatch.setenv("SYSTEMS_CONFIG", PRODUCTION_SYSTEMS)
    boto3.client("secretsmanager", region_name="us-east-1").delete_secret(
        SecretId=HASH_KEY, ForceDeleteWithoutRecovery=True
    )
    monkeypatch.setattr(secret_store, "_cached", {})
    # When the watch runs: the key check fails, the run goes on (review s18 diff B3)
    summary = load_function("watch").handler({"detail-type": "Scheduled Event"}, MinutesLeft())
    assert (summary["checks_failed"], summary["overdue"]) == (["key_check"], 1)
    # Then WatchChecksFailedAlarm's metric is published, and OverdueRequestsAlarm's still is
    assert_alarms_read_what_was_published(
        translated, emitted_metrics,
        test_an_unreadable_hmac_key_feeds_the_watch_checks_alarm_and_the_overdue_one,
    )  # fmt: skip
    published = emitted_metrics.totals()
    for key in alarm_metrics(translated, NAMESPACE)["OverdueRequestsAlarm"]:
        assert published.get(key, 0) > 0, key


UNREADABLE_KEY = test_an_unreadable_hmac_key_feeds_the_watch_checks_alarm_and_the_overdue_one


# -- reconciliation sweep -------------------------------------------------------------------


class NoTimeLeft(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 0


def test_a_sweep_that_re_drove_and_one_cut_short_feed_the_sweeps_alarms(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given an opt-out whose stream record was lost, and a sweep with no grace period
    pipe.post("/v1/opt-out", {"email": "lost@example.com"})
    pipe.event_records()  # read and dropped
    monkeypatch.setenv("SWEEP_CHECKPOINTS_SECONDS", "0.001")
    sweeper = load_function("sweeper")
    scheduled = {"source": "aws.events", "detail": {}}
    # When one run re-drives it, and another starts with no time left
    assert sweeper.handler(scheduled, FakeLambdaContext())["unresolved_events"] == 1
    assert sweeper.handler(scheduled, NoTimeLeft())["cut_short"] == 1
    # Then the re-driven, cut-short and heartbeat metrics are published
    assert_alarms_read_what_was_published(
        translated,
        emitted_metrics,
        test_a_sweep_that_re_drove_and_one_cut_short_feed_the_sweeps_alarms,
    )


def test_a_sweep_whose_read_failed_feeds_the_sweepers_errors(
    pipe: Pipeline,
    monkeypatch: pytest.MonkeyPatch,
    emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:
    # Given an unresolved opt-out whose request DynamoDB refuses to read
    pipe.post("/v1/opt-out", {"email": "unread@example.com"})
    pipe.event_records()  # read and dropped
    monkeypatch.setenv("SWEEP_CHECKPOINTS_SECONDS", "0.001")

    def throttle(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("ExpressionAttributeValues", {}).get(":pk", {}).get("S", "")
        if pk.startswith("REQ#"):
            raise ClientError({"Error": THROTTLED}, "Query")  # type: ignore[arg-type]

    sweeper = load_function("sweeper")
    with session_hooks("alarm-sweep", sweeper.sweeper.cache_clear) as register:
        register("provide-client-params.dynamodb.Query", throttle)
        # When the sweep runs: it goes on past the failed read (not raised)
        summary = sweeper.handler({"source": "aws.events", "detail": {}}, FakeLambdaContext())
    assert summary["checks_failed"] == 1
    # Then the metric SweeperErrorsAlarm adds to Lambda's Errors is published
    assert_alarms_read_what_was_published(
        translated, emitted_metrics, test_a_sweep_whose_read_failed_feeds_the_sweepers_errors
    )


def test_a_sweep_whose_mark_is_too_old_feeds_the_cut_short_alarm(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch, emitted_metrics: EmittedMetrics,
    translated: dict[str, Any],
) -> None:  # fmt: skip
    # Given the windows' mark 3 h behind (no run finished meanwhile: more than a window's
    # longest reach, 1 h, so arrivals before that are not read at this checkpoint)
    now = datetime.now(UTC)
    behind = {"82800": iso(now - timedelta(hours=26))}
    pipe.aws.dynamodb.put_item(TableName=pipe.aws.table_name, Item=serialize(
        {"pk": "SWEEP", "sk": "MARK", "run": "earlier", "read_to": behind}))  # fmt: skip
    monkeypatch.setenv("SWEEP_CHECKPOINTS_SECONDS", "82800")
    sweeper = load_function("sweeper")
    # When the sweep runs
    summary = sweeper.handler({"source": "aws.events", "detail": {}}, FakeLambdaContext())
    # Then it counts the slice it did not read where SweepCutShortAlarm reads it
    assert (summary["uncovered_windows"], summary["cut_short"]) == (1, 1)
    published = emitted_metrics.totals()
    for key in alarm_metrics(translated, NAMESPACE)["SweepCutShortAlarm"]:
        assert published.get(key, 0) > 0, key


# -- every alarm, and the environment -------------------------------------------------------

# Alarm -> the test above that makes the metric it reads. PublicPostsThrottledAlarm is not
# here: its metric comes from the access log's metric filter, not a handler
# (test_template.py::test_api_gateway_refusing_public_posts_has_an_alarm).
PROVED: dict[str, Callable[..., None]] = {
    "CaptureSurgeAlarm": test_new_opt_outs_and_consent_choices_feed_the_surge_alarm,
    "EventsFailedAlarm": test_a_failed_stream_record_feeds_events_failed,
    "AssertionsRefusedAlarm": test_a_refused_assertion_feeds_assertions_refused,
    "LinksHeldAlarm": test_a_held_link_feeds_links_held,
    "HoldsRefusedAlarm": test_a_refused_hold_feeds_holds_refused,
    "JobsFailedAlarm": test_a_job_refused_for_good_feeds_jobs_failed,
    "VisibilityRefusedAlarm": test_a_refused_visibility_change_feeds_visibility_refused,
    "OverdueRequestsAlarm": test_overdue_and_due_soon_requests_feed_the_watchs_alarms,
    "DueSoonRequestsAlarm": test_overdue_and_due_soon_requests_feed_the_watchs_alarms,
    "WatchHeartbeatAlarm": test_overdue_and_due_soon_requests_feed_the_watchs_alarms,
    "WatchRedrivenAlarm": test_a_lost_import_and_a_run_short_of_time_feed_the_watchs_alarms,
    "WatchFiguresPartialAlarm": test_a_lost_import_and_a_run_short_of_time_feed_the_watchs_alarms,
    "SweepRedrivenAlarm": test_a_sweep_that_re_drove_and_one_cut_short_feed_the_sweeps_alarms,
    "SweepCutShortAlarm": test_a_sweep_that_re_drove_and_one_cut_short_feed_the_sweeps_alarms,
    "SweeperHeartbeatAlarm": test_a_sweep_that_re_drove_and_one_cut_short_feed_the_sweeps_alarms,
    "CaptureErrorsAlarm": test_a_store_that_refuses_the_capture_feeds_capture_errors,
    "TokenKeysUnusableAlarm": test_a_token_secret_of_the_wrong_shape_feeds_token_keys_unusable,
    "JobWritesFailedAlarm": test_a_throttled_job_write_feeds_job_writes_failed,
    "MetaRemovalsUncheckedAlarm": (
        test_a_meta_removal_sent_with_the_account_unchecked_feeds_its_alarm
    ),
    "SweeperErrorsAlarm": test_a_sweep_whose_read_failed_feeds_the_sweepers_errors,
    "HashKeyChangedAlarm": KEY_OR_SYSTEMS,
    "SystemsNotBackfilledAlarm": KEY_OR_SYSTEMS,
    "WatchChecksFailedAlarm": UNREADABLE_KEY,
    "WatchResentJobsAlarm": test_old_pending_jobs_named_again_feed_the_watchs_resent_alarm,
    "JobPartsOverBoundAlarm": OVER_THE_BOUND,
}


def test_every_alarm_on_our_metrics_is_proved_by_a_test_here(translated: dict[str, Any]) -> None:
    # A new alarm on our namespace needs a test above that makes its metric (or a log filter)
    from_logs = log_filter_metrics(translated)

    def fed_by_a_handler(key: MetricKey) -> bool:
        names = frozenset(name for name, _ in key.dimensions)
        return (key.namespace, key.name, names) not in from_logs

    read = alarm_metrics(translated, NAMESPACE)
    handlers_feed = {alarm for alarm, keys in read.items() if any(map(fed_by_a_handler, keys))}
    assert handlers_feed == set(PROVED)


def test_the_handlers_run_here_with_the_functions_powertools_environment(
    translated: dict[str, Any],
) -> None:
    # The service dimension's value and the namespace come from this environment on Lambda;
    # the tests' (tests/conftest.py) must be the template's for the checks above to hold there.
    functions = {n: r for n, r in translated["Resources"].items()
                 if r["Type"] == "AWS::Lambda::Function"}  # fmt: skip
    assert functions
    for name, function in functions.items():
        env = function["Properties"]["Environment"]["Variables"]
        key = "POWERTOOLS_METRICS_NAMESPACE"
        assert env[key] == TEST_ENV[key], (name, key)
        # The service is the stack's name; the tests stand for a stack named STACK_NAME.
        assert env["POWERTOOLS_SERVICE_NAME"] == {"Ref": "AWS::StackName"}, name
    assert TEST_ENV["POWERTOOLS_SERVICE_NAME"] == STACK_NAME
    # Not samconfig.toml's name, the old fixed service: a handler that hard-coded it would pass.
    assert STACK_NAME != "optout-bridge"
