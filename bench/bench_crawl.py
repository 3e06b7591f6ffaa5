"""Crawl throughput and memory against the replica.

Baseline (the limit): the same discovery (seeds from the recommend API, then related-list expansion with the
same fanout) done by fetching the JSON endpoints directly with httpx, 4 requests in flight, no browser.
Measured: `corpus crawl`'s library entry with --workers 4, zero delay, no rate cap, no downloads, on SQLite.
Both run in this process against one replica with no faults; the ratio crawler / baseline is the result
(goal >= 0.5). With --memory-minutes M, a longer crawl samples resident memory (this process plus Chromium
and its children) and prints the ratio at minute M to minute 1 (goal <= 1.2).

    .venv/bin/python bench/bench_crawl.py [--videos 1500] [--target 300] [--memory-minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from tiktok_corpus.config import Settings
from tiktok_corpus.crawl import CrawlOptions, crawl_async
from tiktok_corpus.errors import ContractError
from tiktok_corpus.replica import Replica, ReplicaConfig
from tiktok_corpus.store.db import open_store
from tiktok_corpus.tiktok.contract import parse_item_list, recommend_api_path, related_api_path

SEEDS, FANOUT, WORKERS = 25, 5, 4


async def direct_discovery(base_url: str, target: int) -> float:
    """Videos discovered per second fetching the JSON endpoints directly (the limit)."""
    known: list[str] = []
    seen: set[str] = set()
    frontier: list[str] = []
    rng = random.Random(0)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while len(known) < SEEDS:
            batch = parse_item_list((await client.get(recommend_api_path(30))).content)
            for item in batch.items:
                if item.id not in seen and len(known) < SEEDS:
                    seen.add(item.id)
                    known.append(item.id)
                    frontier.append(item.id)

        videos = len(known)

        async def expand(parent: str) -> None:
            nonlocal videos
            try:
                related = parse_item_list((await client.get(related_api_path(parent))).content)
            except ContractError:  # deleted / private parent: the crawler marks it failed too
                return
            added = 0
            for item in related.items:
                if item.id not in seen and added < FANOUT and videos < target:
                    seen.add(item.id)
                    known.append(item.id)
                    added += 1
                    if item.kind == "video" and not item.private:
                        videos += 1
                        frontier.append(item.id)

        while videos < target and frontier:
            picks = [frontier.pop(rng.randrange(len(frontier))) for _ in range(min(WORKERS, len(frontier)))]
            await asyncio.gather(*(expand(p) for p in picks))
    return len(known) / (time.perf_counter() - started)


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


class MemorySampler(threading.Thread):
    """Resident memory of this process and its children (Chromium), sampled every few seconds."""

    def __init__(self, every_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, int]] = []
        self.every_s = every_s
        self.stop = threading.Event()
        self.started = time.perf_counter()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(self.every_s):
            self.samples.append((time.perf_counter() - self.started, tree_rss(me)))

    def at(self, seconds: float) -> int:
        return min(self.samples, key=lambda s: abs(s[0] - seconds))[1]


async def browser_discovery(base_url: str, target: int, data_dir: Path) -> tuple[float, float]:
    """(videos per second, seconds) for the real crawler, browser start-up included."""
    settings = Settings(data_dir=data_dir, base_url=base_url)
    store = open_store(settings)
    try:
        options = CrawlOptions(seeds=SEEDS, fanout=FANOUT, max_videos=target, workers=WORKERS, delay_s=0.0,
                               max_rate=None, download=False)
        started = time.perf_counter()
        summary = await crawl_async(store, settings, options)
        elapsed = time.perf_counter() - started
    finally:
        store.dispose()
    return summary.new_items / elapsed, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1500, help="replica catalog size")
    parser.add_argument("--target", type=int, default=300, help="--max-videos of the throughput runs")
    parser.add_argument("--memory-minutes", type=float, default=0, help="also run a memory test this long")
    args = parser.parse_args()
    with Replica(ReplicaConfig(videos=args.videos, seed=0, signal=0.0)) as replica, \
            tempfile.TemporaryDirectory() as tmp:
        limit = asyncio.run(direct_discovery(replica.base_url, args.target))
        crawler, elapsed = asyncio.run(browser_discovery(replica.base_url, args.target, Path(tmp) / "a"))
        print(f"baseline  direct httpx JSON fetches: {limit:8.2f} videos/s")
        print(f"measured  crawl --workers {WORKERS}:        {crawler:8.2f} videos/s ({elapsed:.1f}s incl. start-up)")
        print(f"ratio     crawler / baseline:         {crawler / limit:8.3f}  (goal >= 0.5)")
        if args.memory_minutes:
            sampler = MemorySampler()
            sampler.start()
            seconds = args.memory_minutes * 60

            async def timed() -> None:
                try:
                    await asyncio.wait_for(browser_discovery(replica.base_url, args.videos, Path(tmp) / "m"),
                                           seconds + 5)
                except asyncio.TimeoutError:
                    pass
            asyncio.run(timed())
            sampler.stop.set()
            first, last = sampler.at(60), sampler.at(min(seconds, sampler.samples[-1][0]))
            print(f"memory    minute 1: {first / 2**20:7.0f} MiB, minute {sampler.samples[-1][0] / 60:.1f}: "
                  f"{last / 2**20:7.0f} MiB, ratio {last / first:.3f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
