"""Every AWS call a function makes in the tests, checked against that function's role in
template.yaml (local/iam.py evaluates it, as IAM would).

moto enforces no IAM, so a call a role does not allow would pass every test and fail on AWS
(AccessDenied) the first time its path runs. `record_calls` notes each call a handler loaded by
`tests.support.lambdas.load_function` makes (`attributed` says which function is running), and
tests/conftest.py checks them all with `denied` when its moto account closes.
"""

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

import boto3

from local import iam as local_iam
from local.iam import Policies, Request, requests_of

__all__ = ["Policies", "Request", "attributed", "denied", "function_id", "record_calls",
           "requests_of", "roles"]  # fmt: skip

# The function (template logical id) whose handler is running, if any.
current_function: ContextVar[str | None] = ContextVar("current_function", default=None)


@cache
def roles() -> Policies:
    return local_iam.load_roles()


def denied(requests: list[Request], policies: Policies | None = None) -> list[Request]:
    """The requests their function's role (in template.yaml, unless `policies`) does not allow."""
    return local_iam.denied(requests, roles() if policies is None else policies)


# -- which function is running ---------------------------------------------------------------


def function_id(module_name: str, event: Any = None) -> str | None:
    """The template's logical id for a handler module loaded as functions_<dir>_app. The
    worker is one function per system: SYSTEM_NAME names it or, where the tests run one worker
    for every system, the queue its batch came from (None for a batch from several)."""
    match = re.fullmatch(r"functions_(\w+?)_app", module_name)
    if not match:
        return None
    directory = match.group(1)
    if directory != "worker":
        return _function_by_directory().get(directory)
    system = os.environ.get("SYSTEM_NAME")
    if not system:
        records = event.get("Records", []) if isinstance(event, dict) else []
        found = {re.search(r"-(\w+)-jobs$", str(r.get("eventSourceARN", ""))) for r in records}
        keys = {m.group(1) if m else "" for m in found}
        if len(keys) != 1:
            return None
        (system,) = keys
    worker = f"{system}Worker"
    return worker if worker in local_iam._template()["Resources"] else None


@cache
def _function_by_directory() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, resource in local_iam._template()["Resources"].items():
        uri = resource.get("Properties", {}).get("CodeUri", "")
        if resource.get("Type") == "AWS::Serverless::Function" and isinstance(uri, str):
            found.setdefault(uri.removeprefix("functions/").strip("/"), name)
    return found


def attributed(module_name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """`handler`, noting while it runs which function's role its AWS calls are made under."""

    def run(*args: Any, **kwargs: Any) -> Any:
        token = current_function.set(function_id(module_name, args[0] if args else None))
        try:
            return handler(*args, **kwargs)
        finally:
            current_function.reset(token)

    return run


# -- recording -------------------------------------------------------------------------------


@contextmanager
def record_calls() -> Iterator[list[Request]]:
    """Every AWS call made under a function (clients created after this starts, on boto3's
    default session) as the requests IAM would authorise."""
    if boto3.DEFAULT_SESSION is None:  # moto's mock clears it; boto3.client would make this one
        boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events
    made: list[Request] = []

    def note(params: dict[str, Any], model: Any, **_: Any) -> None:
        function = current_function.get()
        if function is not None:
            service = model.service_model.service_name
            made.extend(requests_of(function, service, model.name, params))

    unique = f"iam-record-calls-{id(made)}"
    events.register("before-parameter-build", note, unique_id=unique)
    try:
        yield made
    finally:
        events.unregister("before-parameter-build", unique_id=unique)
