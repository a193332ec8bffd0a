"""A deterministic scheduler for running several resolvers "at once" over one moto table.

Each task runs in its own thread, but only one thread runs at a time: a thread hands the baton
back at every DynamoDB call (`BatonClient` wraps the client), and the scheduler picks who goes
next from a list of choices (drawn by hypothesis, so a failing interleaving shrinks and
replays). moto is serial and strongly consistent; this is how races between concurrent Lambda
invocations become visible and repeatable in a test.
"""

import threading
from collections.abc import Callable, Iterator
from typing import Any

Burst = tuple[int, int]  # (which ready task, by sorted name; how many store calls it makes)


class Scheduler:
    def __init__(self, plan: list[Burst]) -> None:
        """Run the chosen task for its burst of store calls, then the next burst; once the plan
        is spent, the tasks run to the end one after the other. Bursts let a task stop at any
        point while another runs a long way: where races hide."""
        self._plan: Iterator[Burst] = iter(plan)
        self._burst: tuple[str | None, int] = (None, 0)
        self._cond = threading.Condition()
        self._turn: str | None = None
        self._parked: list[str] = []
        self._done: set[str] = set()
        self._errors: list[BaseException] = []
        self.trace: list[str] = []  # who ran after each switch: the interleaving, for messages
        self._names: set[str] = set()

    def checkpoint(self) -> None:
        """Called by a task before each store call: wait until the scheduler picks it."""
        me = threading.current_thread().name
        with self._cond:
            if me not in self._names:
                return  # a call outside the scheduled tasks (set-up, the model): no baton
            self._parked.append(me)
            self._turn = None
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._turn == me)

    def run(self, tasks: dict[str, Callable[[], None]]) -> None:
        self._names = set(tasks)
        threads = [
            threading.Thread(target=self._body, args=(task,), name=name, daemon=True)
            for name, task in tasks.items()
        ]
        for thread in threads:
            thread.start()
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._turn is None and len(self._parked) + len(self._done) == len(tasks)
                )
                if len(self._done) == len(tasks):
                    break
                ready = sorted(self._parked)
                chosen = self._pick(ready)
                self._parked.remove(chosen)
                self._turn = chosen
                self.trace.append(chosen)
                self._cond.notify_all()
        for thread in threads:
            thread.join()
        if self._errors:
            raise self._errors[0]

    def _pick(self, ready: list[str]) -> str:
        last, left = self._burst
        if last in ready and left > 0:
            self._burst = (last, left - 1)
            return last
        which, length = next(self._plan, (0, 10**9))
        chosen = ready[which % len(ready)]
        self._burst = (chosen, length - 1)
        return chosen

    def _body(self, task: Callable[[], None]) -> None:
        me = threading.current_thread().name
        try:
            self.checkpoint()  # start parked: the scheduler decides who goes first
            task()
        except BaseException as error:  # re-raised by run() in the test thread
            self._errors.append(error)
        finally:
            with self._cond:
                self._done.add(me)
                self._turn = None
                self._cond.notify_all()


class BatonClient:
    """A DynamoDB client whose every operation first waits for the scheduler's baton."""

    def __init__(self, client: Any, scheduler: Scheduler) -> None:
        self._client = client
        self._scheduler = scheduler

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or name in ("exceptions", "meta") or not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._scheduler.checkpoint()
            return attribute(*args, **kwargs)

        return call
