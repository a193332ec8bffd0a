"""The scale stage empties its queues before every size, however soon the next size comes."""

import boto3
from moto import mock_aws

from bench.scale import empty_queues

REGION = "us-east-1"


def test_queues_are_emptied_again_within_moto_s_minute_between_purges() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        urls = [sqs.create_queue(QueueName=f"q{n}")["QueueUrl"] for n in range(2)]
        # Given queues emptied once, then filled again at once (a quick next size)
        empty_queues(sqs, urls)
        for url in urls:
            sqs.send_message(QueueUrl=url, MessageBody="job")
        # When they are emptied again well within 60 s (moto refuses a second PurgeQueue)
        empty_queues(sqs, urls)
        # Then every queue is empty
        for url in urls:
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            assert counts["ApproximateNumberOfMessages"] == "0"
