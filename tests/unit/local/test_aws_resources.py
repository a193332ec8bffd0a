"""The local stack's queues take each system's settings from its own resources in the template."""

from local.aws_resources import TEMPLATE, queue_properties
from local.cfn_yaml import load_template


def test_each_system_gets_its_own_queue_settings_and_an_undeclared_one_the_first() -> None:
    # Given a template where one system's jobs queue differs from the others
    template = load_template(TEMPLATE)
    template["Resources"]["metaJobsQueue"]["Properties"]["VisibilityTimeout"] = 42
    # When the local stack reads settings per system
    meta, _ = queue_properties(template, "meta")
    braze, braze_dlq = queue_properties(template, "braze")
    unknown, _ = queue_properties(template, "newvendor")
    # Then each system has its own, and a system the template lacks borrows a declared one's
    assert meta["VisibilityTimeout"] == 42
    assert braze["VisibilityTimeout"] == 180
    assert braze["RedrivePolicy"]["maxReceiveCount"] == 8
    assert braze_dlq["MessageRetentionPeriod"] == 1209600
    assert unknown["VisibilityTimeout"] in (42, 180)


def test_each_jobs_queue_keeps_a_message_as_long_as_its_dlq_and_longer_than_its_retries() -> None:
    # Given the template (a message moved to a DLQ keeps its first enqueue time, and a job
    # waits at most one visibility of under 12 h per allowed receive; both queues keep SQS's
    # most, 14 days, since review s31 abuse F4)
    template = load_template(TEMPLATE)
    systems = [
        name.removesuffix("JobsQueue")
        for name in template["Resources"]
        if name.endswith("JobsQueue")
    ]
    for system in systems:
        # When the local stack reads a system's queues
        jobs, dlq = queue_properties(template, system)
        # Then the jobs queue's retention is between its longest wait and its DLQ's retention
        longest_wait = jobs["RedrivePolicy"]["maxReceiveCount"] * 12 * 3600
        assert longest_wait < jobs["MessageRetentionPeriod"] <= dlq["MessageRetentionPeriod"]
