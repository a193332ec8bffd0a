"""The Trade Desk Data API: POST /data/deletion-optout/advertiser.

The body is validated with TTD's Data API client models (PyPI `ttd-data`, a test dependency):
AdvertiserDsrRequest must parse and re-serialise to exactly what we sent (an unknown key is a
typo TTD would ignore, so it is refused here), RequestType must be the SDK's enum, and each
item must carry exactly one identifier. Failed items are reported as TTD does, in
`FailedLines` with a 1-based `ItemNumber` (the SDK's client maps them back with `- 1`).

A `UID2` must be a raw UID2: this sandbox knows the ones its UID2 operator sandbox issued
(local/sandbox/uid2.py ISSUED); anything else, such as a hashed email, matches nobody at TTD
and is reported here as an `InvalidUserId` failed line, so the mistake cannot pass unseen.

Size: TTD answers 413 "Request size exceeds the allowed limit" and documents no figure (its
OpenAPI for the endpoint): tests set `max_items` (a request with more items is refused) or
`oversized` (raw UID2s that make any request holding one too large, even alone).
"""

from typing import Any

from pydantic import ValidationError
from ttd_data.models.advertiserdsrrequest import AdvertiserDsrRequest
from ttd_data.models.partnerdsrrequesttype import PartnerDsrRequestType

from local.sandbox import uid2
from local.sandbox.wire import SandboxRequest, SandboxResponse, json_response, parse_json


class TradeDesk:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.auth_token = secrets.get("auth_token")
        self.opted_out: list[str] = []  # raw UID2s opted out (tests look here)
        self.max_items: int | None = None
        self.oversized: set[str] = set()

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST" or request.path != "/data/deletion-optout/advertiser":
            return json_response(404, "Not Found")
        if not self.auth_token or request.headers.get("ttd-auth") != self.auth_token:
            return json_response(401, "Authentication failed")
        body = parse_json(request)
        try:
            parsed = AdvertiserDsrRequest.model_validate(body)
        except ValidationError:
            return _bad("Invalid request")
        if not isinstance(body, dict) or parsed.model_dump(by_alias=True, mode="json") != body:
            return _bad("Unknown field in request")
        items = body.get("Items")
        if (
            not body.get("AdvertiserId")
            or body.get("RequestType") not in {t.value for t in PartnerDsrRequestType}
            or not isinstance(items, list)
            or not items
        ):
            return _bad("Invalid request")
        values = {str(v) for item in items if isinstance(item, dict) for v in item.values()}
        if (self.max_items is not None and len(items) > self.max_items) or values & self.oversized:
            return json_response(413, "Request size exceeds the allowed limit")
        failed = []
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict) or len(item) != 1:
                return _bad("Invalid item", number)
            ((kind, value),) = item.items()
            if kind == "UID2" and value not in uid2.ISSUED:
                failed.append(
                    {
                        "AdvertiserId": body["AdvertiserId"],
                        "ErrorCode": "InvalidUserId",
                        "ItemNumber": str(number),
                        "Message": "not a raw UID2",
                    }
                )
            elif kind == "UID2":
                self.opted_out.append(str(value))
        return json_response(200, {"FailedLines": failed})


def _bad(message: str, number: int | None = None) -> SandboxResponse:
    line: dict[str, Any] = {"ErrorCode": "ItemDeserializationError", "Message": message}
    if number is not None:
        line["ItemNumber"] = str(number)
    return json_response(400, {"FailedLines": [line]})
