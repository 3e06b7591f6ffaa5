"""What the crawl tells its live display (the :class:`CrawlProgress` updates) against its summary and
`corpus status`: real Chromium against the replica, real SQLite, downloads running beside the crawl.

Each number is either the corpus's (what `corpus status` counts) or this run's, and the last update
holds the summary's numbers, however the run ended."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.waiting import until
from tiktok_corpus.config import Settings
from tiktok_corpus.crawl import CrawlCounters, CrawlOptions, crawl, crawl_async
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.status import stage_counts
from tiktok_corpus.tiktok.blocks import BlockPolicy

pytestmark = [pytest.mark.browser, pytest.mark.slow(40)]
CORPUS = Path(sys.executable).with_name("corpus")
TEST_POLICY = BlockPolicy(backoff_initial_s=0.05, backoff_max_s=0.5, warmup_wait_s=1.0, waf_wait_s=5.0)


class Recorder:
    """A :class:`CrawlProgress` keeping every update it gets, as plain values."""

    def __init__(self) -> None:
        self.updates: list[dict] = []

    def update(self, counters: CrawlCounters) -> None:
        self.updates.append(counters.to_dict())

    @property
    def last(self) -> dict:
        return self.updates[-1]


def options(**overrides) -> CrawlOptions:
    return CrawlOptions(**{"seeds": 5, "fanout": 3, "delay_s": 0.0, "max_rate": None, "download": True} | overrides)


def status_of(settings: Settings) -> dict:
    with open_store(settings) as store:
        return stage_counts(store)


def test_the_last_update_after_ctrl_c_holds_the_downloads_and_videos_of_the_stopped_run(make_replica, tmp_path):
    """Ctrl-C (the main task cancelled, as ``asyncio.run`` does on SIGINT) with downloads running: the
    display's last update counts what the run did up to the end, as `corpus status` then shows it."""
    rep = make_replica(videos=100, seed=3)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    progress = Recorder()

    async def interrupted() -> None:
        with open_store(settings) as store:
            run = asyncio.create_task(
                crawl_async(store, settings, options(max_videos=90, workers=2), policy=TEST_POLICY, progress=progress)
            )
            downloaded = 0

            def some_downloaded() -> bool:
                nonlocal downloaded
                downloaded = stage_counts(store)["stages"]["download"].get("downloaded", 0)
                return downloaded >= 3 or run.done()

            await until(some_downloaded, "3 downloaded files")
            assert not run.done(), "the crawl ended before the Ctrl-C"
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run

    asyncio.run(interrupted())
    status, last = status_of(settings), progress.last
    downloaded = status["stages"]["download"].get("downloaded", 0)
    assert downloaded >= 3
    # A fresh corpus: everything in it is this run's.
    assert last["downloaded"] == downloaded, (last, status)
    assert last.get("downloaded_in_corpus") == downloaded, (last, status)
    assert last["videos"] == status["item_kinds"]["video"] and last.get("items") == status["videos"], (last, status)
    assert last["new_items"] == status["videos"], (last, status)


def test_a_resumed_crawl_tells_this_run_s_downloads_from_the_corpus_s(make_replica, tmp_path):
    """The second crawl of a corpus: its last update and its summary both say how many files this run
    downloaded and how many the corpus holds, and they agree. It asks for more seeds too: the first
    crawl may have expanded every parent on its way to its target (the lists still in flight when it
    was reached land, cut by it), so the feed is what surely brings the second run new videos."""
    rep = make_replica(videos=60, seed=2)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    first = crawl(settings, options(max_videos=12), policy=TEST_POLICY)
    assert first.downloads and first.downloads["downloaded"] > 0
    progress = Recorder()
    summary = crawl(settings, options(max_videos=30, seeds=10), policy=TEST_POLICY, progress=progress)
    status, last = status_of(settings), progress.last
    in_corpus = status["stages"]["download"]["downloaded"]
    assert summary.downloads is not None
    this_run = summary.downloads["downloaded"]
    assert 0 < this_run < in_corpus == first.downloads["downloaded"] + this_run, (first.downloads, summary, status)
    assert last["downloaded"] == this_run, (last, summary.downloads)
    assert last.get("downloaded_in_corpus") == in_corpus == summary.downloaded_in_corpus, (last, status)


def test_the_summary_names_videos_and_items_as_corpus_status_counts_them(make_replica, tmp_path):
    """`corpus crawl`'s summary says how many video items (the target's unit) and how many items of
    every kind (photo posts, ads...: what `corpus status` counts) the corpus holds; the last update of
    the live line holds the same numbers as the summary."""
    rep = make_replica(videos=60, seed=2)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    progress = Recorder()
    summary = crawl(settings, options(max_videos=20, download=False), policy=TEST_POLICY, progress=progress)
    status, last = status_of(settings), progress.last
    assert summary.videos == status["item_kinds"]["video"] == 20
    assert summary.items == status["videos"] > summary.videos, "the replica's photo posts, ads... are items"
    summary_values = summary.to_dict()
    for name in ("videos", "items", "target", "seeds", "new_items", "expansions", "edges", "snapshots", "blocks"):
        assert last[name] == summary_values[name], name
    assert last["downloaded_in_corpus"] is summary.downloaded_in_corpus is None  # no download stage ran

    db_url = f"sqlite:///{tmp_path / 'cli.db'}"
    args = ["--base-url", rep.base_url, "--seeds", "5", "--fanout", "3", "--max-videos", "20", "--no-download"]
    base = [str(CORPUS), "--db", db_url, "--data-dir", str(tmp_path / "cli")]
    crawled = subprocess.run([*base, "crawl", *args, "--delay", "0", "--max-rate", "0"], capture_output=True, text=True)
    assert crawled.returncode == 0, crawled.stderr
    shown = json.loads(subprocess.run([*base, "status", "--json"], capture_output=True, text=True, check=True).stdout)
    line = crawled.stdout.splitlines()[0]
    assert f"{shown['item_kinds']['video']}/20 videos" in line, line
    assert f"{shown['videos']} items of all kinds" in line, line
