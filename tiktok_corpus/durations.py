"""Durations as people write them on the command line (``90s``, ``6h``, ``7d``, ``1d12h``), both ways."""

from __future__ import annotations

import re

from .errors import ConfigError

DURATION_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
WRITTEN_UNITS = ("d", "h", "m", "s")
DURATION_PART = re.compile(r"(\d+)([wdhms])")
# The longest duration taken: ten years, older than TikTok's videos. A longer one overflowed the times it
# is added to (a traceback, or track targets due in a billion years stored for good).
MAX_DURATION_S = 10 * 365 * DURATION_UNITS["d"]


def parse_duration(text: str, option: str) -> int:
    """A duration in whole seconds: a number and a unit (``90s``, ``15m``, ``6h``, ``7d``, ``2w``), or
    several (``1d12h``), or ``0``; a ConfigError naming the option otherwise."""
    compact = text.strip()
    if compact == "0":  # none at all needs no unit
        return 0
    parts = DURATION_PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ConfigError(
            f"{option} {text!r}: expected a duration like 90s, 15m, 6h, 7d, 2w or 1d12h (units w, d, h, m, s)"
        )
    seconds = sum(int(number) * DURATION_UNITS[unit] for number, unit in parts)
    if seconds > MAX_DURATION_S:
        raise ConfigError(f"{option} {text!r}: at most {format_duration(MAX_DURATION_S)} (ten years)")
    return seconds


def format_duration(seconds: int) -> str:
    """Whole seconds written the way :func:`parse_duration` reads them, days first (``14d``, ``1d12h``)."""
    if seconds == 0:
        return "0s"
    written = []
    for unit in WRITTEN_UNITS:
        count, seconds = divmod(seconds, DURATION_UNITS[unit])
        if count:
            written.append(f"{count}{unit}")
    return "".join(written)
