"""What a crawl is asked to do (:class:`CrawlOptions`) and what it reports while it runs and at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from ..config import described
from ..errors import ConfigError
from ..tiktok.blocks import browser_workers, headful_browser, politeness_delay, rate_cap
from ..tiktok.site_methods import VIA


@dataclass(frozen=True)
class CrawlOptions:
    """One crawl's parameters; the defaults are the paper's method, paced for the real site."""

    seeds: int = described(25, "Distinct For You videos to start from.")
    fanout: int = described(5, "New related videos added per expansion.")
    max_videos: int = described(7522, "Stop once the corpus holds this many videos.")
    strategy: str = described("random", "Frontier policy: random | bfs.")
    workers: int = browser_workers()
    delay_s: float = politeness_delay()
    max_rate: float | None = rate_cap()
    download: bool = described(True, "Download files while discovering.")
    headful: bool = headful_browser()
    seed: int = described(0, "RNG seed of the frontier policy.")
    related_count: int = 16
    # Related-list fetches each worker page keeps in flight: hides the answer latency, while the
    # per-worker delay still spaces their starts (see WorkerSession.fetch_text).
    in_flight: int = described(
        4, "Related-list fetches each worker keeps running at once (still paced by --delay and --max-rate)."
    )
    related_via: str = described(
        "auto",
        "How related lists are fetched: auto (the cheapest the site accepts, falling back by itself) | "
        "page (captured from the video page) | signed (in-page fetch with frontierSign) | fetch (plain in-page fetch).",
    )
    fallback_after: int = described(
        3, "With --related-via auto: refused lists in a row after which a worker switches to the slower method."
    )
    max_attempts: int = described(
        5,
        "Claims of one parent whose related list failed in a way a later try can fix (a block, a timeout, "
        "an HTTP 5xx) before it is recorded as failed; each next claim waits a backoff that doubles.",
    )
    retry_failed: bool = described(
        False, "Give the parents whose related list failed back to the frontier first, their claims counted afresh."
    )

    def validate(self) -> None:
        from ..store.frontier import FRONTIER_ORDERS  # here, not at the top: the CLI reads these options' help

        if self.strategy not in FRONTIER_ORDERS:
            raise ConfigError(f"unknown --strategy {self.strategy!r}: use one of {', '.join(FRONTIER_ORDERS)}")
        if self.related_via not in VIA:
            raise ConfigError(f"unknown --related-via {self.related_via!r}: use one of {', '.join(VIA)}")
        for name in ("seeds", "fanout", "max_videos", "workers", "in_flight", "fallback_after", "max_attempts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.seeds > self.max_videos:
            raise ConfigError("--seeds cannot exceed --max-videos")
        if self.delay_s < 0 or (self.max_rate or 0) < 0:
            raise ConfigError("--delay and --max-rate cannot be negative")


@dataclass
class CrawlCounters:
    """What the live display shows and the summary reports, each number either the corpus's (every
    process's rows) or this run's; the last update the display gets holds the summary's numbers."""

    # The corpus's: ``videos`` counts video items (the target's unit), ``items`` every row (photo posts,
    # ads, private posts too: the number `corpus status` calls videos); ``downloaded_in_corpus`` is None
    # while no download stage runs beside the crawl.
    videos: int = 0
    items: int = 0
    target: int = 0
    seeds: int = 0
    downloaded_in_corpus: int | None = None
    # This run's.
    new_items: int = 0
    expansions: int = 0
    edges: int = 0
    snapshots: int = 0
    blocks: int = 0
    downloaded: int = 0  # files this run's download stage fetched (``downloads["downloaded"]`` in the summary)
    elapsed_s: float = 0.0
    errors: Counter = field(default_factory=Counter)
    methods: Counter = field(default_factory=Counter)  # expansions per related-list method

    @property
    def new_per_s(self) -> float:
        return self.new_items / self.elapsed_s if self.elapsed_s else 0.0

    def summary(
        self, *, run_id: int, status: str, block_kinds: dict, recycles: int, downloads, message: str | None
    ) -> CrawlSummary:
        """The run's summary from these counters (the display's last update) and what they do not hold."""
        return CrawlSummary(
            run_id=run_id,
            status=status,
            videos=self.videos,
            items=self.items,
            target=self.target,
            seeds=self.seeds,
            downloaded_in_corpus=self.downloaded_in_corpus,
            new_items=self.new_items,
            expansions=self.expansions,
            edges=self.edges,
            snapshots=self.snapshots,
            blocks=self.blocks,
            block_kinds=block_kinds,
            errors=dict(self.errors),
            methods=dict(self.methods),
            recycles=recycles,
            elapsed_s=round(self.elapsed_s, 3),
            videos_per_s=round(self.new_per_s, 3),
            downloads=downloads,
            message=message,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values for a JSON column (``dataclasses.asdict`` would rebuild each Counter from its
        (key, count) pairs, counting the pairs)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: dict(value) if isinstance(value, Counter) else value for name, value in values.items()}


@dataclass
class CrawlSummary:
    run_id: int
    status: str  # target_reached | frontier_exhausted | blocked | unreachable
    # The corpus's, as `corpus status` counts them: video items (``target``'s unit), every item (photo
    # posts, ads... too), For You seeds, downloaded files (None without downloads).
    videos: int
    items: int
    target: int
    seeds: int
    downloaded_in_corpus: int | None
    # This run's.
    new_items: int
    expansions: int
    edges: int
    snapshots: int
    blocks: int
    block_kinds: dict[str, int]
    errors: dict[str, int]
    methods: dict[str, int]
    recycles: int
    elapsed_s: float
    videos_per_s: float
    downloads: dict[str, Any] | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CrawlProgress(Protocol):
    def update(self, counters: CrawlCounters) -> None: ...
