"""The latency stage counts Python's garbage collections by the timed window they started in
(docs/performance.md, part G): the p99 of the handler and of the bare put_item moves with them.
A count, not a time."""

import gc

from bench.latency import GcWindows


def test_a_collection_is_counted_in_the_window_open_when_it_starts() -> None:
    with GcWindows("handler", "put_item") as windows:
        windows.open = "handler"
        gc.collect(0)
        gc.collect(2)
        windows.open = "put_item"
        gc.collect(1)
        windows.open = None
        gc.collect()  # between the windows: the harness's own, counted nowhere
    gc.collect()  # after the stage: not seen at all
    assert windows.as_dict() == {
        "handler": {"gen0": 1, "gen1": 0, "gen2": 1},
        "put_item": {"gen0": 0, "gen1": 1, "gen2": 0},
    }
    assert windows._seen not in gc.callbacks
