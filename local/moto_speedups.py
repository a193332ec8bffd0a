"""Cheaper AWS calls into the embedded moto, without changing what any call answers.

Profiled on the local stack (docs/performance.md): moto's own work for a PutItem is under a
tenth of the call; the rest is the HTTP emulation around it. Three parts of that cost nothing
to drop in a process where moto is the only AWS:

- moto lists a response class's methods with `inspect.getmembers` on **every** call to find
  the action's method (`method_names_from_class`); the answer depends on the class alone, so
  it is computed once per class.
- botocore signs every request with SigV4 (an HMAC chain per call) for moto to ignore: moto
  reads only the access key id from the signature, to pick an account, and falls back to the
  same default account without one. Every client of the process (the handlers', the
  pollers') sends unsigned requests; the region comes from the endpoint as before. (At the
  signer, not on boto3's default session: `mock_aws` replaces that session when it starts.)
- moto's response serialiser walks every DynamoDB attribute value of every item it returns
  member by member through botocore's shape model (trying several spellings of each member
  name), although moto keeps items in the wire format already: a Query of a request's
  partition spent most of its time there. An attribute value that is plain JSON (strings,
  booleans, nested maps and lists; no binary) is written as it is, which is what the walk
  produces for it; anything else still takes the walk.

- moto parses every request body through the same shape walk (`parse_parameters`), each
  attribute value of every item member by member; a plain attribute value (as above) is what
  `json.loads` already gave, so it is taken as it is. Blobs still take the walk (base64).
  moto turns every botocore request into its werkzeug `Request` (`normalize_request`, once
  per call since moto 5.2.4) through werkzeug's test-request builder (URL parsing and
  quoting, a header list, stream probing); for a JSON-protocol request (DynamoDB, SQS) to
  `/` with no query string and a body, the same WSGI environ is written directly and moto's
  `Request` made from it (about half the cost per call).
- moto's ReceiveMessage checks each message it returns against the queue's retention period
  by building the queue's whole attribute map up to three times per message (every attribute
  through a regular expression, the message counts by walking the queue): with a backlog of
  thousands, most of a receive. The check reads the queue's retention period directly.
- moto's SendMessage builds the queue's whole attribute map (the message counts by walking
  every message) to read one FIFO setting a standard queue does not have, and DeleteMessage
  walks the queue's messages twice in Python to find a receipt handle: both grow with the
  backlog, so a burst's sends and deletes cost its square. A standard queue's send skips the
  map (the setting is absent from it anyway) and a delete finds its message by handle.
- botocore cleans each part of the User-Agent header character by character on every
  request; the parts are a few fixed strings, so the cleaning is cached per string.

All eight are for the local stack's process (never Lambda); the two wire-format shortcuts
(parse, serialise) are also the tests' moto account's (tests/conftest.py, `install_wire`).
tests/unit/local/test_moto_speedups.py checks that answers are unchanged.
"""

import functools
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

from botocore import useragent
from botocore.awsrequest import AWSPreparedRequest
from botocore.signers import RequestSigner
from moto.core import botocore_stubber, responses
from moto.core.parse import BaseJSONParser
from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    Request,
    environ_key_for_header,
    should_preserve_original_header_name,
)
from moto.core.serialize import BaseJSONSerializer
from moto.core.utils import unix_time
from moto.sqs.models import Message, Queue, SQSBackend

from local.patching import Patches

_patches = Patches()
_wire = Patches()  # the wire-format shortcuts, also installed alone (install_wire)


def install() -> None:
    """Idempotent; for a process whose only AWS is the embedded moto (the local stack)."""
    if _patches.installed():
        return
    # moto's responses module looks the helper up by name at call time: replace it there.
    original = responses.method_names_from_class  # type: ignore[attr-defined]
    _patches.swap(responses, "method_names_from_class", functools.cache(original))
    _patches.swap(RequestSigner, "sign", _unsigned)
    clean = useragent.sanitize_user_agent_string_component
    cached_clean = functools.lru_cache(maxsize=256)(clean)
    _patches.swap(useragent, "sanitize_user_agent_string_component", cached_clean)
    # Where moto's dispatch (and local/moto_routes.py) looks it up, at call time.
    normalize = botocore_stubber.normalize_request  # type: ignore[attr-defined]

    @functools.wraps(normalize)
    def normalize_request(request: Any) -> Any:
        return _json_request(request) or normalize(request)

    _patches.swap(botocore_stubber, "normalize_request", normalize_request)
    _patches.swap(SQSBackend, "is_message_valid_based_on_retention_period", _retained)
    _install_queue_patches()

    install_wire()


def uninstall() -> None:
    """moto and botocore as shipped (tests compare both)."""
    _patches.restore()
    uninstall_wire()
    _by_handle.clear()


def install_wire() -> None:
    """Only the two wire-format shortcuts (a plain attribute value taken and written as it
    is): what tests/conftest.py's moto account uses, answers unchanged, for the test suite's
    time (a tenth of it went to moto's serialiser). Idempotent."""
    if _wire.installed():
        return
    walk = BaseJSONSerializer._serialize_type_structure
    read = BaseJSONParser._parse_structure

    @functools.wraps(read)
    def parse_structure(self: BaseJSONParser, shape: Any, value: Any) -> Any:
        if shape.name == "AttributeValue" and _plain(value):
            return value
        return read(self, shape, value)  # type: ignore[no-untyped-call]

    _wire.swap(BaseJSONParser, "_parse_structure", parse_structure)

    @functools.wraps(walk)
    def serialize_structure(
        self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
    ) -> None:
        if key and shape.name == "AttributeValue" and _plain(value):
            self._default_serialize(serialized, value, shape, key)
            return
        walk(self, serialized, value, shape, key)

    _wire.swap(BaseJSONSerializer, "_serialize_type_structure", serialize_structure)


def wire_installed() -> bool:
    return _wire.installed()


def uninstall_wire() -> None:
    _wire.restore()


# Every receipt handle moto gave out -> its message (weak: a deleted message is let go).
_by_handle: "weakref.WeakValueDictionary[str, Message]" = weakref.WeakValueDictionary()
_NO_MAP = "_local_send_without_attribute_map"


def _install_queue_patches() -> None:
    send = SQSBackend.send_message
    attributes: property = Queue.__dict__["attributes"]
    delete = Queue.delete_message
    mark_received = Message.mark_received

    @functools.wraps(send)
    def send_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        if queue.fifo_queue:
            return send(self, queue_name, *args, **kwargs)
        with _without_attribute_map(queue):
            return send(self, queue_name, *args, **kwargs)

    def queue_attributes(self: Queue) -> dict[str, Any]:
        # During a standard queue's send: the map without the FIFO settings it never holds.
        if self.__dict__.get(_NO_MAP):
            return {}
        result: dict[str, Any] = attributes.fget(self)  # type: ignore[misc]
        return result

    @functools.wraps(delete)
    def delete_message(self: Queue, receipt_handle: str) -> None:
        message = _by_handle.get(receipt_handle)
        if receipt_handle in self.deleted_messages or message is None:
            delete(self, receipt_handle)  # moto's own path: done already, or an unknown handle
            return
        if message not in self._messages:  # identity (Message has no __eq__), in C
            delete(self, receipt_handle)
            return
        self._messages.remove(message)
        self.pending_messages.discard(message)
        self.deleted_messages.update(message.all_receipt_handles)  # type: ignore[arg-type]

    @functools.wraps(mark_received)
    def mark_received_(self: Message, *args: Any, **kwargs: Any) -> None:
        mark_received(self, *args, **kwargs)
        _by_handle[self.receipt_handle] = self  # type: ignore[index]

    _patches.swap(SQSBackend, "send_message", send_message)
    _patches.swap(Queue, "attributes", property(queue_attributes))
    _patches.swap(Queue, "delete_message", delete_message)
    _patches.swap(Message, "mark_received", mark_received_)


@contextmanager
def _without_attribute_map(queue: Queue) -> Iterator[None]:
    queue.__dict__[_NO_MAP] = True
    try:
        yield
    finally:
        queue.__dict__.pop(_NO_MAP, None)


def _retained(self: SQSBackend, queue_name: str, message: Message) -> bool:
    """moto's retention check, with the one attribute it needs read from the queue."""
    retention: int = self.get_queue(queue_name).message_retention_period  # type: ignore[attr-defined]
    return bool(retention + message.sent_timestamp / 1000 > unix_time())  # type: ignore[operator]


def _json_request(request: Any) -> Request | None:
    """moto's `Request` for a botocore JSON-protocol call to `/` with no query string,
    encoding or chunking, made from the WSGI environ werkzeug's `EnvironBuilder` writes for
    it (`Request.from_primitives`); None for anything else (moto's own path)."""
    if not isinstance(request, AWSPreparedRequest):
        return None
    body = request.body
    if isinstance(body, str):
        body = body.encode()
    if not body or not isinstance(body, bytes):
        return None
    content_type = request.headers.get("Content-Type") or ""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("utf-8")
    if not content_type.startswith("application/x-amz-json-"):
        return None
    url = urlsplit(request.url)
    if url.path not in ("", "/") or url.query or url.fragment or url.scheme not in _PORTS:
        return None
    if url.username or url.password or "[" in url.netloc:
        return None
    host = url.netloc
    server_name, _, port = host.partition(":")
    if port and not port.isdigit():
        return None
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "REQUEST_URI": "/",
        "RAW_URI": "/",
        "SERVER_NAME": server_name,
        "SERVER_PORT": str(int(port)) if port else _PORTS[url.scheme],
        "HTTP_HOST": host,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
    }
    preserved: dict[str, str] = {}
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in ("content-encoding", "transfer-encoding", "host"):
            return None  # moto's path: decompression, de-chunking, an explicit host
        if lower in ("content-type", "content-length"):
            continue
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        key = environ_key_for_header(name)
        environ[key] = f"{environ[key]}, {text}" if key in environ else text
        if should_preserve_original_header_name(name):
            preserved[key] = name
    made = Request(environ)
    made.environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved  # after, as moto sets it
    return made


_PORTS = {"https": "443", "http": "80"}


def _unsigned(*_: Any, **__: Any) -> None:
    """RequestSigner.sign that leaves the request as it is."""


WIRE_TYPES = frozenset({"S", "N", "BOOL", "NULL", "M", "L", "SS", "NS"})  # no B, BS: blobs


def _plain(value: Any) -> bool:
    """An attribute value in DynamoDB's JSON wire format, with no binary anywhere in it."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind not in WIRE_TYPES:
        return False
    if kind == "M":
        return isinstance(inner, dict) and all(_plain(v) for v in inner.values())
    if kind == "L":
        return isinstance(inner, list) and all(_plain(v) for v in inner)
    if kind in ("SS", "NS"):
        return isinstance(inner, list) and all(isinstance(v, str) for v in inner)
    if kind in ("BOOL", "NULL"):
        return isinstance(inner, bool)
    return isinstance(inner, str)
