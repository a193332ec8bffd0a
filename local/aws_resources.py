"""Create the table and queues **from template.yaml**, so the local stack cannot drift from prod.

Only the properties DynamoDB/SQS emulation needs are read: key schema, attribute definitions,
GSIs, stream view type, TTL; each system's queue attributes and redrive policy (the resources
`<key>JobsQueue` / `<key>DeadLetterQueue` that scripts/gen_template.py writes per system).
"""

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from local.cfn_yaml import load_template

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


@cache
def _declared() -> dict[str, Any]:
    """template.yaml, parsed once per process when no template is passed (the tests): parsing
    its 130 KB takes about half a second, and the tests create a table for each of about a
    thousand tests, some a table per example. Only read here, never changed."""
    return load_template(TEMPLATE)


@dataclass
class LocalResources:
    table_name: str
    stream_arn: str
    queue_urls: dict[str, str] = field(default_factory=dict)  # system -> queue URL
    dlq_urls: dict[str, str] = field(default_factory=dict)  # system -> DLQ URL
    max_receive_count: dict[str, int] = field(default_factory=dict)


def table_properties(template: dict[str, Any]) -> dict[str, Any]:
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::DynamoDB::Table":
            props: dict[str, Any] = resource["Properties"]
            return props
    raise LookupError("template.yaml declares no DynamoDB table")


def create_table(dynamodb: Any, name: str, template: dict[str, Any] | None = None) -> str:
    """Create the table as the template declares it; returns its stream ARN."""
    props = table_properties(template or _declared())
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if "GlobalSecondaryIndexes" in props:
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if "StreamSpecification" in props:
        view = props["StreamSpecification"]["StreamViewType"]
        kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    answer = dynamodb.create_table(**copy.deepcopy(kwargs))  # the cached template stays as read
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return str(answer["TableDescription"].get("LatestStreamArn", ""))


def create_queues(
    sqs: Any, systems: list[str], prefix: str, template: dict[str, Any] | None = None
) -> tuple[dict[str, str], dict[str, str], dict[str, int]]:
    """One jobs queue + DLQ per system (queue key) with that system's settings in the template."""
    loaded = template or _declared()
    queues: dict[str, str] = {}
    dlqs: dict[str, str] = {}
    counts: dict[str, int] = {}
    for system in systems:
        queue_props, dlq_props = queue_properties(loaded, system)
        max_receive = int(queue_props.get("RedrivePolicy", {}).get("maxReceiveCount", 5))
        dlq_url = sqs.create_queue(
            QueueName=f"{prefix}-{system}-dlq",
            Attributes=_attributes(dlq_props),
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        attributes = _attributes(queue_props)
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}
        )
        queues[system] = sqs.create_queue(
            QueueName=f"{prefix}-{system}-jobs", Attributes=attributes
        )["QueueUrl"]
        dlqs[system] = dlq_url
        counts[system] = max_receive
    return queues, dlqs, counts


def queue_properties(
    template: dict[str, Any], queue_key: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A system's jobs queue and DLQ properties. A system the template does not declare (a
    local config with extra systems) gets the first declared system's, as its settings are
    generated from one prototype."""
    resources = template["Resources"]
    keys = [k.removesuffix("JobsQueue") for k in resources if k.endswith("JobsQueue")]
    if not keys:
        raise LookupError("template.yaml declares no per-system queues (<key>JobsQueue)")
    key = queue_key if f"{queue_key}JobsQueue" in resources else keys[0]
    queue = resources[f"{key}JobsQueue"].get("Properties", {})
    dlq = resources.get(f"{key}DeadLetterQueue", {}).get("Properties", {})
    return queue, dlq


def _attributes(props: dict[str, Any]) -> dict[str, str]:
    wanted = ("VisibilityTimeout", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds")
    return {name: str(props[name]) for name in wanted if isinstance(props.get(name), int | str)}


def create_queue_resource(sqs: Any, logical_id: str, prefix: str, template: dict[str, Any]) -> str:
    """A stand-alone queue of the template (e.g. the resolver's on-failure destination)."""
    resource = template["Resources"].get(logical_id)
    if not resource or resource.get("Type") != "AWS::SQS::Queue":
        raise LookupError(f"template.yaml declares no SQS queue {logical_id}")
    props = resource.get("Properties", {})
    url: str = sqs.create_queue(QueueName=f"{prefix}-{logical_id}", Attributes=_attributes(props))[
        "QueueUrl"
    ]
    return url


def queue_arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return arn
