"""A request's body as the HTTP front frames it: Content-Length or chunked, within a limit.

API Gateway takes a body framed either way and hands the function the decoded bytes. What it
does with a framing that is wrong is not documented, so the front refuses it in the API's
error envelope rather than closing the connection or passing on part of a body:
- a Content-Length that is not one whole number of digits, or both framings at once (the
  request-smuggling shape, RFC 9112 6.3): 400, naming the header;
- a declared or decoded length over the limit: 413, before more than the limit is read;
- a body that ends before its Content-Length, or a chunk that is not `size CRLF data CRLF`:
  400, and nothing reaches a function.
"""

import re
from email.message import Message
from io import BufferedIOBase
from typing import NamedTuple

from local.http_types import Outgoing, error_answer

# A chunk-size line (hex size and any extensions) longer than this is not a chunk size.
MAX_CHUNK_LINE = 4096
MAX_TRAILER_LINES = 32
_LENGTH = re.compile(r"[0-9]{1,18}")  # digits only: int() would also take "+5", " 5", "5_0"
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r\n")


class Refusal(Exception):
    """The answer to a body the front will not pass on."""

    def __init__(self, status: int, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.answer: Outgoing = error_answer(status, code, message, field)


class Framing(NamedTuple):
    length: int  # the declared Content-Length (0 when chunked or absent)
    chunked: bool


def framing(headers: Message, max_bytes: int) -> Framing:
    """How the body is framed, or a Refusal; checked before any of it is read (also on
    `Expect: 100-continue`, so a client told 413 never sends the body)."""
    lengths = headers.get_all("Content-Length") or []
    codings = ",".join(headers.get_all("Transfer-Encoding") or [])
    if codings:
        if lengths:
            raise Refusal(
                400,
                "bad_request",
                "send Content-Length or Transfer-Encoding, not both",
                "Transfer-Encoding",
            )
        _check_codings(codings)
        return Framing(0, True)
    if not lengths:
        return Framing(0, False)
    values = {value.strip() for value in lengths}
    value = values.pop()
    if values or not _LENGTH.fullmatch(value):
        raise Refusal(
            400, "bad_request", "Content-Length must be one whole number of bytes", "Content-Length"
        )
    length = int(value)
    if length > max_bytes:
        raise too_large(max_bytes)
    return Framing(length, False)


def read(rfile: BufferedIOBase, framed: Framing, max_bytes: int) -> bytes:
    """The body's bytes, or a Refusal; never more than max_bytes are kept."""
    if framed.chunked:
        return _read_chunked(rfile, max_bytes)
    body = rfile.read(framed.length) if framed.length else b""
    if len(body) < framed.length:  # the client closed (or half-closed) its side early
        raise Refusal(
            400, "bad_request", "the body is shorter than its Content-Length", "Content-Length"
        )
    return body


def too_large(max_bytes: int) -> Refusal:
    # The capture and admin functions' own words for a body over the limit (raw_body.admit).
    return Refusal(413, "too_large", f"the body exceeds {max_bytes} bytes", "body")


def _check_codings(codings: str) -> None:
    names = [name.strip().lower() for name in codings.split(",")]
    if names[-1] != "chunked":  # RFC 9112 6.3: then the body's length cannot be known
        raise Refusal(
            400, "bad_request", "Transfer-Encoding must end with chunked", "Transfer-Encoding"
        )
    if names != ["chunked"]:
        raise Refusal(
            501,
            "not_implemented",
            "the only Transfer-Encoding taken is chunked",
            "Transfer-Encoding",
        )


def _read_chunked(rfile: BufferedIOBase, max_bytes: int) -> bytes:
    body = bytearray()
    while size := _chunk_size(rfile):
        if len(body) + size > max_bytes:
            raise too_large(max_bytes)
        data = rfile.read(size)
        if len(data) < size or rfile.read(2) != b"\r\n":
            raise _malformed_chunk()
        body += data
    _skip_trailers(rfile)
    return bytes(body)


def _chunk_size(rfile: BufferedIOBase) -> int:
    line = rfile.readline(MAX_CHUNK_LINE + 1)
    found = _CHUNK_SIZE.fullmatch(line)
    if found is None:
        raise _malformed_chunk()
    return int(found.group(1), 16)


def _skip_trailers(rfile: BufferedIOBase) -> None:
    """Trailer fields after the last chunk are dropped (API Gateway passes none on)."""
    for _ in range(MAX_TRAILER_LINES):
        line = rfile.readline(MAX_CHUNK_LINE + 1)
        if line == b"\r\n":
            return
        if not line.endswith(b"\r\n"):
            break
    raise _malformed_chunk()


def _malformed_chunk() -> Refusal:
    return Refusal(400, "bad_request", "the chunked body is not size CRLF data CRLF chunks", "body")
