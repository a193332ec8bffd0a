"""An export's seal (review s26 counsel F1): a SHA-256 chain over its records, page by page.

The server folds every record it hands out into the chain, carries the chain from page to page
in the cursor (with its count, the first page's time and a tag keyed with the deployment's
hash key, so a cursor cannot carry a chain the server did not make), and gives the last page a
`seal`: what was asked, when, how many records and the chain's last link. The admin function
logs it (`export sealed`), so the digest of an export is in the account's own log: a file
altered later no longer matches it. The CLI computes the same chain from the records it gets
(`optout_cli.export_out`: the same two functions, kept in step by the CLI's tests).

A record's link is `sha256(previous link + canonical record)`, starting from 32 zero bytes; its
canonical form is its JSON with sorted keys, ASCII only and the default separators, without
the CSV's fixed columns (`record`, `request_id`, `system`, `status`, `late`) when they are
null or empty, so that the same chain is computed again from a CSV export's rows.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from optout.errors import InvalidInput

START = bytes(32)
FIXED_COLUMNS = ("record", "request_id", "system", "status", "late")
TAG_BYTES = 16
_TAG_CONTEXT = b"optout export seal v1"


def plain(value: Any) -> Any:
    """`value` as JSON gives it back: a set as a sorted list (its order otherwise depends on
    the process), a number kept as stored as an int or a float."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes a record's link hashes (the module's docstring)."""
    kept = {k: v for k, v in record.items() if not (k in FIXED_COLUMNS and v in (None, ""))}
    return json.dumps(kept, sort_keys=True).encode("ascii")


def link(previous: bytes, record: dict[str, Any]) -> bytes:
    return hashlib.sha256(previous + canonical(record)).digest()


@dataclass
class Seal:
    """The chain so far: the first page's server time, the records folded in, the last link."""

    at: str
    records: int = 0
    chain: bytes = field(default=START)

    def fold(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.chain = link(self.chain, record)
        self.records += len(records)

    def token(self, key: bytes, scope: str) -> list[Any]:
        """The cursor's part: the chain, its count and time, tagged for this export's scope."""
        chain = _b64(self.chain)
        return [self.at, self.records, chain, _b64(_tag(key, scope, self.at, self.records, chain))]

    @classmethod
    def read(cls, key: bytes, scope: str, token: Any) -> "Seal":
        """The cursor's chain, refused unless this deployment made it for this export."""
        if not (isinstance(token, list) and len(token) == 4
                and isinstance(token[0], str) and isinstance(token[1], int)
                and isinstance(token[2], str) and isinstance(token[3], str)):  # fmt: skip
            raise InvalidInput("not a cursor of this export", field="cursor")
        at, records, chain, tag = token
        expected = _b64(_tag(key, scope, at, records, chain))
        if not hmac.compare_digest(expected, tag):
            raise InvalidInput("not a cursor of this export", field="cursor")
        return cls(at, records, base64.urlsafe_b64decode(chain + "=="))

    def view(self, scope: dict[str, str]) -> dict[str, Any]:
        """The last page's `seal`, as the route answers and logs it (no identifier value)."""
        return {"export": scope, "exported_at": self.at, "records": self.records,
                "records_sha256": self.chain.hex()}  # fmt: skip


def seal_key(hash_key: bytes) -> bytes:
    """The cursor tags' key, derived from the hash key (never used as is for two things)."""
    return hmac.new(hash_key, _TAG_CONTEXT, hashlib.sha256).digest()


def _tag(key: bytes, scope: str, at: str, records: int, chain: str) -> bytes:
    message = json.dumps([scope, at, records, chain]).encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:TAG_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
