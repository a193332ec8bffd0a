"""Shape checks shared by the sandbox vendors."""

import base64
import binascii
import re
from typing import Any

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def is_sha256_hex(value: Any) -> bool:
    return isinstance(value, str) and bool(SHA256_HEX.match(value))


def is_sha256_b64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def str_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)
