"""One stop per Ctrl-C or SIGTERM, however many times the request is delivered.

A stop request often reaches a command twice at once: ``timeout`` signals the command and then its
process group, and a supervisor may forward what the group already got. Python raised
KeyboardInterrupt for each, and the second landed inside the clean-up the first had started: a crawl
under ``timeout 5`` left its parents claimed, its run ``running`` and asyncio's tracebacks on the screen.
Now a signal within :data:`REPEAT_WINDOW_S` of the stop it repeats is dropped. A later one (Ctrl-C
pressed again while a stop takes its time) stops again, cutting the clean-up short as before.

:func:`install` makes SIGINT and SIGTERM (what ``docker stop`` and schedulers send; unhandled, it killed
the process as kill -9 does) raise KeyboardInterrupt that way. :func:`run_stoppable` is ``asyncio.run``
for the stages on an event loop: a stop cancels the main task, so its ``finally`` clauses run from their
awaits, not from whatever bytecode the signal met, and KeyboardInterrupt is raised once it has ended.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A signal this soon after an accepted stop is that stop delivered again (microseconds apart from
# ``timeout``; a hurried double Ctrl-C too); later, it is Ctrl-C pressed again: the replica's grace for
# responses in flight (2 s) can still be cut short.
REPEAT_WINDOW_S = 1.0


class _Stops:
    """When the last stop was accepted (signals are the process's, so is this)."""

    def __init__(self) -> None:
        self._accepted_at: float | None = None

    def accept(self) -> bool:
        """Whether a signal arriving now is a new stop, not a repeat of the last one."""
        now = time.monotonic()
        if self._accepted_at is not None and now - self._accepted_at < REPEAT_WINDOW_S:
            return False
        self._accepted_at = now
        return True


_stops = _Stops()


def _raise_stop(signum: int, frame: Any) -> None:
    if _stops.accept():
        raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, once per stop (the CLI's entry point calls this). One
    the process was started with ignored (``nohup``, a script's ``command &``) stays ignored."""
    for number in STOP_SIGNALS:
        if signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _raise_stop)


def ignore_stops() -> None:
    """For the last of a process's exit (an ``atexit`` function: the threads still at work have been
    joined, which a new Ctrl-C may still cut short): a late repeat must not kill it on its way out, as the
    signal's default would once the interpreter's shutdown has dropped Python's handlers."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    """Put ``handlers`` back, each even where a stop's KeyboardInterrupt meets its swap (a handler of a
    signal another thread took runs on the main thread at its next bytecode, mid-swap; setting a handler
    again is harmless); that KeyboardInterrupt is raised once all are back."""
    interrupted: KeyboardInterrupt | None = None
    for number, handler in handlers.items():
        while True:
            try:
                signal.signal(number, handler or signal.SIG_DFL)  # None: not set from Python
                break
            except KeyboardInterrupt as stop:
                interrupted = stop
    if interrupted is not None:
        raise interrupted


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` whose first stop (SIGINT, SIGTERM) cancels ``main``'s task, so its clean-up
    runs from its awaits, and raises KeyboardInterrupt once the run has ended (even where the stage had
    no await left to take the cancel at: the stop is not lost). A later stop raises KeyboardInterrupt at
    once, cutting a clean-up short even where it blocks the loop (a thread join); repeats are dropped
    as :class:`_Stops` says. The handler is Python's own, not the loop's: it runs in the main thread at
    the next bytecode, whether or not the loop is free to read a signal."""
    import asyncio  # here, not at the top: the CLI's start does without it

    stopped = False

    async def guarded() -> T:
        if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
            return await main
        loop, task = asyncio.get_running_loop(), asyncio.current_task()
        assert task is not None

        def on_stop(signum: int, frame: Any) -> None:
            nonlocal stopped
            if not _stops.accept():
                return
            if stopped or loop.is_closed():  # a later stop; or one met after the run, mid-restore
                raise KeyboardInterrupt
            stopped = True
            loop.call_soon_threadsafe(task.cancel)

        previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
        try:
            for number in STOP_SIGNALS:
                if previous[number] is not signal.SIG_IGN:
                    signal.signal(number, on_stop)
            return await main
        finally:
            _restore(previous)

    try:
        result = asyncio.run(guarded())
    except asyncio.CancelledError:
        if stopped:
            raise KeyboardInterrupt from None
        raise
    if stopped:
        raise KeyboardInterrupt
    return result
