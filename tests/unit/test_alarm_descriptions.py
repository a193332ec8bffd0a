"""What the alarms tell the on-call is true of the product (review s22 proof P8)."""

from local.aws_resources import TEMPLATE
from local.cfn_yaml import load_template


def _description(name: str) -> str:
    resources = load_template(TEMPLATE)["Resources"]
    return " ".join(str(resources[name]["Properties"]["AlarmDescription"]).split())


def test_jobs_failed_points_the_on_call_at_the_operators_record_not_the_public_status() -> None:
    # The public status reads `processing` while any other counted system is still out, and
    # never counts a system reached only through a linked identifier (status.aggregate): it
    # often does not show `failed` for the failed job the alarm is about.
    text = _description("JobsFailedAlarm")
    assert "optout status REQUEST_ID" in text
    assert "GET /v1/requests/{id} shows failed" not in text


def test_jobs_failed_says_where_the_on_call_finds_the_request_id() -> None:
    # The alarm's metric carries no request id: the description must say where it is, and
    # what to do once fixed (review s22 diff B13)
    text = _description("JobsFailedAlarm")
    assert "WARNING log `job failed` gives its request id" in text
    assert "`optout replay SYSTEM`" in text
    assert len(text) <= 1024  # CloudWatch's limit on an alarm description
