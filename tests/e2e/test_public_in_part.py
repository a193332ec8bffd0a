"""The public status page and a vendor's answer about the data it holds (review s27 stranger
F2): anyone may file an opt-out naming someone's email beside a phone of their own, and read
its status by the request id they were given. The Trade Desk's UID2 operator answers whether
an email is opted out of UID2 (the sandbox operator: "optout@example.com", its docs' example);
the public page said "Completed in part" for that email and plain "Completed" for another.
The operator's record still says in part; the public page and JSON read the same for both."""

import random
import re
import uuid
from typing import Any

import pytest

from local.sandbox.uid2 import OPTED_OUT_EMAIL
from optout.webform_pages import COMPLETED_IN_PART
from tests.e2e.conftest import Stack
from tests.e2e.test_local_stack import SIGV4, settled

pytestmark = pytest.mark.e2e


def _opt_out(stack: Stack, email: str) -> tuple[str, dict[str, Any], str]:
    """A stranger's request naming `email` beside a phone of their own: its request id, its
    public JSON once settled and its public page's text."""
    phone = f"+1415555{random.randint(1000, 9999)}"  # a test's own number
    status, answer = stack.json("POST", "/v1/opt-out", {"email": email, "phone": phone})
    assert status == 202, answer
    request_id = answer["request_id"]
    final = stack.wait_for(lambda: settled(stack, request_id))
    status, _, page = stack.request("GET", f"/v1/requests/{request_id}",
                                    headers={"accept": "text/html"})  # fmt: skip
    assert status == 200
    text = " ".join(re.sub(r"<style>.*?</style>|<[^>]+>", " ", page.decode(), flags=re.S).split())
    return request_id, final, text


def test_the_public_page_does_not_tell_whether_an_email_opted_out_of_uid2(
    local_stack: Stack,
) -> None:
    # Given a stranger's request naming an email the UID2 operator answers is opted out, and
    # one naming an email it maps, each beside the stranger's own phone
    target_id, target, target_page = _opt_out(local_stack, OPTED_OUT_EMAIL)
    _, control, control_page = _opt_out(local_stack, f"e2e-{uuid.uuid4().hex[:12]}@example.com")
    # Then the operator's record says The Trade Desk did not take the email (in part)...
    status, detail = local_stack.json("GET", f"/v1/admin/requests/{target_id}", headers=SIGV4)
    assert status == 200, detail
    assert {"system": "trade_desk", "identifier_types": ["email"]} in detail.get("not_taken", [])
    # ... and the public page reads the same for both: plain completed, no "in part"
    for page in (target_page, control_page):
        assert "Completed: we have finished with your request" in page, page[:300]
        assert COMPLETED_IN_PART not in page and "in part" not in page
    # And the public JSON tells them apart by nothing but its own ids and times
    same = ("status", "systems_total", "systems_done", "systems_failed")
    assert {k: target[k] for k in same} == {k: control[k] for k in same}
    assert target["status"] == "completed" and target["completed_at"] and control["completed_at"]
    assert set(target) == set(control)
    # While an email with no form a vendor can match (decided by its text alone: no UID2 and
    # no Google form for a Gmail address of "+tag" only) still reads in part
    _, _, no_form_page = _opt_out(local_stack, "+news@gmail.com")
    assert COMPLETED_IN_PART in no_form_page
