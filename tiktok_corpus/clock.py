"""Clocks: zero-argument callables returning unix seconds (float), so time can be injected and sped up.

The replica's site clock and the growth tracker read time through one of these; tests pass their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


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
