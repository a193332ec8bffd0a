"""`python -m local` stops on SIGTERM and SIGINT: the handler only notes the signal, and the
main thread's wait sees it. A handler that set the stop event itself could run inside that
event's own lock (a second SIGTERM, as make passes on its process group's) and hang there."""

import logging
import signal
import threading
import time

import pytest

from local.__main__ import StopRequest


def test_a_signal_while_the_stop_events_lock_is_held_is_taken_at_once() -> None:
    # Given the stop event's lock held, as it is while the main thread runs Event.set or wait
    stop_event = threading.Event()
    request = StopRequest(stop_event)
    with stop_event._cond:  # the lock a handler that set the event would wait for
        # When the SIGTERM handler runs
        handler = threading.Thread(target=request, args=(signal.SIGTERM, None), daemon=True)
        handler.start()
        handler.join(1)
        # Then it has returned without waiting for that lock
        assert not handler.is_alive()
    assert request.signal_name == "SIGTERM"


def test_the_wait_ends_on_a_signal_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # Given the stack waiting, and SIGINT (Ctrl-C) noted by the handler a moment later
    stop_event = threading.Event()
    request = StopRequest(stop_event)
    threading.Timer(0.05, request, args=(signal.SIGINT, None)).start()
    # When the main thread waits
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="local.stack"):
        request.wait(poll_seconds=0.01)
    # Then it stops waiting soon after, naming the signal, though nothing set the event
    assert time.monotonic() - started < 2
    assert "SIGINT received: stopping" in caplog.messages
    assert not stop_event.is_set()


def test_the_wait_ends_when_the_event_is_set_without_a_signal(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop_event = threading.Event()
    request = StopRequest(stop_event)
    threading.Timer(0.05, stop_event.set).start()
    with caplog.at_level(logging.INFO, logger="local.stack"):
        request.wait(poll_seconds=5)
    assert request.signal_name is None
    assert not caplog.messages
