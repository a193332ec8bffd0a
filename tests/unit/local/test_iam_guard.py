"""The local stack refuses, as AWS would, a handler's call its role in template.yaml does not
allow (local/iam.py `install`); moto itself enforces no IAM."""

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

from local import iam
from local.lambdas import LocalFunction, running_function
from tests.conftest import Aws, moto_account
from tests.support.iam import roles

KEY = {"sk": {"S": "EVENT"}}


@pytest.fixture
def guarded() -> Iterator[tuple[Aws, list[str | None]]]:
    running: list[str | None] = [None]
    with moto_account() as aws:
        assert boto3.DEFAULT_SESSION is not None
        uninstall = iam.install(boto3.DEFAULT_SESSION.events, roles(), lambda: running[0])
        try:
            yield aws, running
        finally:
            uninstall()


def _put(aws: Aws, pk: str) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")  # made after the guard
    client.put_item(TableName=aws.table_name, Item={"pk": {"S": pk}, **KEY})


def test_a_call_the_functions_role_does_not_allow_is_refused_as_aws_would(
    guarded: tuple[Aws, list[str | None]],
) -> None:
    aws, running = guarded
    # Given the capture function running (its role writes request partitions only)
    running[0] = "CaptureFunction"
    # When it writes an identity's partition
    with pytest.raises(ClientError) as refused:
        _put(aws, "ID#email#k")
    # Then DynamoDB's AccessDenied, naming the action and resource but no key value
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "CaptureFunction may not dynamodb:PutItem" in error["Message"]
    assert "ID#email#k" not in error["Message"]
    assert aws.items() == []


def test_a_call_the_role_allows_goes_through(guarded: tuple[Aws, list[str | None]]) -> None:
    aws, running = guarded
    running[0] = "CaptureFunction"
    _put(aws, "REQ#r1")
    assert [i["pk"] for i in aws.items()] == ["REQ#r1"]


def test_the_stacks_own_calls_outside_any_handler_are_not_checked(
    guarded: tuple[Aws, list[str | None]],
) -> None:
    aws, running = guarded
    running[0] = None  # a poller or the console, not a function
    _put(aws, "ID#email#k")
    assert [i["pk"] for i in aws.items()] == ["ID#email#k"]


def test_a_local_function_runs_its_handler_as_its_template_resource() -> None:
    function = LocalFunction("worker-braze", lambda _e, _c: running_function(), 30, "brazeWorker")
    assert function.invoke({}) == "brazeWorker"
    assert running_function() is None  # and no longer once it returned


def test_the_resolvers_scan_may_read_only_the_backfills_projection(
    guarded: tuple[Aws, list[str | None]],
) -> None:
    # review s14 recheck 5: the Scan grant read every attribute of every item
    from optout.resolver.service import STATE_SCAN  # noqa: PLC0415 - the layer's, as deployed

    aws, running = guarded
    running[0] = "ResolverFunction"
    client = boto3.client("dynamodb", region_name="us-east-1")
    # The backfill's own Scan (its projection, Select SPECIFIC_ATTRIBUTES) goes through
    client.scan(TableName=aws.table_name, ProjectionExpression=", ".join(STATE_SCAN),
                Select="SPECIFIC_ATTRIBUTES")  # fmt: skip
    # ... a Scan of whole items, or of an identifier's value, is refused
    for wider in ({}, {"ProjectionExpression": "pk, sk, #v", "Select": "SPECIFIC_ATTRIBUTES",
                       "ExpressionAttributeNames": {"#v": "value"}},
                  {"ProjectionExpression": "pk, sk, opt_out"}):  # fmt: skip
        with pytest.raises(ClientError) as refused:
            client.scan(TableName=aws.table_name, **wider)
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"


def test_a_function_reads_its_secret_but_not_a_copy_named_after_it(
    guarded: tuple[Aws, list[str | None]],
) -> None:
    # review s19 S9: `hash-key-*` also matched a copy such as hash-key-old
    _, running = guarded
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arns = {
        name: client.create_secret(Name=f"optout-bridge/prod/{name}", SecretString="s")["ARN"]
        for name in ("hash-key", "hash-key-old", "identity-token-key", "edge-origin")
    }
    # moto's ARN ends as AWS's does: the name, "-" and six random characters
    assert arns["hash-key"].rpartition("-")[2].isalpha()
    assert len(arns["hash-key"].rpartition("-")[2]) == 6
    running[0] = "CaptureFunction"
    for name in ("hash-key", "identity-token-key", "edge-origin"):
        assert client.get_secret_value(SecretId=arns[name])["SecretString"] == "s"
        assert client.get_secret_value(SecretId=f"optout-bridge/prod/{name}")["SecretString"]
    with pytest.raises(ClientError) as refused:
        client.get_secret_value(SecretId=arns["hash-key-old"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_a_worker_may_write_its_jobs_attributes_but_not_an_events_expiry(
    guarded: tuple[Aws, list[str | None]],
) -> None:
    # review s19 S7: a worker's UpdateItem on REQ# items had no attribute limit, so it could
    # set expires_at on a request's EVENT (TTL then deletes the evidence)
    from optout.delivery import job_store  # noqa: PLC0415 - the layer's, as deployed
    from optout.store.table import Table  # noqa: PLC0415

    aws, running = guarded
    client = boto3.client("dynamodb", region_name="us-east-1")
    job = {"request_id": "r1", "system": "segment", "job_id": "r1:segment", "status": "pending"}
    client.put_item(TableName=aws.table_name, Item={"pk": {"S": "REQ#r1"}, **KEY})
    client.put_item(
        TableName=aws.table_name,
        Item={"pk": {"S": "REQ#r1"}, "sk": {"S": "JOB#segment"}, "status": {"S": "pending"}},
    )
    running[0] = "segmentWorker"
    # When the worker sets an EVENT's expiry: refused, and nothing written
    with pytest.raises(ClientError) as refused:
        client.update_item(TableName=aws.table_name, Key={"pk": {"S": "REQ#r1"}, **KEY},
                           UpdateExpression="SET expires_at = :t",
                           ExpressionAttributeValues={":t": {"N": "1"}})  # fmt: skip
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    # ... or asks for the updated item back
    with pytest.raises(ClientError):
        client.update_item(TableName=aws.table_name, Key={"pk": {"S": "REQ#r1"}, **KEY},
                           UpdateExpression="SET receipt = :r", ReturnValues="ALL_NEW",
                           ExpressionAttributeValues={":r": {"M": {}}})  # fmt: skip
    # Then its job's own writes go through: a retry's receipt, then the final one
    table = Table(client, aws.table_name)
    assert job_store.record(table, job, {"code": 500}, "2026-12-01T00:00:00Z", "2026-12-01T01:00Z")
    assert job_store.finish(table, job, "done", {"code": 200}, "2026-12-01T02:00:00Z", True)
    running[0] = None
    items = {i["sk"]: i for i in aws.items()}
    assert "expires_at" not in items["EVENT"] and "receipt" not in items["EVENT"]
    assert items["JOB#segment"]["status"] == "done"


def test_a_worker_may_keep_a_lost_answer_beside_its_jobs_receipt(
    guarded: tuple[Aws, list[str | None]],
) -> None:
    # review s30 races R1: a copy's `done` that lost to another copy's `no_record`
    from optout.delivery import job_store  # noqa: PLC0415 - the layer's, as deployed
    from optout.store.table import Table  # noqa: PLC0415

    aws, running = guarded
    client = boto3.client("dynamodb", region_name="us-east-1")
    stored = {"request_id": "r1", "system": "segment", "job_id": "r1:segment",
              "status": "no_record", "completed_at": "2026-12-01T02:00:00Z"}  # fmt: skip
    client.put_item(TableName=aws.table_name, Item={
        "pk": {"S": "REQ#r1"}, "sk": {"S": "JOB#segment"}, "status": {"S": "no_record"},
        "completed_at": {"S": stored["completed_at"]}})  # fmt: skip
    running[0] = "segmentWorker"
    answer = {"status": "done", "http_status": 200, "at": "2026-12-01T02:00:01Z"}
    assert job_store.keep_lost_answer(Table(client, aws.table_name), stored, answer)
    running[0] = None
    assert {i["sk"]: i for i in aws.items()}["JOB#segment"]["lost_answers"] == [answer]


def test_a_transactions_update_is_held_to_the_roles_attribute_limit(
    guarded: tuple[Aws, list[str | None]],
) -> None:
    # review37c: a transaction's Update is authorised as an UpdateItem, names included (AWS,
    # "Using IAM with DynamoDB transactions"); the local check read none of them, so the
    # resolver's UpdateItem on HOLD, limited to an account's count, let a transaction rewrite a
    # hold's own `status`
    from optout.store import holds, transact  # noqa: PLC0415 - the layer's, as deployed
    from optout.store.table import Table  # noqa: PLC0415

    aws, running = guarded
    client = boto3.client("dynamodb", region_name="us-east-1")
    table = Table(client, aws.table_name)
    hold = {"pk": "HOLD", "sk": "r1#000", "kind": "hold", "status": "held", "expires_at": 9,
            "a": {"type": "device_id", "key": "d"}, "b": {"type": "email", "key": "e"}}  # fmt: skip
    running[0] = "ResolverFunction"
    # When the resolver's transaction sets a hold's status with an Update: refused
    with pytest.raises(ClientError) as refused:
        status = transact.update(table, ("HOLD", "r1#000"), "SET #s = :s", {":s": "released"},
                                 names={"#s": "status"})  # fmt: skip
        transact.write(table, [status])
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    # Then its own counted hold goes through: the hold's put and the count's ADD
    assert holds.put_counted(table, hold, "ID#email#e", 20, 0) == (True, None)
    # ... and the admin's decision takes it off the count
    running[0] = "AdminFunction"
    transact.write(table, holds.uncounting(table, hold | {"counted": holds.count_sk("ID#email#e")}))
    # ... and at the bound the resolver deletes a lapsed hold's entry (a GetItem of the count,
    # an UpdateItem of its entries: holds38) to count the next
    running[0] = "ResolverFunction"
    assert holds.put_counted(table, hold | {"sk": "r2#000"}, "ID#email#e", 1, 0) == (True, None)
    later = hold | {"sk": "r3#000", "expires_at": 20}
    assert holds.put_counted(table, later, "ID#email#e", 1, 10) == (True, None)
    running[0] = None
    items = {i["sk"]: i for i in aws.items()}
    count = items["COUNT#ID#email#e"]["holds"]
    assert (items["r1#000"]["status"], count) == ("held", {"20 r3#000"})
