"""A UID2 operator: POST /v3/identity/map, with the encryption envelope of the UID2 docs.

Envelopes are opened and sealed with the official client's own AES-GCM code (PyPI
`uid2-client`, a test dependency): a request its SDK could not have produced, or one sealed
with another key, is refused like the operator refuses it (400 / 401, plain JSON). Both
encodings are served: base64 text (the documented default) and binary
(`application/octet-stream`, what the SDK's IdentityMapV3Client sends), answered in kind.

Every well-formed hash maps to a deterministic raw UID2 (not the hash: a hash sent to The Trade
Desk matches nobody) except the opted-out ones (`optout_hashes`, and by default the hash of
"optout@example.com", the UID2 docs' own example) and malformed ones ("invalid identifier").
A rotated identity (`rotated_hashes`, by default the hash of "rotated@example.com") also has a
previous raw UID2 (`"p"`), as the operator reports one for 90 days after a salt rotation.
Raw UID2s issued are remembered in ISSUED, which the Trade Desk sandbox consults.
"""

import base64
import binascii
import hashlib
import json
import struct
import threading
import time
from typing import Any

from uid2_client.encryption import _decrypt_gcm  # type: ignore[import-untyped]  # the SDK's
from uid2_client.uid2_token_generator import _encrypt_gcm  # type: ignore[import-untyped]

from local.sandbox.wire import SandboxRequest, SandboxResponse, bearer, json_response

OPTED_OUT_EMAIL = "optout@example.com"
ROTATED_EMAIL = "rotated@example.com"
ISSUED: set[str] = set()  # raw UID2s this operator handed out (shared with the TTD sandbox)
_issued_lock = threading.Lock()
MAX_AGE_MS = 60_000  # the operator refuses stale envelopes


def email_hash(email: str) -> str:
    return base64.b64encode(hashlib.sha256(email.encode()).digest()).decode()


def raw_uid2(hashed: str) -> str:
    return base64.b64encode(hashlib.sha256(b"uid2-sandbox:" + hashed.encode()).digest()).decode()


def previous_uid2(hashed: str) -> str:
    """The raw UID2 a rotated identity had before its salt bucket rotated."""
    return raw_uid2("previous:" + hashed)


def refused(status: int, kind: str, message: str) -> SandboxResponse:
    return json_response(status, {"status": kind, "message": message})


class Uid2Operator:
    def __init__(self, credentials: list[tuple[str, str]]) -> None:
        """credentials: (API key, base64 secret) pairs of the clients this operator serves."""
        self.keys = {api_key: base64.b64decode(secret) for api_key, secret in credentials}
        self.optout_hashes = {email_hash(OPTED_OUT_EMAIL)}
        self.rotated_hashes = {email_hash(ROTATED_EMAIL)}  # answered with a previous UID2 too
        self.keep_unissued: set[str] = set()  # UID2s TTD's sandbox must not know (tests)
        self.mapped = 0

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST" or request.path != "/v3/identity/map":
            return refused(404, "client_error", "not found")
        key = self.keys.get(bearer(request) or "")
        if key is None:
            return refused(401, "unauthorized", "invalid API key")
        binary = request.headers.get("content-type") == "application/octet-stream"
        try:
            envelope = request.body if binary else base64.b64decode(request.body, validate=True)
            opened = _decrypt_gcm(envelope[1:], key) if envelope[:1] == b"\x01" else None
        except (binascii.Error, ValueError):
            opened = None
        if opened is None:
            return refused(400, "client_error", "request body could not be decrypted")
        (sent_at,) = struct.unpack(">q", opened[:8])
        if abs(time.time() * 1000 - sent_at) > MAX_AGE_MS:
            return refused(400, "client_error", "request expired")
        try:
            payload = json.loads(opened[16:])
        except ValueError:
            return refused(400, "client_error", "body is not JSON")
        if not isinstance(payload, dict) or not set(payload) <= {"email_hash", "phone_hash"}:
            return refused(400, "client_error", "this sandbox maps email_hash and phone_hash")
        body = {
            k: [self._map(h) for h in payload.get(k) or []] for k in ("email_hash", "phone_hash")
        }
        answer = struct.pack(">q", int(time.time() * 1000)) + opened[8:16]
        answer += json.dumps({"body": body, "status": "success"}).encode()
        sealed = _encrypt_gcm(answer, None, key)
        if binary:
            return SandboxResponse(200, {"content-type": "application/octet-stream"}, sealed)
        return SandboxResponse(200, {"content-type": "text/plain"}, base64.b64encode(sealed))

    def _map(self, hashed: Any) -> dict[str, Any]:
        try:
            valid = isinstance(hashed, str) and len(base64.b64decode(hashed, validate=True)) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            return {"e": "invalid identifier"}
        if hashed in self.optout_hashes:
            return {"e": "optout"}
        uid2 = raw_uid2(hashed)
        previous = previous_uid2(hashed) if hashed in self.rotated_hashes else None
        with _issued_lock:
            ISSUED.update(u for u in (uid2, previous) if u and u not in self.keep_unissued)
        self.mapped += 1
        # "r" in seconds, as the UID2 docs (corrected 2026-04-17) and IABTechLab's own client
        # (uid2-client 2.9.0) have it (docs/vendors.md).
        return {"u": uid2, "p": previous, "r": int(time.time()) + 86_400}
