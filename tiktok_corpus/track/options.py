"""What a tracking run is asked to do (:class:`TrackOptions`) and what it reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..config import described
from ..durations import parse_duration
from ..errors import ConfigError
from ..tiktok.blocks import browser_workers, doubling_backoff, headful_browser, politeness_delay, rate_cap
from ..tiktok.site_methods import VIA

DEFAULT_AGES = "1h,6h,1d,3d,7d,14d,30d"


def parse_ages(text: str) -> tuple[int, ...]:
    """``1h,6h,1d`` -> (3600, 21600, 86400): sorted, without repeats; a ConfigError names a bad one."""
    ages = sorted({parse_duration(part, "--ages") for part in text.split(",") if part.strip()})
    if not ages or ages[0] <= 0:
        raise ConfigError(f"--ages {text!r}: give one or more positive durations, e.g. {DEFAULT_AGES}")
    return tuple(ages)


@dataclass(frozen=True)
class TrackOptions:
    """One tracking run's parameters; the pacing defaults are the crawler's, for the real site."""

    ages: str = described(DEFAULT_AGES, "Ages since posting at which to observe each video (any durations).")
    follow: bool = described(False, "Keep running: sleep until the next observation falls due (Ctrl-C stops).")
    until: str | None = described(
        None, "With --follow: stop after this much time on the site's clock (a duration like 7d), or 'never'."
    )
    limit: int | None = described(None, "Stop after this many observations.")
    late_fraction: float = described(
        0.25,
        "An observation later than this fraction of its age (at least 60 s, at most a day: an export at that age "
        "reads no lone sighting farther off) is recorded as missed; in (0, 1].",
    )
    workers: int = browser_workers()
    in_flight: int = described(4, "Observations each worker keeps running at once (still paced by --delay).")
    delay_s: float = politeness_delay()
    max_rate: float | None = rate_cap()
    via: str = described(
        "auto",
        "How an item is read: auto (the cheapest the site accepts, falling back by itself) | page (the video "
        "page's own JSON) | signed (in-page detail API call with frontierSign) | fetch (plain in-page call).",
    )
    fallback_after: int = described(3, "With --via auto: refused calls in a row after which a worker slows down.")
    max_attempts: int = described(5, "Tries of one observation before it is recorded as failed.")
    lease_s: float = 120.0  # a claim another process may take over once its worker stopped renewing it
    # A failed try waits this long on the site's clock before the next, doubling with each, up to the
    # maximum: a video whose reads time out does not spend its tries in seconds (nor an outage them all).
    retry_after_s: float = 30.0
    retry_max_s: float = 600.0
    headful: bool = headful_browser()
    seed: int | None = described(
        None,
        "RNG seed of the pacing jitter, to repeat a run's delays; unset, each run draws its own, so trackers "
        "sharing a database do not pace in step.",
    )

    @property
    def ages_s(self) -> tuple[int, ...]:
        return parse_ages(self.ages)

    @property
    def until_s(self) -> int | None:
        """How long to follow on the site's clock; None: forever (or not following at all)."""
        if self.until in (None, "never"):
            return None
        return parse_duration(self.until, "--until")

    def validate(self) -> None:
        self.ages_s  # noqa: B018 - parsing is the check
        self.until_s  # noqa: B018
        if self.until is not None and not self.follow:
            raise ConfigError("--until needs --follow (without it, track takes what is due now and stops)")
        if self.via not in VIA:
            raise ConfigError(f"unknown --via {self.via!r}: use one of {', '.join(VIA)}")
        for name in ("workers", "in_flight", "fallback_after", "max_attempts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("--limit must be at least 1")
        if not 0 < self.late_fraction <= 1:
            raise ConfigError("--late-fraction must be in (0, 1]")
        if self.delay_s < 0 or (self.max_rate or 0) < 0:
            raise ConfigError("--delay and --max-rate cannot be negative")

    def retry_after(self, attempts: int) -> float:
        """Seconds (site clock) a target waits after its ``attempts``-th try failed."""
        return doubling_backoff(attempts, self.retry_after_s, self.retry_max_s)


@dataclass
class TrackCounters:
    """What the live display shows and the summary reports (this process only)."""

    scheduled: int = 0  # targets added to the schedule by this run
    observations: int = 0  # videos observed (one request each, settling every target due)
    outcomes: Counter = field(default_factory=Counter)  # targets settled, by status
    errors: Counter = field(default_factory=Counter)  # failed tries, by kind
    methods: Counter = field(default_factory=Counter)  # observations per method
    blocks: int = 0
    next_due_in_s: float | None = None  # on the site's clock, while following


@dataclass
class TrackSummary:
    status: str  # done (nothing due) | until_reached | limit_reached | blocked | unreachable
    scheduled: int
    observations: int
    outcomes: dict[str, int]
    errors: dict[str, int]
    methods: dict[str, int]
    blocks: int
    elapsed_s: float
    observations_per_s: float
    queue: dict[str, int]
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TrackProgress(Protocol):
    def update(self, counters: TrackCounters) -> None: ...
