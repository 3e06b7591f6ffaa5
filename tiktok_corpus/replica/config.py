"""What a replica serves (:class:`ReplicaConfig`), light to import: the CLI reads its options from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import described
from .signals import MODALITIES

# The fewest posts ``corpus demo`` runs on: the crawl's 25 seeds (``CrawlOptions.seeds``) and a few
# expansions beyond them. Written as a number: this module stays light, and the crawl is not the replica's.
DEMO_MIN_VIDEOS = 40


@dataclass
class ReplicaConfig:
    """What the replica serves. ``media_cache`` None means :func:`default_cache_dir`; ``signals`` are
    validated when the catalog is built (:mod:`.signals`).

    The ``described`` fields' defaults and help are also ``corpus replica serve``'s options.
    """

    videos: int = described(300, "Catalog size.")
    seed: int = described(0, "Catalog and fault RNG seed.")
    signals: dict[str, float] = field(
        default_factory=dict,
        metadata={
            "help": "Modalities whose observable property carries the appeal that drives engagement, as "
            f"MODALITY=STRENGTH,... with strengths in [0, 1] and modalities {', '.join(MODALITIES)} "
            "(e.g. visual=1,text=0.5; see docs/replica.md). Default: none, every property independent of "
            "engagement."
        },
    )
    faults: dict[str, float] = field(default_factory=dict)
    media_cache: Path | None = None
    host: str = described("127.0.0.1", "Interface to bind (loopback by default).")
    port: int = described(0, "Port; 0 picks a free one.")
    url_ttl_s: int = 6 * 3600
    slow_seconds: float = 2.0
    media: bool = described(
        True,
        "Make and serve the video files; --no-media serves metadata only (starts at once, for crawling big catalogs).",
    )
    media_scale: int = described(
        1,
        "Divide every file's width and height by 1, 2, 4 or 8 (the JSON declares the smaller size): small files "
        "are quick to make, download and decode, for tests and quick trials. 1: TikTok's sizes (576x1024 ...).",
    )
    signing: str = described(
        "none",
        "What the APIs demand: none, xbogus (frontierSign's X-Bogus) or gnarly (ts + X-Gnarly, which only the "
        "pages' own scripts can make); a call without what the mode demands gets an empty 200.",
    )
    time_scale: float | None = described(
        None,
        "Run a site clock this many times faster than the wall clock (1 = real time, 10080 = a week per "
        "minute): posts are then a few days old at the start and their counts grow with age. Unset: the "
        "static site, every post at its final counts.",
    )
    time_origin: float | None = described(
        None,
        "Unix time at which the site clock equals the wall clock (default: when the replica starts); posts are "
        "posted in the 3 days before it. Reuse a printed origin to restart on the same site clock. Needs "
        "--time-scale.",
    )
