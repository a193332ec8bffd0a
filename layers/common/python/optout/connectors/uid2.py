"""A UID2 operator client for one call: POST /v3/identity/map, with its encryption envelope.

The Trade Desk matches opt-outs on *raw* UID2s, which only a UID2 operator can derive from an
email or phone. Request: JSON `{"email_hash": [...], "phone_hash": [...]}` (base64 SHA-256 of
the UID2-normalised value), wrapped in the envelope of IABTechLab's "Encrypting Requests and
Decrypting Responses": base64 of 0x01 | 12-byte IV | AES-256-GCM(client secret,
8-byte big-endian millisecond timestamp | 8-byte nonce | JSON) with its 16-byte tag; Bearer
API key. A 200 answer is base64 of IV | ciphertext | tag over timestamp | the same nonce |
JSON; anything else is plain JSON `{"status", "message"}`. Answer arrays keep the order of the
request: `{"u": raw UID2, "p": previous raw UID2 or null, "r": refresh-from, Unix seconds}` or
`{"e": "optout" | "invalid identifier"}` (any other item is not understood: that job is
retried, never read as "no UID2").

AES-GCM comes from `cryptography` (imported on first use: only this connector needs it; ~20 ms
against ~170 ms for the uid2-client SDK, see docs/decisions.md). Raw UID2s are pseudonymous
identifiers: they never go to logs, receipts or errors.
"""

import base64
import binascii
import json
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from optout.connectors.errors import DeliveryError
from optout.connectors.http import HttpClient

MAP_PATH = "/v3/identity/map"
# Why the operator maps no UID2: "One of two possible values" (IABTechLab/uid2docs,
# docs/endpoints/post-identity-map.md, v3 "Response Body Properties", read 2026-12-04). Any
# other `e`, or an item with neither `u` nor `e`, is no verdict on the person: read as "no
# UID2" it made a no_record receipt, counted as delivered, with The Trade Desk never called.
UNMAPPED_REASONS = ("optout", "invalid identifier")
ENVELOPE_VERSION = 1
MAX_ITEMS = 5000  # per identity/map request (UID2 docs)
SECRET_KEY_BYTES = 32  # AES-256-GCM: the UID2 portal issues 32-byte client secrets


@dataclass(frozen=True)
class Mapping:
    uid2: str | None  # None: unmapped, see reason
    previous: str | None = None
    reason: str | None = None  # "optout" | "invalid identifier" (UNMAPPED_REASONS)
    # False: neither a UID2 nor one of the documented reasons (an `e` of another value, or
    # none): not the operator's answer as documented, so no verdict on this person (retried)
    understood: bool = True


class Uid2Client:
    def __init__(
        self,
        http: HttpClient,
        base_url: str,
        api_key: str,
        secret_key: str,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.http = http
        self.url = base_url.rstrip("/") + MAP_PATH
        self.api_key = api_key
        try:
            self.key = base64.b64decode(secret_key, validate=True)
        except (binascii.Error, ValueError):
            raise DeliveryError(
                "uid2: secret key is not base64", retryable=False, config=True
            ) from None
        if len(self.key) != SECRET_KEY_BYTES:  # else AESGCM's ValueError, read as our bug
            raise DeliveryError(
                "uid2: secret key is not a 32-byte key", retryable=False, config=True
            )
        self.clock = clock
        self.random_bytes = random_bytes
        self.status: int | None = None  # the last identity/map answer's HTTP status

    def map(
        self, email_hashes: list[str], phone_hashes: list[str]
    ) -> tuple[list[Mapping], list[Mapping]]:
        """Map hashes to raw UID2s; answers in request order."""
        from cryptography.exceptions import InvalidTag  # noqa: PLC0415 - see module doc
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        nonce = self.random_bytes(8)
        plain = struct.pack(">q", int(self.clock() * 1000)) + nonce
        plain += json.dumps({"email_hash": email_hashes, "phone_hash": phone_hashes}).encode()
        iv = self.random_bytes(12)
        envelope = bytes([ENVELOPE_VERSION]) + iv + AESGCM(self.key).encrypt(iv, plain, None)
        answer = self.http.send(
            "POST",
            self.url,
            step="uid2 identity/map",
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "text/plain"},
            body=base64.b64encode(envelope),
        )
        self.status = answer.status
        try:
            sealed = base64.b64decode(answer.body, validate=True)
            opened = AESGCM(self.key).decrypt(sealed[:12], sealed[12:], None)
        except (binascii.Error, ValueError, InvalidTag):
            raise DeliveryError("uid2 identity/map: undecryptable answer", retryable=True) from None
        if opened[8:16] != nonce:
            raise DeliveryError("uid2 identity/map: nonce mismatch", retryable=True)
        try:
            payload = json.loads(opened[16:])
            body = payload["body"] if payload.get("status") == "success" else {}
            emails = [_mapping(m) for m in body.get("email_hash") or []]
            phones = [_mapping(m) for m in body.get("phone_hash") or []]
        except (ValueError, KeyError, AttributeError, TypeError):
            raise DeliveryError("uid2 identity/map: malformed answer", retryable=True) from None
        if len(emails) != len(email_hashes) or len(phones) != len(phone_hashes):
            raise DeliveryError("uid2 identity/map: answer does not match request", retryable=True)
        return emails, phones


def _mapping(item: Any) -> Mapping:
    if not isinstance(item, dict):
        raise TypeError("not an object")
    if isinstance(item.get("u"), str):
        previous = item.get("p")
        return Mapping(item["u"], previous if isinstance(previous, str) else None)
    # The operator's reason goes onto receipts (no_record notes): one of the two documented
    # values only, never another text (it could quote the person)
    reason = item.get("e")
    if reason in UNMAPPED_REASONS:
        return Mapping(None, reason=str(reason))
    return Mapping(None, understood=False)
