"""Through the local stack (review s34 stranger M1): anyone may post an opt-out naming a
customer id, and Segment makes a billed tracked user of every userId its Tracking API is
sent. With `customer_id_form`, an id outside the workspace's own form reaches no Segment
call; the request still completes, and one of the form is sent as before."""

import json
import uuid
from typing import Any

from tests.e2e.conftest import StackFactory
from tests.e2e.test_local_stack import settled, shipped_systems


def segment_user_ids(stack: Any) -> list[str]:
    status, calls = stack.json("GET", "/_sandbox/segment/requests")
    assert status == 200, calls
    return [e["userId"] for c in calls for e in json.loads(c["body"])["batch"]]


def test_a_made_up_customer_id_makes_no_segment_user_and_a_real_one_is_sent(
    start_stack: StackFactory,
) -> None:
    # Given the shipped systems, Segment told the form of the shop's customer ids
    systems = shipped_systems()
    (segment,) = [s for s in systems["systems"] if s["name"] == "segment"]
    segment["options"]["customer_id_form"] = {
        "prefix": "cust-",
        "characters": "0-9",
        "max_length": 8,
        "examples": ["cust-20261204"],
    }
    stack = start_stack(systems)
    made_up, real = f"made-up-{uuid.uuid4().hex[:8]}", "cust-20261204"

    # When a stranger posts an opt-out naming a made-up customer id, and a person their own
    answers = []
    for customer_id in (made_up, real):
        status, answer = stack.json("POST", "/v1/opt-out", {"customer_id": customer_id})
        assert status == 202, answer
        answers.append(answer)

    # Then both requests complete, and Segment was sent the real id only
    for answer in answers:
        done = stack.wait_for(lambda a=answer: settled(stack, a["request_id"]))
        assert done["status"] == "completed", done
    assert segment_user_ids(stack) == [real]
