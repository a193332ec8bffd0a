"""Signing and verifying the generic webhook (the reference receiver; standard library only).

Headers on every call:
  X-OptOut-Timestamp: <unix seconds>
  X-OptOut-Signature: keyid=<key id>;sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>

The key id names which shared secret signed the call, so a secret can rotate without a gap:
the receiver adds the new key id and secret, the sender switches to it, the receiver drops the
old one. A receiver must reject a timestamp outside its window, an unknown key id, and a
signature that does not match the raw body (compared in constant time). `verify()` does all
three; partners may copy this module as it is. The window is a freshness check, not replay
protection: inside it the same call verifies again (the MAC covers timestamp and body, not
method or URL), so a receiver also de-duplicates on `job_id` (answering a repeat as the first
time) and holds a secret of its own, shared with no other receiver.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping

SIGNATURE_HEADER = "X-OptOut-Signature"
TIMESTAMP_HEADER = "X-OptOut-Timestamp"
DEFAULT_WINDOW_SECONDS = 300
# Epoch seconds in ASCII digits, bounded: str.isdigit() also takes '²', which int() refuses,
# and int() refuses over 4300 digits; either raised ValueError (a 500) instead of a 401.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# A key id as the signature header carries it: the sender refuses to sign with any other
# (webhook.WebhookSecret), so no secret signs calls its receiver could never verify.
KEY_ID = r"[A-Za-z0-9._-]{1,64}"
_SIGNATURE = re.compile(rf"^keyid=({KEY_ID});sha256=([0-9a-f]{{64}})$")


class SignatureError(Exception):
    """Why a webhook call was refused (names no secret and no body content)."""


def mac(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(key_id: str, secret: str, timestamp: str, body: bytes) -> str:
    """The X-OptOut-Signature value for one call."""
    return f"keyid={key_id};sha256={mac(secret, timestamp, body)}"


def verify(
    headers: Mapping[str, str],
    body: bytes,
    keys: Mapping[str, str],
    now: float,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
) -> str:
    """Check one received call; returns the key id that signed it or raises SignatureError.

    `headers` with lower-case names; `keys` maps key id -> shared secret."""
    timestamp = headers.get(TIMESTAMP_HEADER.lower(), "")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureError("missing or malformed timestamp")
    if abs(now - int(timestamp)) > window_seconds:
        raise SignatureError("timestamp outside the accepted window")
    match = _SIGNATURE.match(headers.get(SIGNATURE_HEADER.lower(), ""))
    if match is None:
        raise SignatureError("missing or malformed signature")
    key_id, received = match.groups()
    secret = keys.get(key_id)
    if secret is None:
        raise SignatureError("unknown key id")
    if not hmac.compare_digest(received, mac(secret, timestamp, body)):
        raise SignatureError("signature does not match")
    return key_id
