"""Waits on other threads that a Ctrl-C can always interrupt.

The kernel hands a process's SIGINT to any of its threads. When a worker thread takes it, Python only
flags it, and the main thread raises KeyboardInterrupt at its next bytecode: a main thread blocked on a
lock with no timeout (``Future.result()``, ``wait()``, ``Event.wait()``) would sleep until the worker
finished, which for a stuck ffmpeg is minutes. These waits wake every ``SIGNAL_POLL_S`` to let it land.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from typing import Any, TypeVar

T = TypeVar("T")

SIGNAL_POLL_S = 0.2  # how late a Ctrl-C taken by a worker thread may land, at most


def wait_first(futures: Iterable[Future]) -> tuple[set[Future], set[Future]]:
    """``concurrent.futures.wait(..., FIRST_COMPLETED)``, interruptible: (done, pending)."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=SIGNAL_POLL_S, return_when=FIRST_COMPLETED)
        if done:
            return done, pending
    return set(), pending


def wait_event(event: threading.Event, timeout: float | None = None) -> bool:
    """``event.wait(timeout)``, interruptible: True once the event is set, False at the timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = SIGNAL_POLL_S if deadline is None else min(SIGNAL_POLL_S, deadline - time.monotonic())
        if event.wait(max(remaining, 0.0)):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def result_of(future: Future[T]) -> T:
    """``future.result()``, interruptible."""
    while not wait([future], timeout=SIGNAL_POLL_S).done:
        pass
    return future.result()


def ordered_map(pool: Executor, fn: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
    """``pool.map(fn, *iterables)``: the results in order, interruptible; when the consumer stops early
    (an error, Ctrl-C) the tasks not yet started are cancelled, so leaving the pool waits only for those
    already running."""
    futures = [pool.submit(fn, *args) for args in zip(*iterables)]
    try:
        for future in futures:
            yield result_of(future)
    finally:
        for future in futures:
            future.cancel()
