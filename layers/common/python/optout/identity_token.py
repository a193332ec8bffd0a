"""Signed identity tokens: how a site's login backend vouches for who is on a browser.

A token is a JWT (RFC 7519) signed with HMAC-SHA256 by the site's backend with a key it shares
with the bridge (Secrets Manager). It binds the identifiers of the logged-in person (`email`,
`phone`, `customer_id`), optionally the browser, to one audience, for a short time. The
browser is named by `device_sha256`, a hash of its device id, so that a copy of a token seen
in a log or a screenshot does not give the id away (the id is that browser's credential,
review s29 stranger S2); `device_id` in clear is still taken from older minters. Only HS256 is
accepted (no `alg: none`, no algorithm confusion); the `kid` header picks the key, so a key
can rotate with the previous one still accepted (docs/decisions.md).

PyJWT is imported on first use: most requests carry no token, and a cold start is imports.
"""

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from optout import identifiers as ids
from optout.errors import InvalidInput

ALGORITHM = "HS256"
FIELD = "identity_token"
BOUND_TYPES: tuple[ids.IdType, ...] = ("email", "phone", "customer_id")
LEEWAY_SECONDS = 30  # clock skew between the site's backend and the bridge
DEVICE_DIGEST_CLAIM = "device_sha256"
_DIGEST_RE = re.compile(r"[A-Za-z0-9_-]{43}")


class InvalidToken(InvalidInput):
    """The identity token was refused; the message says why, never what it carried."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field=FIELD)


class StaleToken(InvalidToken):
    """A token that was good once: expired, or already used for another request. The webform
    takes the opt-out without it (an opt-out needs no token); the banner sends it again."""


class DeviceNotSent(StaleToken):
    """A token naming a device (`device_sha256`/`device_id`), posted without a device: it is
    never used, so whoever saw it before its page did learns nothing through it, and the page
    can still use it (review s31 stranger F2). Like a stale one, the webform takes the typed
    identifiers without it; with nothing else named it is refused."""


class TokenUnverifiable(StaleToken):
    """A token the bridge cannot check because its own token keys are unusable (the secret
    mistyped): our fault, not the sender's, so it is treated as a stale one. The webform takes
    the typed identifiers without it; the banner sends its choice again without it."""

    def __init__(self) -> None:
        super().__init__("identity_token could not be verified: the token keys are unusable")


@dataclass(frozen=True)
class TokenKeys:
    """The current signing key and, during a rotation, the previous one (by kid)."""

    current_kid: str
    keys: dict[str, bytes] = field(repr=False)


class KeySource(Protocol):
    """Where `TokenVerifier` finds a token's key by its kid: fixed `TokenKeys`, or the secret as
    it is now (`optout.token_keys.TokenKeyring`, which re-reads it for a kid it does not know,
    and whose lookup raises `TokenUnverifiable` while the secret holds no usable key)."""

    @property
    def keys(self) -> Mapping[str, bytes]: ...


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a valid token binds: normalised identifiers, and the SHA-256 of the device id if
    it names one (from either device claim: the id itself is never kept)."""

    identifiers: tuple[ids.Identifier, ...]
    device_digest: bytes | None = field(repr=False)
    kid: str
    issued_at: int
    expires_at: int
    # One token, one request (capture keys the event by a hash of what was signed): a copy
    # someone saw in a log, a cached page or a screenshot cannot make a second request.
    use_key: str = ""

    def binds_device(self, device_id: str) -> bool:
        """Whether `device_id` may use this token: any device when it names none."""
        if self.device_digest is None:
            return True
        return hmac.compare_digest(_device_digest(device_id), self.device_digest)

    def evidence(self) -> dict[str, Any]:
        """For the request record: which key and when, never the identifiers."""
        return {"kid": self.kid, "iat": self.issued_at, "exp": self.expires_at,
                "types": sorted(i.type for i in self.identifiers)}  # fmt: skip


def _device_digest(device_id: str) -> bytes:
    return hashlib.sha256(device_id.encode()).digest()


def _base64url(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def device_sha256(device_id: str) -> str:
    """The `device_sha256` claim for a device id: SHA-256 of the id's bytes (ASCII, exactly as
    the cookie holds it), base64url without padding (RFC 7515 §2): 43 characters."""
    return _base64url(_device_digest(device_id))


_BAD_DIGEST = (
    "identity_token claim device_sha256 is not valid: the base64url SHA-256 of the device id, "
    "43 characters, no padding"
)


def _claimed_digest(claims: dict[str, Any]) -> bytes | None:
    """The device a token names, as a digest: `device_sha256`, or `device_id` (older minters:
    readable by anyone who sees the token); a token with both must name one device."""
    device, hashed = claims.get("device_id"), claims.get(DEVICE_DIGEST_CLAIM)
    if device is not None and not (isinstance(device, str) and ids.DEVICE_ID_RE.fullmatch(device)):
        raise InvalidToken("identity_token claim device_id is not valid")
    digest = None
    if hashed is not None:
        if not (isinstance(hashed, str) and _DIGEST_RE.fullmatch(hashed)):
            raise InvalidToken(_BAD_DIGEST)
        digest = base64.urlsafe_b64decode(hashed + "=")
        if _base64url(digest) != hashed:  # stray bits in the last character: not canonical
            raise InvalidToken(_BAD_DIGEST)
    if device is None:
        return digest
    if digest is not None and not hmac.compare_digest(digest, _device_digest(device)):
        raise InvalidToken("identity_token claims device_id and device_sha256 disagree")
    return _device_digest(device)


def _whole(value: object) -> bool:
    """Whole seconds: an int, never a bool (JSON's `true` is no time, though Python's bool is an
    int: `iat: true` read as 1 was refused for its lifetime, the wrong reason: review s30 N2)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check_times(issued: int, expires: int, not_before: object, at: float) -> None:
    """exp, iat and nbf against `at` (the request's arrival), with LEEWAY_SECONDS each way."""
    if expires <= at - LEEWAY_SECONDS:
        raise StaleToken("identity_token has expired")
    if issued > at + LEEWAY_SECONDS:
        raise InvalidToken("identity_token is issued in the future")
    if not_before is not None and (
        isinstance(not_before, bool)
        or not isinstance(not_before, int | float)
        or not_before > at + LEEWAY_SECONDS
    ):
        raise InvalidToken("identity_token is malformed or not yet valid")


class TokenVerifier:
    def __init__(self, keys: KeySource, audience: str, max_lifetime_seconds: int) -> None:
        self._keys = keys
        self._audience = audience
        self._max_lifetime = max_lifetime_seconds

    def verify(self, token: str, now: datetime) -> VerifiedIdentity:
        import jwt  # noqa: PLC0415 - see the module docstring

        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("identity_token is not a JWT") from None
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"identity_token must be signed with {ALGORITHM}")
        key = self._keys.keys.get(str(header.get("kid")))
        if key is None:
            raise InvalidToken("identity_token names an unknown key (kid)")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                leeway=LEEWAY_SECONDS,
                # the times are checked against `now` (_identity), not PyJWT's wall clock
                options={
                    "require": ["exp", "iat", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise InvalidToken("identity_token is for another audience") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("identity_token signature does not verify") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("identity_token is malformed or not yet valid") from None
        signed_part = token.rsplit(".", 1)[0].encode()
        use_key = hashlib.sha256(signed_part).hexdigest()
        return self._identity(claims, str(header["kid"]), now, use_key)

    def _identity(
        self, claims: dict[str, Any], kid: str, now: datetime, use_key: str
    ) -> VerifiedIdentity:
        issued, expires = claims["iat"], claims["exp"]
        if not (_whole(issued) and _whole(expires)):
            raise InvalidToken("identity_token iat and exp must be whole seconds")
        if expires - issued > self._max_lifetime:
            raise InvalidToken(f"identity_token may live at most {self._max_lifetime} seconds")
        _check_times(issued, expires, claims.get("nbf"), now.timestamp())
        found: list[ids.Identifier] = []
        for id_type in BOUND_TYPES:
            raw = claims.get(id_type)
            if raw is None:
                continue
            if not isinstance(raw, str):
                raise InvalidToken(f"identity_token claim {id_type} must be a string")
            # A national number would be read in the caller's unsigned jurisdiction: another
            # country's number, bound as verified. The backend signs the whole number.
            if id_type == "phone" and not raw.strip().startswith("+"):
                raise InvalidToken("identity_token claim phone must be E.164: + and country code")
            try:
                found.append(ids.normalise(id_type, raw))
            except InvalidInput:
                raise InvalidToken(f"identity_token claim {id_type} is not valid") from None
        if not found:
            raise InvalidToken("identity_token binds no email, phone or customer_id")
        device = _claimed_digest(claims)
        return VerifiedIdentity(tuple(found), device, kid, issued, expires, use_key)


def mint(
    keys: TokenKeys,
    audience: str,
    identity: dict[str, str],
    now: datetime,
    lifetime_seconds: int = 300,
    device_id: str | None = None,
) -> str:
    """Sign a token the way a site's backend does (README); used by the local demo login. The
    device is named by its hash (`device_sha256`), never in clear."""
    import jwt  # noqa: PLC0415

    issued = int(now.timestamp())
    # `jti`: two logins in one second must not mint the same token (each is good for one use).
    claims: dict[str, Any] = {"aud": audience, "iat": issued, "exp": issued + lifetime_seconds,
                              "jti": uuid.uuid4().hex}  # fmt: skip
    claims.update({k: v for k, v in identity.items() if k in BOUND_TYPES and v})
    if device_id:
        claims[DEVICE_DIGEST_CLAIM] = device_sha256(device_id)
    kid = keys.current_kid
    return jwt.encode(claims, keys.keys[kid], algorithm=ALGORITHM, headers={"kid": kid})
