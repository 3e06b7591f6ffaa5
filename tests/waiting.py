"""Waiting on a state in tests that drive real processes: poll the state, never sleep a fixed time."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable


def wait_for(condition: Callable[[], bool], what: str, *procs: subprocess.Popen, timeout_s: float = 120) -> None:
    """Poll a state until it holds; fail at once if one of ``procs`` ends first, or at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        ended = [proc.args for proc in procs if proc.poll() is not None]
        assert not ended, f"a process ended before {what}: {ended}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s}s"
        time.sleep(0.02)


def interrupt_when(
    proc: subprocess.Popen, condition: Callable[[], bool], what: str, *, sig: int = signal.SIGINT, again: int = 0
) -> str:
    """Ctrl-C as a terminal sends it (to the process group: start ``proc`` with ``start_new_session``)
    once ``condition`` holds; returns its stderr once it has ended. Killed, if it has not, on a failure.
    ``again``: the same signal delivered that many times more to the command, 50 ms apart, while it stops
    (``timeout`` signals the command and then its group; a supervisor may forward it once more)."""
    try:
        wait_for(condition, what, proc)
        os.killpg(proc.pid, sig)
        for _ in range(again):
            time.sleep(0.05)  # not a wait on a state: the repeats are spread over the command's clean-up
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return stderr


async def until(check: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    """:func:`wait_for` inside an event loop: poll ``check``, yielding to the loop between looks."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s}s"
        await asyncio.sleep(0.01)
