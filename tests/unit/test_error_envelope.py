"""The error envelope written without pydantic (optout.http.answers.Refused.body) is the
`ErrorOut` model's own JSON, to the byte: the hot routes answer a domain refusal without
importing the models, the Event Handler's refusals go through the same method."""

import pytest

from optout.api_models import ErrorOut
from optout.http.answers import Refused

MESSAGES = [
    "identity_token was issued for another device",
    'quotes " and \\ backslashes',
    "control \n\r\t\b\f \x00 \x1f \x7f characters",
    "non-ASCII: § é € 😀 \u2028 \u2029",
    "",
]


@pytest.mark.parametrize("message", MESSAGES)
@pytest.mark.parametrize("field", ["body", "links[0].a.value", None])
def test_the_envelope_is_the_error_models_json(message: str, field: str | None) -> None:
    refused = Refused(422, "invalid_field", message, field)
    expected = ErrorOut.model_validate(
        {"error": {"code": "invalid_field", "message": message, "field": field}}
    ).model_dump_json()
    assert refused.body() == expected
