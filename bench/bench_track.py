"""Tracking throughput (issue #15): observations per second against the crawl's related-list rate.

Each round, on a fresh SQLite corpus and one replica (no faults, no media, growth on, its site clock a
VirtualClock shared with the tracker):

1. crawl: `crawl_async` with --related-via fetch, --workers 4, 4 in flight each, zero delay, no rate cap,
   no downloads, until --target videos; its rate is related lists per second from the first expansion
   landed to the last (``videos.expand_updated_at``), so browser start-up is not in it;
2. track: the clock jumps 3 days ahead, so every crawled post's 3-day target is due (late_fraction 1:
   none is missed), and `track_async` observes them all with the same browser settings (--via fetch);
   its rate is observations per second from the first target settled to the last
   (``track_targets.updated_at``).

The ratio track / crawl is the result (goal >= 0.8: the same browser cost per call), and requests per
observation come from the replica's counters (goal <= 1). Both runs share the process with the replica,
so each pays the same server cost per request.

    .venv/bin/python bench/bench_track.py [--videos 2500] [--target 1000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from sqlalchemy import func, select

from tiktok_corpus.clock import VirtualClock
from tiktok_corpus.config import Settings
from tiktok_corpus.crawl import CrawlOptions, crawl_async
from tiktok_corpus.replica import Replica, ReplicaConfig
from tiktok_corpus.store.db import Store, open_store
from tiktok_corpus.store.models import TrackTarget, Video
from tiktok_corpus.track import TrackOptions, track_async

T0 = 1_790_000_000.0
DAY = 86_400
BROWSER = {"workers": 4, "in_flight": 4, "delay_s": 0.0, "max_rate": None}


def rate(store: Store, column, *where) -> tuple[int, float]:
    """(rows, rows per second between the first and the last timestamp in ``column``)."""
    with store.sessions() as session:
        count, first, last = session.execute(
            select(func.count(), func.min(column), func.max(column)).where(*where)
        ).one()
    span = (last - first).total_seconds() if count > 1 else 0.0
    return count, (count - 1) / span if span else 0.0


async def one_round(replica: Replica, clock: VirtualClock, directory: Path, target: int) -> dict[str, float]:
    settings = Settings(db_url=f"sqlite:///{directory / 'corpus.db'}", data_dir=directory, base_url=replica.base_url)
    with open_store(settings) as store:
        crawl_options = CrawlOptions(
            seeds=25, fanout=5, max_videos=target, download=False, related_via="fetch", **BROWSER
        )
        await crawl_async(store, settings, crawl_options)
        lists, lists_per_s = rate(store, Video.expand_updated_at, Video.expand_status == "expanded")
        clock.advance_to(clock() + 3 * DAY)
        details_before = replica.stats.requests["detail"]
        summary = await track_async(
            store, settings, TrackOptions(ages="3d", late_fraction=1.0, via="fetch", **BROWSER), clock=clock
        )
        settled, observations_per_s = rate(store, TrackTarget.updated_at, TrackTarget.status == "observed")
        requests = replica.stats.requests["detail"] - details_before
    return {
        "lists": lists,
        "lists_per_s": lists_per_s,
        "observations": summary.observations,
        "settled": settled,
        "observations_per_s": observations_per_s,
        # A deleted post's read is a request too (answered 10204): per read, not per stored snapshot.
        "requests_per_observation": requests / max(summary.observations + summary.outcomes.get("gone", 0), 1),
        "ratio": observations_per_s / lists_per_s if lists_per_s else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2500, help="catalog size")
    parser.add_argument("--target", type=int, default=1000, help="videos each round's crawl discovers")
    parser.add_argument("--repeat", type=int, default=2, help="rounds")
    args = parser.parse_args()
    rounds = []
    for index in range(args.repeat):
        clock = VirtualClock(T0)
        config = ReplicaConfig(videos=args.videos, seed=index, media=False, time_scale=1.0, time_origin=T0)
        with Replica(config, site_clock=clock) as replica, tempfile.TemporaryDirectory() as tmp:
            result = asyncio.run(one_round(replica, clock, Path(tmp), args.target))
        rounds.append(result)
        print(
            f"round {index + 1}: crawl {result['lists']} lists at {result['lists_per_s']:.1f}/s; track "
            f"{result['observations']} observations at {result['observations_per_s']:.1f}/s "
            f"({result['requests_per_observation']:.2f} requests each); ratio {result['ratio']:.2f}",
            flush=True,
        )
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    print(
        f"median of {len(rounds)}: lists/s {median['lists_per_s']:.1f}, observations/s "
        f"{median['observations_per_s']:.1f}, requests per observation {median['requests_per_observation']:.2f}, "
        f"ratio {median['ratio']:.2f} (goal >= 0.8; requests <= 1)"
    )


if __name__ == "__main__":
    main()
