"""What a download run is told (limits, retry policy) and what it reports."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import described
from ..store.queue import DEFAULT_LEASE_S
from ..tiktok.blocks import BlockPolicy


@dataclass(frozen=True)
class DownloadOptions:
    """Limits and retry policy; the defaults suit TikTok, tests shrink the waits."""

    concurrency: int = described(
        8,
        "Transfers in flight at once, at most 6 to one host (files being checked and recorded meanwhile do not count).",
    )
    max_bytes: int = described(200_000_000, "Refuse files larger than this (bytes).")
    min_free_bytes: int = 100_000_000  # kept free on the data disk beyond the files being written
    per_host: int = 6  # transfers in flight to one host (the help of ``concurrency`` says it)
    attempts: int = 4  # tries of one URL (tenacity stop_after_attempt)
    retry_budget_s: float = 120.0  # and at most this long on one URL (tenacity stop_after_delay)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    # A try that has averaged less than this once it has run ``read_timeout_s`` is cut (and retried): a
    # server trickling a byte at a time never trips the read timeout, and would hold a slot for ever.
    min_bytes_per_s: int = 10_000
    probe_timeout_s: float = 60.0
    refreshes: int = 1  # fresh-URL rounds per video after the first
    # Files in a row that got no answer in any of their tries (every candidate, the refresh, yt-dlp) before
    # the run stops as an unreachable site (exit 4), giving them back: the crawl's limit for requests.
    give_up_after_unanswered: int = BlockPolicy.give_up_after_unreachable
    use_ytdlp: bool = True
    poll_s: float = 1.0  # how often ``follow`` mode looks for newly pending rows
    lease_s: float = DEFAULT_LEASE_S  # a claim's lease, renewed while the run holds the row
    clock: Callable[[], float] = time.time  # wall clock for URL expiry


@dataclass
class DownloadSummary:
    """What one run did; ``failures`` counts final failure kinds."""

    downloaded: int = 0
    verified: int = 0  # already on disk, size and sha256 checked, not fetched again
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: Counter = field(default_factory=Counter)
    methods: Counter = field(default_factory=Counter)  # http | ytdlp, per downloaded file

    @property
    def none_obtained(self) -> bool:
        """Files were tried and not one was obtained (none downloaded, none already present): a failed run."""
        return self.failed > 0 and not (self.downloaded or self.verified)

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        """The summary as JSON-ready values (``corpus download --json``, the crawl's summary)."""
        return {
            "downloaded": self.downloaded,
            "verified": self.verified,
            "failed": self.failed,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.mb_per_s, 3),
            "failures": dict(self.failures),
            "methods": dict(self.methods),
        }
