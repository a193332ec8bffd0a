"""Cheaper AWS calls into the embedded moto, without changing what any call answers.

Profiled on the local stack (docs/performance.md): moto's own work for a PutItem is under a
tenth of the call; the rest is the HTTP emulation around it. Two parts of that cost nothing
to drop in a process where moto is the only AWS:

- moto lists a response class's methods with `inspect.getmembers` on **every** call to find
  the action's method (`method_names_from_class`); the answer depends on the class alone, so
  it is computed once per class.
- botocore signs every request with SigV4 (an HMAC chain per call) for moto to ignore: moto
  reads only the access key id from the signature, to pick an account, and falls back to the
  same default account without one. The boto3 default session's clients (the handlers', the
  pollers') send unsigned requests; the region comes from the endpoint as before.

Both are for the local stack's process only (never the tests' moto, never Lambda).
"""

import functools
from typing import Any

import boto3
import botocore
from moto.core import responses

_installed = False


def install() -> None:
    """Idempotent; call before the handlers build their clients."""
    global _installed  # noqa: PLW0603 - one patch per process
    if _installed:
        return
    _installed = True
    # moto's responses module looks the helper up by name at call time: replace it there.
    original = responses.method_names_from_class  # type: ignore[attr-defined]
    responses.method_names_from_class = functools.cache(original)  # type: ignore[attr-defined]
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("choose-signer", _unsigned)


def _unsigned(**_: Any) -> Any:
    return botocore.UNSIGNED
