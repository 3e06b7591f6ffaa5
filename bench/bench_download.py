"""Download throughput over loopback: `download_pending` versus the limit and versus yt-dlp per file.

All three fetch the same replica files (no faults) in this one process run:

* **limit** - a plain concurrent httpx loop (same concurrency, same cookie) that streams each first-choice
  URL to disk: no hashing, no checks, no fsync, no database. Nothing with checks can beat it.
* **yt-dlp per file** - ``python -m yt_dlp`` started once per file with the cookie file, one after another,
  on the direct URL (the replica is not tiktok.com, so yt-dlp's generic extractor). It is run on a sample
  of ``--ytdlp-files`` files (the per-file cost does not depend on which file); MB/s is over that sample.
* **download_pending** - the real stage end to end on a fresh SQLite store (seeded with the rows before the
  clock starts, as the crawler leaves them): claims, streaming with sha256, in-process probe acceptance,
  fsync of file and directory, atomic rename, each row marked in the transaction of its rename. Its
  per-host limit is set to the concurrency, so it has as many transfers in flight as the limit loop.

The replica is served by another process (``corpus replica serve``), as a CDN would be: neither contender
shares its CPU or GIL with the server. (Served from a thread of this process, it slowed the checked
stage, which has more threads wanting the GIL, more than the limit.) The machine may be shared: limit
and download_pending alternate for ``--rounds`` rounds and the medians are compared; CPU per file (this
process and its finished children, not the server) and the load average are printed too.

Goals (issue #5): >= 0.8x the limit, >= 5x yt-dlp per file.

    .venv/bin/python bench/bench_download.py [--files 200] [--concurrency 8] [--ytdlp-files 20] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _replica import served_replica  # bench/ is the script's directory

from tiktok_corpus.config import Settings
from tiktok_corpus.download import DownloadOptions, download_pending
from tiktok_corpus.replica.catalog import build_catalog
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.models import Video
from tiktok_corpus.tiktok.contract import ItemRecord, detail_api_path, media_urls_json, parse_item_detail

CATALOG_SEED = 11


def fetch_items(base_url: str, ids: list[str]) -> list[ItemRecord]:
    with httpx.Client(base_url=base_url) as client:
        return [parse_item_detail(client.get(detail_api_path(video_id)).content) for video_id in ids]


def chain_cookies(base_url: str) -> httpx.Cookies:
    """The cookie a page visit sets (tt_chain_token), as every contender gets it."""
    with httpx.Client() as client:
        client.get(f"{base_url}/")
        return httpx.Cookies(client.cookies)


async def plain_loop(urls: list[str], cookies: httpx.Cookies, out_dir: Path, concurrency: int) -> int:
    """The limit: concurrent streaming GETs straight to files, nothing else."""
    slots = asyncio.Semaphore(concurrency)

    async def one(index: int, url: str, client: httpx.AsyncClient) -> int:
        async with slots, client.stream("GET", url) as response:
            response.raise_for_status()
            with open(out_dir / f"{index}.mp4", "wb") as out:
                async for chunk in response.aiter_bytes(256 * 1024):
                    out.write(chunk)
                return out.tell()

    async with httpx.AsyncClient(cookies=cookies, limits=httpx.Limits(max_connections=concurrency)) as client:
        return sum(await asyncio.gather(*(one(i, url, client) for i, url in enumerate(urls))))


def ytdlp_per_file(urls: list[str], cookies: httpx.Cookies, out_dir: Path) -> int:
    jar = http.cookiejar.MozillaCookieJar(str(out_dir / "cookies.txt"))
    for cookie in cookies.jar:
        jar.set_cookie(cookie)
    jar.save(ignore_discard=True, ignore_expires=True)
    total = 0
    for index, url in enumerate(urls):
        target = out_dir / f"{index}.mp4"
        subprocess.run(
            [sys.executable, "-m", "yt_dlp", "-q", "--no-progress", "--cookies", jar.filename, "-o", str(target), url],
            check=True,
            timeout=120,
        )
        total += target.stat().st_size
    return total


def ours(base_url: str, records: list[ItemRecord], data_dir: Path, concurrency: int) -> tuple[int, float, float]:
    """Seed a fresh store, then time download_pending alone; returns (bytes, seconds, CPU seconds)."""
    settings = Settings(data_dir=data_dir, base_url=base_url)
    store = open_store(settings)
    with store.transaction() as session:
        for record in records:
            session.add(
                Video(
                    id=record.id,
                    item_kind="video",
                    declared_size=record.size,
                    media_urls=media_urls_json(record.media_urls),
                )
            )
    try:
        started, cpu_started = time.perf_counter(), cpu_seconds()
        summary = asyncio.run(
            download_pending(store, settings, concurrency=concurrency, options=DownloadOptions(per_host=concurrency))
        )
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    finally:
        store.dispose()
    if summary.downloaded != len(records):
        raise SystemExit(f"download_pending landed {summary.downloaded} of {len(records)}: {summary.to_dict()}")
    return summary.bytes, seconds, cpu


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and its finished children."""
    now = os.times()
    return now.user + now.system + now.children_user + now.children_system


def timed(work) -> tuple[int, float, float]:
    """(bytes, seconds, CPU seconds) of one run of ``work``."""
    started, cpu_started = time.perf_counter(), cpu_seconds()
    size = work()
    return size, time.perf_counter() - started, cpu_seconds() - cpu_started


def report(label: str, runs: list[tuple[int, float, float]], files: int) -> float:
    """Print the median run; returns its MB/s."""
    size, seconds, cpu = sorted(runs, key=lambda run: run[1])[len(runs) // 2]
    spread = ", ".join(f"{run[1]:.2f}" for run in runs)
    print(
        f"  {label:<32} {size / 1e6:6.1f} MB in {seconds:6.2f} s = {size / 1e6 / seconds:7.1f} MB/s, "
        f"CPU {1000 * cpu / files:5.1f} ms/file  (runs: {spread} s)",
        flush=True,
    )
    return size / 1e6 / seconds


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--ytdlp-files", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    catalog_size = int(args.files * 1.25) + 20  # photo/private/deleted posts are not downloadable
    print(f"building the replica ({catalog_size} posts; media cached after the first run)...", flush=True)
    with served_replica(catalog_size, CATALOG_SEED) as (base_url, _), tempfile.TemporaryDirectory() as tmp:
        ids = [v.id for v in build_catalog(catalog_size, CATALOG_SEED).videos if v.kind == "video"][: args.files]
        records = fetch_items(base_url, ids)
        urls = [record.media_urls[0].url for record in records]
        cookies = chain_cookies(base_url)
        work = Path(tmp)
        for name in ("limit", "ytdlp"):
            (work / name).mkdir()
        print(f"{len(ids)} files, concurrency {args.concurrency}, loopback {base_url}; {load()}")
        limit_runs, our_runs = [], []
        for round_no in range(args.rounds):
            limit_runs.append(timed(lambda: asyncio.run(plain_loop(urls, cookies, work / "limit", args.concurrency))))
            our_runs.append(ours(base_url, records, work / f"data{round_no}", args.concurrency))
        limit = report("limit (plain httpx loop)", limit_runs, len(urls))
        candidate = report("download_pending", our_runs, len(urls))
        sample = urls[: args.ytdlp_files]
        ytdlp = report(
            f"yt-dlp per file ({len(sample)} files)",
            [timed(lambda: ytdlp_per_file(sample, cookies, work / "ytdlp"))],
            len(sample),
        )
    print(load())
    print(f"download_pending / limit           = {candidate / limit:5.2f}x  (goal >= 0.8x)")
    print(f"download_pending / yt-dlp per file = {candidate / ytdlp:5.2f}x  (goal >= 5x)")


if __name__ == "__main__":
    main()
