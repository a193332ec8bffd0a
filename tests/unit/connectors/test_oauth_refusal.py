"""A token endpoint's refusal whose `error` is not RFC 6749's string (an object, a list):
still a DeliveryError with the status, never a TypeError out of the worker."""

from typing import Any

import pytest

from optout.connectors.errors import DeliveryError
from optout.connectors.http import HttpResponse
from optout.connectors.oauth import BearerSession


class _Answers:
    def __init__(self, status: int, body: bytes) -> None:
        self.answer = HttpResponse(status, {}, body)

    def send(self, *_: Any, **__: Any) -> HttpResponse:
        return self.answer


@pytest.mark.parametrize(
    ("body", "reason", "auth"),
    [(b'{"error": {"message": "bad client"}}', "vendor token: HTTP 400", False),
     (b'{"error": ["invalid_client"]}', "vendor token: HTTP 400", False),
     (b'{"error": "invalid_client", "error_description": "x"}',
      "vendor token: HTTP 400 invalid_client", True)],
    ids=["an object", "a list", "the RFC's string"],
)  # fmt: skip
def test_a_token_refusal_of_any_shape_is_a_delivery_error(
    body: bytes, reason: str, auth: bool
) -> None:
    session = BearerSession(_Answers(400, body), "https://token.invalid/", {}, "vendor")  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as refused:
        session.token()
    assert (refused.value.reason, refused.value.http_status, refused.value.auth) == (
        reason, 400, auth)  # fmt: skip
    assert not refused.value.retryable
