"""The check every moto test ends with (tests/conftest.py): each AWS call a function made is one
its role in template.yaml allows. These tests show the check refuses what IAM would refuse,
and that it sees the calls a real pipeline makes."""

import copy
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local import iam as local_iam
from optout.purposes import ALL_PURPOSES
from optout.store import delivery
from optout.store.table import Table
from tests.conftest import Aws
from tests.support import iam, sam
from tests.support.pipeline import build_pipeline

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/stack-table"


def request(function: str, action: str, resource: str = TABLE, *keys: str) -> iam.Request:
    return iam.Request(function, action.split(":")[1], action, resource, keys)


def test_a_write_outside_the_functions_partitions_is_refused() -> None:
    # A batch of two items (the states a flush writes), and one reaching a partition more
    allowed = request(
        "ResolverFunction", "dynamodb:BatchWriteItem", TABLE, "ID#email#k", "ID#phone#k"
    )
    refused = request("ResolverFunction", "dynamodb:BatchWriteItem", TABLE, "ID#email#k", "HOLD")
    assert iam.denied([allowed, refused]) == [refused]


def test_a_partition_granted_for_one_action_does_not_grant_another() -> None:
    # The resolver may leave the watch reminders with BatchWriteItem, and nothing else there.
    batch = request("ResolverFunction", "dynamodb:BatchWriteItem", TABLE, "WATCH")
    update = request("ResolverFunction", "dynamodb:UpdateItem", TABLE, "WATCH")
    assert iam.denied([batch, update]) == [update]


def test_the_resolver_may_make_on_each_partition_only_the_calls_its_code_makes() -> None:
    # Until session 36 one statement granted all seven item actions on REQ#, ID#, HOLD and
    # FAILED#: the resolver could delete any node, link or hold, or batch-write requests'
    # items, which its code never does (deploy36). What it does make stays allowed.
    def made(action: str, *keys: str) -> iam.Request:
        return request("ResolverFunction", action, TABLE, *keys)

    def counting(attributes: tuple[str, ...]) -> iam.Request:
        return iam.Request("ResolverFunction", "UpdateItem", "dynamodb:UpdateItem", TABLE,
                           ("HOLD",), attributes)  # fmt: skip

    used = [
        made("dynamodb:DeleteItem", "REQ#r1"),  # delivery.delete_pending_job
        made("dynamodb:DeleteItem", "FAILED#braze"),  # delivery.forget_failed
        made("dynamodb:UpdateItem", "FAILED#braze"),
        made("dynamodb:Query", "FAILED#braze"),  # delivery.failed_jobs
        made("dynamodb:GetItem", "HOLD"),  # holds.get_hold
        made("dynamodb:PutItem", "HOLD"),  # a new hold; holds.decide
        counting(("pk", "sk", "holds", "expires_at")),  # holds.put_counted (holds37, holds38)
        made("dynamodb:PutItem", "ID#email#k"),  # store/identity.py's transactions
        made("dynamodb:UpdateItem", "ID#email#k"),
        made("dynamodb:Query", "ID#email#k"),
        made("dynamodb:BatchWriteItem", "ID#email#k", "ID#phone#k"),  # the states
        made("dynamodb:BatchGetItem", "ID#email#k", "REQ#r1"),  # nodes and a denial, one read
        made("dynamodb:GetItem", "REQ#r1"),
        made("dynamodb:PutItem", "REQ#r1"),
        made("dynamodb:UpdateItem", "REQ#r1"),
        made("dynamodb:Query", "REQ#r1"),
    ]
    never = [
        made("dynamodb:DeleteItem", "ID#email#k"),
        made("dynamodb:DeleteItem", "HOLD"),
        made("dynamodb:BatchWriteItem", "REQ#r1"),
        made("dynamodb:BatchWriteItem", "HOLD"),
        made("dynamodb:BatchWriteItem", "FAILED#braze"),
        counting(("pk", "sk", "status")),  # a hold's own attributes: only put, conditionally
        made("dynamodb:Query", "HOLD"),
        made("dynamodb:BatchGetItem", "HOLD"),
        made("dynamodb:BatchGetItem", "FAILED#braze"),
        made("dynamodb:GetItem", "ID#email#k"),
        made("dynamodb:GetItem", "FAILED#braze"),
        made("dynamodb:PutItem", "FAILED#braze"),
    ]
    assert iam.denied([*used, *never]) == never


def test_the_sweeper_may_write_its_mark_but_nothing_else_of_the_sweeps_partition() -> None:
    # Its windows' mark: one conditional PutItem a run (SWEEP/MARK); a carried item, once
    # checked, one conditional DeleteItem (review s18 B8); no update, and nowhere else
    put = request("SweeperFunction", "dynamodb:PutItem", TABLE, "SWEEP")
    update = request("SweeperFunction", "dynamodb:UpdateItem", TABLE, "SWEEP")
    delete = request("SweeperFunction", "dynamodb:DeleteItem", TABLE, "SWEEP")
    elsewhere = request("SweeperFunction", "dynamodb:PutItem", TABLE, "WATCH")
    delete_elsewhere = request("SweeperFunction", "dynamodb:DeleteItem", TABLE, "WATCH")
    denied = iam.denied([put, update, delete, elsewhere, delete_elsewhere])
    assert denied == [update, elsewhere, delete_elsewhere]


def test_a_transaction_is_authorised_item_by_item() -> None:
    params = {
        "TransactItems": [
            {"Put": {"TableName": "optout-test", "Item": {"pk": {"S": "REQ#r1"}}}},
            {"Update": {"TableName": "optout-test", "Key": {"pk": {"S": "ID#email#k"}}}},
        ]
    }
    made = iam.requests_of("CaptureFunction", "dynamodb", "TransactWriteItems", params)
    assert [(r.action, r.leading_keys) for r in iam.denied(made)] == [
        ("dynamodb:UpdateItem", ("ID#email#k",))
    ]


def test_the_resolver_may_refresh_a_links_expiry_in_both_identities() -> None:
    # store/identity.py refresh_expiry: one transaction of conditional updates, no version bump
    update = {"TableName": "optout-test", "UpdateExpression": "SET expires_at = :exp",
              "ConditionExpression": "attribute_exists(pk)"}  # fmt: skip
    params = {
        "TransactItems": [
            {"Update": {**update, "Key": {"pk": {"S": "ID#device_id#a"}, "sk": {"S": "LINK#b"}}}},
            {"Update": {**update, "Key": {"pk": {"S": "ID#email#b"}, "sk": {"S": "LINK#a"}}}},
        ]
    }
    made = iam.requests_of("ResolverFunction", "dynamodb", "TransactWriteItems", params)
    assert made and iam.denied(made) == []


def test_the_resolver_may_refresh_a_nodes_expiry_with_one_update_item() -> None:
    # store/identity.py refresh_expiry of one item: a conditional UpdateItem (1 WRU, not 2)
    params = {"TableName": "optout-test", "UpdateExpression": "SET expires_at = :exp",
              "ConditionExpression": "attribute_exists(pk)",
              "Key": {"pk": {"S": "ID#email#b"}, "sk": {"S": "NODE"}}}  # fmt: skip
    made = iam.requests_of("ResolverFunction", "dynamodb", "UpdateItem", params)
    assert [r.action for r in made] == ["dynamodb:UpdateItem"] and iam.denied(made) == []


DROP_VALUES = {  # optout/retire.py `_drop_values`, as it calls UpdateItem
    "TableName": "optout-test",
    "Key": {"pk": {"S": "REQ#r1"}, "sk": {"S": "JOB#braze"}},
    "UpdateExpression": "SET identifiers = :kept, values_dropped_at = :now",
    "ConditionExpression": "attribute_exists(pk) AND #status = :status",
    "ExpressionAttributeNames": {"#status": "status"},
}


def test_the_watch_may_drop_a_jobs_values_and_update_nothing_else() -> None:
    # optout/retire.py drop_retired_values: the watch drops a retired system's open job's
    # identifier values with one conditional UpdateItem (review s18 S3), and its grant names
    # those attributes only (review s18 diff B7)
    def update(**changed: Any) -> iam.Request:
        (made,) = iam.requests_of("WatchFunction", "dynamodb", "UpdateItem",
                                  {**DROP_VALUES, **changed})  # fmt: skip
        return made

    drop = update()
    assert set(drop.attributes) == {"pk", "sk", "identifiers", "values_dropped_at", "status"}
    wider = [
        update(UpdateExpression="SET identifiers = :kept, receipt = :r"),
        update(UpdateExpression="SET identifiers = :kept, resolution = :r"),
        update(ReturnValues="ALL_OLD"),  # the whole job handed back
        update(Key={"pk": {"S": "ID#email#k"}, "sk": {"S": "NODE"}}),
    ]
    assert iam.denied([drop, update(ReturnValues="NONE"), *wider]) == wider


def test_a_query_is_checked_on_the_partition_its_key_condition_names() -> None:
    params = {
        "TableName": "optout-test",
        "KeyConditionExpression": "#p = :p AND begins_with(sk, :s)",
        "ExpressionAttributeNames": {"#p": "pk"},
        "ExpressionAttributeValues": {":p": {"S": "HOLD"}, ":s": {"S": "X"}},
    }
    (made,) = iam.requests_of("CaptureFunction", "dynamodb", "Query", params)
    assert made.leading_keys == ("HOLD",)
    assert iam.denied([made]) == [made]


def test_a_worker_may_read_only_its_own_systems_credentials() -> None:
    def secret(name: str) -> iam.Request:
        (made,) = iam.requests_of(
            "webhookWorker", "secretsmanager", "GetSecretValue", {"SecretId": name}
        )
        return made

    own, other = secret("optout-bridge/systems/webhook"), secret("optout-bridge/systems/braze")
    longer = secret("optout-bridge/systems/webhook-staging")  # not webhook's: another name
    assert iam.denied([own, other, longer]) == [other, longer]


def test_a_worker_may_write_only_the_marks_names_on_an_identity_and_the_listings_on_failed() -> (
    None
):
    # store/delivery.py's frees and a failure's listing; until session 36 a worker's role let
    # it set any attribute of any identity's item (a STATE's opt_out, a NODE's choices)
    def update(pk: str, sk: str, expression: str, **more: Any) -> iam.Request:
        params = {"TableName": "optout-test", "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
                  "UpdateExpression": expression, **more}  # fmt: skip
        (made,) = iam.requests_of("brazeWorker", "dynamodb", "UpdateItem", params)
        return made

    free = update(
        "ID#email#k", "DELIVERY#braze",
        "SET updated_at = :now, job_sale = if_not_exists(job_sale, :job), expires_at = :exp"
        " DELETE inflight :flown",
        ConditionExpression="attribute_not_exists(job_sale) OR job_sale = :job",
        ReturnValues="ALL_OLD",
    )  # fmt: skip
    stamp = update(
        "ID#email#k",
        "DELIVERY#braze",
        "SET until_limit_sensitive = :own, no_record_at = :heard, no_record_job = :job",
    )
    listing = update(
        "FAILED#braze", "r1:braze",
        "SET job_id = :job, request_id = :req, failed_at = :failed, listed_by = :by, kind = :k,"
        " expires_at = :exp",
        ConditionExpression="attribute_not_exists(failed_at) OR listed_by = :by",
    )  # fmt: skip
    noted = update("FAILED#braze", "r1:braze", "SET message_of = :f, message_by = :by")
    wider = [
        update("ID#email#k", "STATE", "SET opt_out = :none"),
        update("ID#email#k", "NODE", "SET choices = :c, version = :v"),
        update("ID#email#k", "LINK#phone#k", "SET kind = :k, verified = :v"),
        update("FAILED#braze", "r1:braze", "SET receipt = :r"),
        update("FAILED#braze", "r1:braze", "SET message_of = :f", ReturnValues="ALL_NEW"),
    ]
    assert iam.denied([free, stamp, listing, noted, *wider]) == wider


def test_a_batch_send_needs_send_message_on_that_queue() -> None:
    def send(function: str) -> iam.Request:
        url = "https://sqs.us-east-1.amazonaws.com/123456789012/optout-test-braze-jobs"
        (made,) = iam.requests_of(function, "sqs", "SendMessageBatch", {"QueueUrl": url})
        return made

    assert send("ResolverFunction").action == "sqs:SendMessage"
    assert iam.denied([send("ResolverFunction"), send("CaptureFunction")]) == [
        send("CaptureFunction")
    ]


QUEUE = "arn:aws:sqs:us-east-1:123456789012:optout-test-{}"


def receive(function: str, queue: str) -> iam.Request:
    return request(function, "sqs:ReceiveMessage", QUEUE.format(queue))


def test_a_worker_may_receive_only_from_its_own_queue_and_the_resolver_read_only_its_stream() -> (
    None
):
    own = receive("tradedeskWorker", "tradedesk-jobs")
    others = [
        receive("tradedeskWorker", "braze-jobs"),
        receive("tradedeskWorker", "braze-dlq"),  # the DLQs are the operator's evidence
        receive("tradedeskWorker", "tradedesk-dlq"),
        receive("tradedeskWorker", "ResolverFailureQueue-ABC123"),
        request("tradedeskWorker", "sqs:DeleteMessage", QUEUE.format("meta-jobs")),
    ]
    stream = TABLE + "/stream/2026-11-30T00:00:00.000"
    elsewhere = "arn:aws:dynamodb:us-east-1:123456789012:table/other/stream/2026-11-30T00:00:00.000"
    reads = [request("ResolverFunction", "dynamodb:GetRecords", arn) for arn in (stream, elsewhere)]
    assert iam.denied([own, *others, *reads]) == [*others, reads[1]]


def test_an_aws_managed_policy_on_a_function_role_is_read_with_its_wildcard() -> None:
    # SAM attaches AWSLambdaSQSQueueExecutionRole (Resource "*") to a role it makes for an SQS
    # event source: were a worker's role SAM's again, the check must see what it allows.
    template = sam.load()
    role = template["Resources"]["tradedeskWorkerRole"]["Properties"]
    role["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
    ]
    widened = local_iam.load_roles(template)
    assert iam.denied([receive("tradedeskWorker", "braze-dlq")], widened) == []
    role["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    with pytest.raises(ValueError, match="cannot read"):
        local_iam.load_roles(template)


def test_the_check_sees_the_calls_a_real_opt_out_makes(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a webform opt-out captured and resolved through the real handlers
    pipeline = build_pipeline(aws, monkeypatch)
    pipeline.post("/v1/opt-out", {"email": "iam@example.com", "purposes": ["sale"]})
    pipeline.resolve()
    functions = {r.function for r in aws.calls}
    assert {"CaptureFunction", "ResolverFunction"} <= functions
    assert iam.denied(aws.calls) == []

    # When the resolver's role loses its identity partitions
    narrowed: dict[str, Any] = copy.deepcopy(iam.roles())
    for statement in narrowed["ResolverFunction"]:
        keys = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
        if "ID#*" in keys.get("dynamodb:LeadingKeys", []):
            keys["dynamodb:LeadingKeys"].remove("ID#*")

    # Then the check names the resolver's calls on them, and no other function's
    refused = iam.denied(aws.calls, narrowed)
    assert refused
    assert {r.function for r in refused} == {"ResolverFunction"}
    assert all(any(k.startswith("ID#") for k in r.leading_keys) for r in refused)


def test_the_one_worker_of_the_tests_is_checked_as_the_worker_of_the_batchs_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SYSTEM_NAME", raising=False)

    def batch(*systems: str) -> dict[str, Any]:
        arn = "arn:aws:sqs:us-east-1:123456789012:optout-test-{}-jobs"
        return {"Records": [{"eventSourceARN": arn.format(s)} for s in systems]}

    assert iam.function_id("functions_worker_app", batch("braze", "braze")) == "brazeWorker"
    assert iam.function_id("functions_worker_app", batch("braze", "meta")) is None
    monkeypatch.setenv("SYSTEM_NAME", "googleads")
    assert iam.function_id("functions_worker_app", batch("braze")) == "googleadsWorker"
    assert iam.function_id("functions_resolver_app") == "ResolverFunction"


class _Marks:
    """A DynamoDB client for store/delivery.py's worker writes: records every UpdateItem and
    answers each as `refuse` says (its condition failed, or it wrote over a mark that held a
    no_record stamp and named no job), so every fallback write runs."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.made: list[dict[str, Any]] = []

    def update_item(self, **params: Any) -> dict[str, Any]:
        self.made.append(params)
        if self.refuse:
            error = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}
            raise ClientError(error, "UpdateItem")  # type: ignore[arg-type]
        return {"Attributes": {"no_record_at": {"N": "1"}}}


@pytest.mark.parametrize("refuse", [True, False], ids=["refused", "written"])
def test_every_mark_and_listing_write_a_worker_makes_is_one_its_role_allows(refuse: bool) -> None:
    # The worker's writes on identities and on the failed-jobs list are limited to named
    # attributes since session 36 (deploy36), and moto enforces no IAM: a name built at run
    # time (job_<purpose>, until_<purpose>) or a fallback's write (`_name_over_older`,
    # `_drop_older_stamp`, a purpose freed alone) outside the list would fail only on AWS.
    # Every final status (done with refused, unsent and unformed identities; no_record;
    # failed), `mark_again` and a failure's message noted, for every purpose at once.
    client = _Marks(refuse)
    table = Table(client, "optout-test")  # type: ignore[arg-type]
    flights = [{"pk": "ID#email#k", "purposes": list(ALL_PURPOSES)},
               {"pk": "ID#phone#k", "purposes": list(ALL_PURPOSES)},
               {"pk": "ID#customer_id#k", "purposes": ["sale"]}]  # fmt: skip
    job = {"job_id": "r1:braze", "request_id": "r1", "system": "braze", "flights": flights,
           "expires_at": 1_900_000_000, "completed_at": "2026-12-04T10:00:00+00:00"}  # fmt: skip
    receipt = {"identifier_types_rejected": ["phone"], "identifier_types_sent": ["email", "phone"],
               "identities_unformed": ["ID#customer_id#k"], "identities_not_sent": []}  # fmt: skip
    now = "2026-12-04T10:00:01+00:00"
    delivery.record_delivered(table, job, "done", now, receipt)
    delivery.record_delivered(table, job, "no_record", now)
    delivery.record_delivered(table, job, "failed", now, token="t")
    delivery.mark_again(table, job, now)
    delivery.note_message_of_failed(table, job, now)
    made = [r for params in client.made
            for r in iam.requests_of("brazeWorker", "dynamodb", "UpdateItem", params)]  # fmt: skip
    names = {a for r in made for a in r.attributes}
    assert {f"{p}_{purpose}" for p in ("job", "until") for purpose in ALL_PURPOSES} <= names
    assert {"no_record_at", "no_record_job", "message_of", "listed_by"} <= names
    assert iam.denied(made) == []
