"""The SQS job message (optout.delivery.messages): the plain form our resolver and worker write
is read without pydantic; any body is read as the pydantic model reads it, and a body the
model refuses is refused (MalformedMessage, naming nothing from the body)."""

import json
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from optout.delivery.message_model import JobMessageModel
from optout.delivery.messages import JobMessage, MalformedMessage, _plain, read_job_message
from optout.jobs_queue import job_message

IDS = st.sampled_from(
    ["r1", "req-2f9c", "a" * 100, "a" * 101, "", "r:1", "é", "\ud800", "r\n", " r", "1"]
)
SYSTEMS = st.sampled_from(["crm", "google_ads", "a" * 40, "a" * 41, "Crm", "crm\n", "", "1x"])
CONFIRMS = st.none() | st.integers(-1, 3) | st.sampled_from([10**6, 10**6 + 1, 10**30, True])
VALUES = st.one_of(
    IDS, SYSTEMS, CONFIRMS, st.floats(allow_nan=True), st.lists(st.integers(0, 1), max_size=2)
)


@st.composite
def bodies(draw: st.DrawFn) -> str:
    """Mostly the plain form, one part of it changed now and then, written several ways."""
    request_id = draw(st.sampled_from(["r1", "req-2f9c", "a" * 100]) | IDS)
    system = draw(st.sampled_from(["crm", "google_ads"]) | SYSTEMS)
    job_id = f"{request_id}:{system}"
    message: dict[str, Any] = {
        "job_id": draw(st.just(job_id) | st.sampled_from([f"{request_id}:x", "ab", job_id])),
        "request_id": request_id,
        "system": system,
    }
    if draw(st.booleans()):
        message["confirm"] = draw(CONFIRMS)
    changed = st.lists(st.sampled_from([*message, "extra", "confirm"]), max_size=2)
    for key in draw(st.just([]) | changed):
        message[key] = draw(VALUES)
    for key in draw(st.just([]) | st.lists(st.sampled_from(list(message)), max_size=1)):
        del message[key]
    text = json.dumps(message, sort_keys=draw(st.booleans()), ensure_ascii=draw(st.booleans()))
    form = draw(st.sampled_from(["as is"] * 4 + ["twice a key", "cut", "list", "spaced"]))
    if form == "twice a key":
        text = text[:-1] + ', "system": "crm"}' if message else text
    elif form == "cut":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif form == "list":
        text = f"[{text}]"
    elif form == "spaced":
        text = f" \n{text}\t"
    return text


def _model_reads(body: str) -> JobMessage | str:
    try:
        return JobMessageModel.model_validate_json(body).message()
    except ValidationError:
        return "refused"


def _read(body: str) -> JobMessage | str:
    try:
        return read_job_message(body)
    except MalformedMessage:
        return "refused"


@given(bodies())
@example('{"job_id":"r1:crm","request_id":"r1","system":"crm","confirm":2}')
@example('{"job_id":"r1:crm","request_id":"r1","system":"crm","confirm":2.0}')
@example('{"job_id":"r1:crm","request_id":"r1","system":"crm","system":"crm"}')
@example('{"job_id":"r1:crm","request_id":"r1","system":"crm","confirm":NaN}')
@example('{"job_id":"r1:crm","request_id":"r\\ud800","system":"crm"}')
def test_any_body_is_read_as_the_model_reads_it(body: str) -> None:
    plain = _plain(body)
    made = _model_reads(body)
    event("plain" if plain is not None else f"model: {'refused' if made == 'refused' else 'ok'}")
    if plain is not None:  # the plain reader answers only where the model accepts, alike
        assert plain == made and type(plain.confirm) is type(made.confirm)  # type: ignore[union-attr]
    assert _read(body) == made


@given(
    st.text("abcdef0123456789-", min_size=1, max_size=100),
    st.from_regex(r"[a-z][a-z0-9_]{0,39}", fullmatch=True),
    st.none() | st.integers(1, 10**6),
)
def test_the_forms_we_write_take_the_plain_path(
    request_id: str, system: str, confirm: int | None
) -> None:
    # The resolver's (json.dumps, keys sorted) and the worker's status check (to_json)
    resolver = json.dumps(
        {"job_id": f"{request_id}:{system}", "request_id": request_id, "system": system},
        sort_keys=True,
    )
    assert _plain(resolver) == JobMessage(f"{request_id}:{system}", request_id, system)
    check = JobMessage(f"{request_id}:{system}", request_id, system, confirm)
    assert _plain(check.to_json()) == check
    model = JobMessageModel.model_validate_json(check.to_json())
    assert check.to_json() == model.model_dump_json(exclude_none=True)


def test_a_refusal_names_nothing_from_the_body() -> None:
    with pytest.raises(MalformedMessage) as refused:
        read_job_message('{"job_id": "secret-a:crm", "request_id": "secret-b", "system": "crm"}')
    assert "secret" not in str(refused.value)


def test_a_message_whose_job_id_is_not_its_request_and_system_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="job_id"):
        JobMessage("r1:crm", "r2", "crm")


def test_the_resolvers_message_is_read_as_the_job_it_names() -> None:
    # the body the resolver queues (jobs_queue.job_message), as JobQueue.send writes it
    body = json.dumps(job_message("r-1~0123456789ab", "webhook"), sort_keys=True)
    assert read_job_message(body) == JobMessage(
        "r-1~0123456789ab:webhook", "r-1~0123456789ab", "webhook"
    )
