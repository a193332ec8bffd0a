"""Identity tokens as a site's login backend mints them, signed with the development key."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from optout.settings import LOCAL_TOKEN_KEY, LOCAL_TOKEN_KID

AUDIENCE = "optout-bridge"


def token_for(
    *,
    key: str = LOCAL_TOKEN_KEY,
    kid: str = LOCAL_TOKEN_KID,
    algorithm: str = "HS256",
    issued: datetime | None = None,
    lifetime: timedelta = timedelta(minutes=5),
    audience: str = AUDIENCE,
    **claims: Any,
) -> str:
    """claims: email / phone / customer_id / device_id, or any claim to test a refusal."""
    at = issued or datetime.now(UTC)
    body = {"aud": audience, "iat": int(at.timestamp()), "exp": int((at + lifetime).timestamp()),
            "jti": uuid.uuid4().hex}  # fmt: skip
    body.update(claims)
    return jwt.encode(body, key, algorithm=algorithm, headers={"kid": kid})
