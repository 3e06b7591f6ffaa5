"""Clocks: zero-argument callables returning unix seconds (float), so time can be injected and sped up.

The replica's site clock and the growth tracker read time through one of these; tests pass their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

Clock = Callable[[], float]


def clock_kind(clock: Clock) -> str:
    """How a moment read off ``clock`` is labelled where it is stored: ``local`` for this machine's own
    clock, ``site`` for an injected site clock (a replica's scaled or virtual one)."""
    return "local" if clock is time.time else "site"


class ScaledClock:
    """Wall time sped up ``scale`` times around ``origin``: ``origin + scale * (wall() - origin)``.

    The reading depends only on (origin, scale) and the wall clock, so two processes built with the same
    origin and scale (the replica, and a tracker polling it) read the same site time at the same moment.
    A scale of 1 is real time; 10080 runs a week per minute.
    """

    def __init__(self, origin: float, scale: float, wall: Clock = time.time) -> None:
        if not scale > 0:
            raise ValueError(f"a clock's scale must be positive, not {scale}")
        self.origin = origin
        self.scale = scale
        self._wall = wall

    def __call__(self) -> float:
        return self.origin + self.scale * (self._wall() - self.origin)

    def __repr__(self) -> str:
        return f"ScaledClock(origin={self.origin!r}, scale={self.scale!r})"


class VirtualClock:
    """A site clock that stands still until a waiter moves it: tests and the demo track a simulated
    week in seconds, and every observation happens at exactly the moment it was due."""

    def __init__(self, start: float) -> None:
        self._now = float(start)

    def __call__(self) -> float:
        return self._now

    def advance_to(self, moment: float) -> None:
        """Jump forward to ``moment`` (never back)."""
        self._now = max(self._now, float(moment))

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"


async def sleep_until(clock: Clock, moment: float, *, wake: asyncio.Event, at_most_s: float) -> None:
    """Wait until ``clock`` reads ``moment``, ``wake`` is set, or ``at_most_s`` wall seconds pass.

    A :class:`VirtualClock` jumps there at once; a :class:`ScaledClock` waits the wall time its scale
    makes of it; any other clock is taken to run in real time.
    """
    if isinstance(clock, VirtualClock):
        clock.advance_to(moment)
        return
    scale = clock.scale if isinstance(clock, ScaledClock) else 1.0
    wall_s = min(max((moment - clock()) / scale, 0.0), at_most_s)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), wall_s)
