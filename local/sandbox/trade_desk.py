"""The Trade Desk Data API: POST /data/deletion-optout/advertiser."""

from typing import Any

from local.sandbox.checks import is_sha256_b64
from local.sandbox.wire import SandboxRequest, SandboxResponse, json_response, parse_json

ITEM_KEYS = {"TDID", "DAID", "UID2", "UID2Token", "RampID", "CoreID", "EUID", "EUIDToken", "ID5"}
REQUEST_TYPES = {"OptOut", "Deletion"}


class TradeDesk:
    def __init__(self, secrets: dict[str, Any]) -> None:
        self.auth_token = secrets.get("auth_token")

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST" or request.path != "/data/deletion-optout/advertiser":
            return json_response(404, "Not Found")
        if not self.auth_token or request.headers.get("ttd-auth") != self.auth_token:
            return json_response(401, "Authentication failed")
        body = parse_json(request)
        items = body.get("Items") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not body.get("AdvertiserId")
            or body.get("RequestType") not in REQUEST_TYPES
            or not isinstance(items, list)
            or not items
        ):
            return json_response(
                400, {"FailedLines": [{"ErrorCode": "Unknown", "Message": "Invalid request"}]}
            )
        failed = []
        for number, item in enumerate(items):
            keys = set(item) if isinstance(item, dict) else set()
            if len(keys) != 1 or not keys <= ITEM_KEYS:
                return json_response(
                    400,
                    {
                        "FailedLines": [
                            {
                                "ErrorCode": "Unknown",
                                "ItemNumber": str(number),
                                "Message": "Invalid item",
                            }
                        ]
                    },
                )
            if "UID2" in keys and not is_sha256_b64(item["UID2"]):
                failed.append(
                    {
                        "AdvertiserId": body["AdvertiserId"],
                        "ErrorCode": "InvalidUserId",
                        "ItemNumber": str(number),
                        "Message": "invalid UID2",
                    }
                )
        return json_response(200, {"FailedLines": failed})
