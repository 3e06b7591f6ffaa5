"""Crawl throughput and memory against the replica.

Baseline (the limit): the same discovery (seeds from the recommend API, then related-list expansion with the
same fanout, random frontier picks) done by fetching the JSON endpoints directly with httpx and no browser,
with as many requests in flight as the crawler has (workers x in-flight per worker page).
Measured: `corpus crawl`'s library entry with --workers 4, zero delay, no rate cap, no downloads, on SQLite,
browser start-up included. The replica runs as a `corpus replica serve` subprocess for both, so its CPU is
spent outside the measured process in both. The ratio crawler / baseline is the result (goal >= 0.5).
With --memory-minutes M, a long paced crawl samples resident memory (this process plus Chromium and the
Playwright driver, not the replica) and prints the ratio at minute M to minute 1 (goal <= 1.2).

The default target is the paper's corpus (7,522 videos) in a 10,000-video catalog served without media
files (the crawl never fetches them), so browser start-up (~2 s) weighs as it does in real use.

    .venv/bin/python bench/bench_crawl.py [--videos 10000] [--target 7522] [--repeat 2] [--memory-minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil
from _replica import served_replica  # bench/ is the script's directory

from tiktok_corpus.config import Settings
from tiktok_corpus.crawl import CrawlCounters, CrawlOptions, crawl_async
from tiktok_corpus.errors import ContractError
from tiktok_corpus.store.db import open_store
from tiktok_corpus.tiktok.contract import parse_item_list, recommend_api_path, related_api_path

SEEDS, FANOUT, WORKERS, IN_FLIGHT = 25, 5, 4, CrawlOptions().in_flight


async def direct_discovery(base_url: str, target: int, in_flight: int) -> float:
    """Videos discovered per second fetching the JSON endpoints directly (the limit)."""
    known: list[str] = []
    seen: set[str] = set()
    frontier: list[str] = []
    rng = random.Random(0)
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        while len(known) < SEEDS:
            batch = parse_item_list((await client.get(recommend_api_path(30))).content)
            for item in batch.items:
                if item.id not in seen and len(known) < SEEDS:
                    seen.add(item.id)
                    known.append(item.id)
                    frontier.append(item.id)

        videos, busy = len(known), 0

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

        async def worker() -> None:  # pipelined like the crawler's loops: no batch waits for its slowest
            nonlocal busy
            while videos < target and (frontier or busy):
                if not frontier:
                    await asyncio.sleep(0.005)
                    continue
                busy += 1
                try:
                    await expand(frontier.pop(rng.randrange(len(frontier))))
                finally:
                    busy -= 1

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return len(known) / (time.perf_counter() - started)


def tree_rss(process: psutil.Process, exclude: set[int]) -> int:
    """Resident bytes of ``process`` and its descendants, leaving out the ``exclude`` pids' trees."""
    skip = set(exclude)
    for pid in exclude:
        with contextlib.suppress(psutil.Error):
            skip.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        if proc.pid in skip:
            continue
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


class MemorySampler(threading.Thread):
    """Resident memory of this process and its children (Chromium), sampled every few seconds."""

    def __init__(self, exclude: set[int], every_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.exclude = exclude
        self.samples: list[tuple[float, int]] = []
        self.every_s = every_s
        self.stop = threading.Event()
        self.started = time.perf_counter()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(self.every_s):
            self.samples.append((time.perf_counter() - self.started, tree_rss(me, self.exclude)))

    def at(self, seconds: float) -> int:
        return min(self.samples, key=lambda s: abs(s[0] - seconds))[1]


class ExpansionClock:
    """Notes when expansion starts (the live display's first update with an expansion), so the rate
    after start-up (browser, contexts, seeds) can be told apart from the rate including it."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.items_then = 0

    def update(self, counters: CrawlCounters) -> None:
        if self.at is None and counters.expansions:
            self.at, self.items_then = time.perf_counter(), counters.new_items


async def browser_discovery(base_url: str, data_dir: Path, **overrides) -> tuple[float, float, float]:
    """(videos per second incl. start-up, seconds, videos per second once expanding) for the real crawler."""
    settings = Settings(data_dir=data_dir, base_url=base_url)
    store = open_store(settings)
    clock = ExpansionClock()
    try:
        options = CrawlOptions(
            **{
                "seeds": SEEDS,
                "fanout": FANOUT,
                "workers": WORKERS,
                "delay_s": 0.0,
                "max_rate": None,
                "download": False,
            }
            | overrides
        )
        started = time.perf_counter()
        summary = await crawl_async(store, settings, options, progress=clock)
        ended = time.perf_counter()
    finally:
        store.dispose()
    steady = (summary.new_items - clock.items_then) / (ended - clock.at) if clock.at else 0.0
    return summary.new_items / (ended - started), ended - started, steady


def throughput(base_url: str, target: int, tmp: Path, run: int) -> None:
    limit = asyncio.run(direct_discovery(base_url, target, WORKERS * IN_FLIGHT))
    crawler, elapsed, steady = asyncio.run(browser_discovery(base_url, tmp / f"t{run}", max_videos=target))
    load = os.getloadavg()[0]
    print(
        f"run {run}  baseline httpx, {WORKERS * IN_FLIGHT} in flight: {limit:6.1f} videos/s | "
        f"crawl --workers {WORKERS}: {crawler:6.1f} videos/s in {elapsed:.1f}s incl. start-up, "
        f"ratio {crawler / limit:.3f} (goal >= 0.5) | once expanding: {steady:6.1f} videos/s, "
        f"ratio {steady / limit:.3f} | load {load:.1f}"
    )


def memory(base_url: str, replica_pid: int, videos: int, minutes: float, tmp: Path) -> None:
    """A crawl paced to last ``minutes`` (about one expansion per catalog video), RSS sampled throughout."""
    seconds = minutes * 60
    sampler = MemorySampler(exclude={replica_pid})
    sampler.start()

    async def timed() -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                browser_discovery(base_url, tmp / "m", max_videos=videos, max_rate=videos / seconds), seconds + 5
            )

    asyncio.run(timed())
    sampler.stop.set()
    sampler.join()
    end = sampler.samples[-1][0]
    first, last = sampler.at(60), sampler.at(min(seconds, end))
    peak = max(rss for _, rss in sampler.samples)
    print(
        f"memory  minute 1: {first / 2**20:6.0f} MiB   minute {min(seconds, end) / 60:.1f}: "
        f"{last / 2**20:6.0f} MiB   peak {peak / 2**20:6.0f} MiB   ratio {last / first:.3f} (goal <= 1.2)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10000, help="replica catalog size")
    parser.add_argument("--target", type=int, default=7522, help="--max-videos of the throughput runs")
    parser.add_argument("--repeat", type=int, default=2, help="throughput runs (the machine may be shared)")
    parser.add_argument("--memory-minutes", type=float, default=0, help="also run a memory test this long")
    args = parser.parse_args()
    with served_replica(args.videos, media=False) as (base_url, replica_pid), tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.repeat + 1):
            throughput(base_url, args.target, Path(tmp), run)
        if args.memory_minutes:
            memory(base_url, replica_pid, args.videos, args.memory_minutes, Path(tmp))


if __name__ == "__main__":
    main()
