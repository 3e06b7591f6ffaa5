"""The crawler end to end: real Chromium through Playwright against the local replica site, real SQLite
and Postgres, the `corpus crawl` command in subprocesses for kills and scale-out."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError

from tests.waiting import interrupt_when, wait_for
from tiktok_corpus._tasks import gather_or_cancel
from tiktok_corpus.config import Settings
from tiktok_corpus.crawl import CrawlOptions, crawl
from tiktok_corpus.crawl import run as crawl_run
from tiktok_corpus.download import DownloadOptions
from tiktok_corpus.errors import BlockedError, PersistentlyBlocked, SiteUnreachable
from tiktok_corpus.replica import Replica, ReplicaConfig
from tiktok_corpus.store.crawl import CORPUS_LOCK_KEY
from tiktok_corpus.store.db import open_store, upgrade_database
from tiktok_corpus.store.frontier import retry_parent
from tiktok_corpus.store.models import CrawlRun, MediaFile, RelatedEdge, StatsSnapshot, Video
from tiktok_corpus.tiktok.blocks import TRANSPORT_KINDS, BlockMonitor, BlockPolicy, Pacer
from tiktok_corpus.tiktok.browser import WorkerSession, launched_browser
from tiktok_corpus.tiktok.browser_failures import browser_failure

pytestmark = [pytest.mark.browser, pytest.mark.slow(130)]
CORPUS = Path(sys.executable).with_name("corpus")  # the installed console command

SEEDS, FANOUT, TARGET = 5, 3, 30
FAULTS = ("waf", "empty_body", "empty_first", "captcha", "http_429", "http_5xx", "slow", "truncated", "no_rehydration")
# Fast retries for tests: the policy's shape is what matters, not the real site's patience.
TEST_POLICY = BlockPolicy(backoff_initial_s=0.05, backoff_max_s=0.5, warmup_wait_s=1.0, waf_wait_s=5.0)


@pytest.fixture(scope="module")
def replica():
    with Replica(ReplicaConfig(videos=100, seed=0)) as rep:
        yield rep


def options(**overrides) -> CrawlOptions:
    return CrawlOptions(
        **{"seeds": SEEDS, "fanout": FANOUT, "max_videos": TARGET, "delay_s": 0.0, "max_rate": None, "download": False}
        | overrides
    )


def crawl_command(
    base_url: str,
    db_url: str,
    data_dir: Path,
    *extra: str,
    seeds: int = SEEDS,
    fanout: int = FANOUT,
    target: int = TARGET,
) -> list[str]:
    return [
        str(CORPUS),
        "--db",
        db_url,
        "--data-dir",
        str(data_dir),
        "crawl",
        "--base-url",
        base_url,
        "--seeds",
        str(seeds),
        "--fanout",
        str(fanout),
        "--max-videos",
        str(target),
        "--delay",
        "0",
        "--max-rate",
        "0",
        "--no-download",
        *extra,
    ]


def assert_corpus_shape(
    db_url: str, *, target: int = TARGET, seeds: int = SEEDS, fanout: int = FANOUT
) -> dict[str, Video]:
    """The invariants every finished crawl holds, however it was run or interrupted."""
    store = open_store(Settings(db_url=db_url))
    try:
        with store.sessions() as session:
            videos = {v.id: v for v in session.scalars(select(Video))}
            edges = session.execute(select(RelatedEdge.parent_id, RelatedEdge.child_id, RelatedEdge.rank)).all()
            snapshot_ids = set(session.scalars(select(StatsSnapshot.video_id)))
    finally:
        store.dispose()
    playable = [v for v in videos.values() if v.item_kind == "video"]
    assert len(playable) == target
    seeded = [v for v in videos.values() if v.source == "foryou"]
    assert len([v for v in seeded if v.item_kind == "video"]) == seeds, "the seeds are For You videos"
    assert all(v.depth == 0 and v.parent_id is None for v in seeded)
    children = Counter(v.parent_id for v in videos.values() if v.parent_id and v.item_kind == "video")
    assert max(children.values()) <= fanout  # --fanout counts videos: photo posts and ads join freely
    for child in videos.values():
        if child.parent_id:
            parent = videos[child.parent_id]
            assert parent.expand_status == "expanded" and child.depth == parent.depth + 1
            assert child.source == "related"
    assert edges and all(0 <= rank < 50 for _, _, rank in edges)
    assert {(p, c) for p, c, _ in edges} >= {(v.parent_id, v.id) for v in videos.values() if v.parent_id}
    assert all(videos[p].expand_status == "expanded" for p, _, _ in edges)
    assert snapshot_ids == set(videos), "every recorded video has at least one stats snapshot"
    assert not [v.id for v in videos.values() if v.expand_status == "claimed"], "no claim left behind"
    assert all((v.expand_method is not None) == (v.expand_status == "expanded") for v in videos.values())
    return videos


def test_crawl_reaches_target_with_paper_structure(replica, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", base_url=replica.base_url)
    summary = crawl(settings, options(strategy="bfs"), policy=TEST_POLICY)
    assert summary.status == "target_reached" and summary.videos == TARGET and summary.seeds == SEEDS
    videos = assert_corpus_shape(settings.db_url)
    assert max(v.depth for v in videos.values()) >= 2, "expansion went beyond the seeds' children"
    state = settings.data_dir / "session" / "state.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600 and "tt_chain_token" in state.read_text()
    store = open_store(settings)
    with store.sessions() as session:
        run = session.scalars(select(CrawlRun)).one()
    store.dispose()
    assert run.status == "target_reached" and run.counts["expansions"] == summary.expansions


VIDEO_ITEMS = "item_kind = 'video'"  # what --max-videos counts (the For You batches hold ads and photos too)


def video_rows(db_url: str, where: str = "1 = 1", *, polling: bool = False) -> int:
    """Rows in ``videos`` matching ``where`` right now, read without the schema gate. ``polling`` (a wait
    on a running crawl): a read that fails - no schema yet, a busy database - counts 0 and the poll asks
    again; otherwise a failed read fails the test."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT count(*) FROM videos WHERE {where}")).scalar() or 0
    except DBAPIError:
        if polling:
            return 0
        raise
    finally:
        engine.dispose()


@pytest.mark.parametrize(("via", "method"), [("auto", "fetch"), ("page", "page")])
def test_resumes_after_sigkill_without_duplicates(replica, tmp_path, via, method):
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    command = crawl_command(replica.base_url, db_url, tmp_path / "data", "--workers", "2", "--related-via", via)
    rng = random.Random(4)
    killed_at = []
    # 30 videos from 5 seeds at fanout 3 take at least 9 expansions: every threshold comes before the end.
    for kill_after in sorted(rng.sample(range(1, 9), 3)):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(
            lambda proc=proc, kill_after=kill_after: (
                proc.poll() is not None or video_rows(db_url, "expand_status = 'expanded'", polling=True) >= kill_after
            ),
            f"{kill_after} expanded parents",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at.append(video_rows(db_url, VIDEO_ITEMS))
    assert min(killed_at) < TARGET, f"no kill landed mid-crawl: {killed_at}"
    finished = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr
    videos = assert_corpus_shape(db_url)
    assert {v.expand_method for v in videos.values() if v.expand_status == "expanded"} == {method}
    # A process killed before its run began left no row; every killed one that began is closed by the next.
    runs = run_statuses(db_url)
    assert "killed" in runs and "running" not in runs and runs[-1] == "target_reached", runs


def test_a_browser_that_cannot_start_is_one_line_and_closes_the_run_failed(tmp_path):
    """A wrong CORPUS_BROWSER_PATH: exit 1 with one line naming the path and the fix, no traceback, and
    the run's row closed as failed at once (not left running for the next run to call killed)."""
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    command = crawl_command("http://127.0.0.1:9", db_url, tmp_path / "data")  # never reached
    env = {**os.environ, "CORPUS_BROWSER_PATH": "/bin/false"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1, result.stderr
    assert "error: Chromium could not start (/bin/false)" in result.stderr, result.stderr
    assert "CORPUS_BROWSER_PATH" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert run_statuses(db_url) == ["failed"]


def run_statuses(db_url: str) -> list[str]:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(CrawlRun.status).order_by(CrawlRun.id)).scalars())
    finally:
        engine.dispose()


def test_ctrl_c_stops_at_once_marks_the_run_interrupted_and_the_same_command_goes_on(replica, tmp_path):
    """Ctrl-C as a terminal sends it, to the whole process group (Chromium gets it too), mid-crawl with
    downloads running: exit 130 without a traceback, the lists fetched written, every claim given back,
    the run's row closed with its counts; then the same command finishes the corpus."""
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    command = [*crawl_command(replica.base_url, db_url, tmp_path / "data", "--workers", "2"), "--download"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    stderr = interrupt_when(
        proc, lambda: video_rows(db_url, "expand_status = 'expanded'", polling=True) >= 2, "2 expansions"
    )
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    assert "\ninterrupted: what was seen and downloaded so far is kept; the same command goes on" in stderr
    assert video_rows(db_url, VIDEO_ITEMS) < TARGET, "the crawl ended before the Ctrl-C landed"
    assert video_rows(db_url, "expand_status = 'claimed' OR download_status = 'claimed'") == 0
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            status, counts = conn.execute(select(CrawlRun.status, CrawlRun.counts)).one()
    finally:
        engine.dispose()
    assert status == "interrupted" and counts["methods"]["fetch"] >= 2, counts  # counts stay plain JSON
    finished = subprocess.run(
        crawl_command(replica.base_url, db_url, tmp_path / "data"), capture_output=True, text=True, timeout=240
    )
    assert finished.returncode == 0, finished.stderr
    assert_corpus_shape(db_url)


def test_a_stop_delivered_again_while_the_crawl_stops_still_gives_every_claim_back(replica, tmp_path):
    """``timeout 5 corpus crawl`` sends SIGTERM to the command and then to its group, and a supervisor may
    forward it once more: each repeat raised KeyboardInterrupt inside the clean-up the first had begun,
    and left parents claimed, the run ``running`` or asyncio's tracebacks (8 tries of 8). A stop is one
    stop however often it is delivered."""
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    command = [*crawl_command(replica.base_url, db_url, tmp_path / "data", "--workers", "2"), "--download"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    stderr = interrupt_when(
        proc,
        lambda: video_rows(db_url, "expand_status = 'expanded'", polling=True) >= 2,
        "2 expansions",
        sig=signal.SIGTERM,
        again=5,
    )
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Task was destroyed" not in stderr, stderr
    assert video_rows(db_url, "expand_status = 'claimed' OR download_status = 'claimed'") == 0
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(CrawlRun.status)).scalar_one() == "interrupted"
    finally:
        engine.dispose()


def test_the_playwright_drivers_end_at_ctrl_c_prints_no_unretrieved_future():
    """Ctrl-C reaches the whole process group, Playwright's driver too: its end left an exception on a future
    no one awaits, and asyncio printed three lines of "Future exception was never retrieved" after the
    ``interrupted:`` line. Here the driver alone gets the SIGINT, so it ends first every time."""
    script = (
        "import asyncio, glob, os, signal\n"
        "from tiktok_corpus.config import Settings\n"
        "from tiktok_corpus.tiktok.browser import launched_browser\n"
        "async def main():\n"
        "    async with launched_browser(Settings()) as browser:\n"
        "        page = await browser.new_page()\n"
        "        for listing in glob.glob(f'/proc/{os.getpid()}/task/*/children'):\n"
        "            for child in open(listing).read().split():\n"
        "                os.kill(int(child), signal.SIGINT)  # the driver: Chromium is its child\n"
        "        try:\n"
        "            while True:\n"
        "                await page.title()\n"
        "        except Exception as gone:\n"
        "            print(type(gone).__name__, flush=True)\n"
        "        raise KeyboardInterrupt\n"
        "try:\n"
        "    asyncio.run(main())\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert done.stdout.strip() == "TargetClosedError", done.stderr  # the driver was gone
    assert done.returncode == 0 and "never retrieved" not in done.stderr, done.stderr


def test_a_full_disk_stops_the_crawl_with_one_line_and_the_same_command_goes_on(replica, small_disk):
    """SQLite on a disk that fills mid-crawl: one line that says what to do, exit 1, the run's row closed
    (by it, or by the next crawl); once the disk has room, the same command finishes the corpus, nothing
    duplicated."""
    disk = small_disk("700k")
    db_url = f"sqlite:///{disk / 'corpus.db'}"
    command = crawl_command(replica.base_url, db_url, disk / "data", target=60, seeds=25, fanout=5)
    full = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert full.returncode == 1, full.stderr
    assert "error: the SQLite database's disk is full: free some space, then run the same command again" in (
        " ".join(full.stderr.split())
    )
    assert "Traceback" not in full.stderr
    assert 0 < video_rows(db_url, VIDEO_ITEMS) < 60
    subprocess.run(["mount", "-o", "remount,size=30m", str(disk)], check=True)
    finished = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr
    assert_corpus_shape(db_url, target=60, seeds=25, fanout=5)
    # The first run closed its row as failed where the full disk still took that write; where it did
    # not, the second found the row running with its process gone and closed it as killed.
    first, second = run_statuses(db_url)
    assert first in ("failed", "killed") and second == "target_reached"


def corpus_lock_waiters(conn, application_name: str) -> int:
    """Crawl processes (their connections tagged ``application_name``) now waiting for the corpus lock."""
    return conn.execute(
        text(
            "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = :name"
        ),
        {"name": application_name},
    ).scalar()


@pytest.mark.postgres
def test_two_processes_on_one_postgres_share_the_frontier(replica, pg_url, tmp_path):
    """Both processes take part by construction, not by pacing: the test holds the corpus lock until
    both wait for it, so neither has a head start on the frontier."""
    upgrade_database(Settings(db_url=pg_url, data_dir=tmp_path))
    tag = f"crawl_share_{uuid.uuid4().hex[:8]}"
    tagged_url = f"{pg_url}&application_name={tag}"
    procs: list[subprocess.Popen] = []

    def start(i: int) -> subprocess.Popen:
        command = crawl_command(replica.base_url, tagged_url, tmp_path / f"data{i}", "--seed", "1", "--in-flight", "1")
        with (tmp_path / f"err{i}").open("w") as err:
            procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err))
        return procs[-1]

    gate_engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with gate_engine.connect() as gate:
            # Held from the start: each process waits for it with its first write (its seeds) in hand,
            # so both are in the crawl before either adds a video (expansions are written a batch at a
            # time, so "the first one is expanding" is no moment to wait for).
            gate.execute(text("SELECT pg_advisory_lock(:key)"), {"key": CORPUS_LOCK_KEY})
            first, second = start(0), start(1)
            wait_for(lambda: corpus_lock_waiters(gate, tag) == 2, "seeds in hand in both processes", first, second)
            gate.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": CORPUS_LOCK_KEY})
        for i, proc in enumerate(procs):
            assert proc.wait(timeout=240) == 0, (tmp_path / f"err{i}").read_text()
    finally:
        gate_engine.dispose()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    videos = assert_corpus_shape(pg_url)
    expanded = [v for v in videos.values() if v.expand_status == "expanded"]
    assert all(v.expand_attempts == 1 for v in expanded), "a video was expanded twice"
    # Each claimed parents (a list landing once the other had filled the corpus goes back unexpanded, still
    # naming its last claimer: the slower process may have expanded none).
    workers = {v.expand_worker.rsplit(":", 1)[0] for v in videos.values() if v.expand_worker}
    assert len(workers) == 2, "both processes took part"


@pytest.mark.parametrize("via", ["auto", "page"])
def test_reaches_target_under_faults(tmp_path, via):
    # Its own replica: each request's draws are fixed by the seed and its number on its route, and at seed
    # 24 the first related call is a block (an empty body or a captcha), however the workers interleave.
    faults = {name: 0.15 for name in FAULTS}
    with Replica(ReplicaConfig(videos=100, seed=24, faults=faults)) as faulty:
        settings = Settings(data_dir=tmp_path / "data", base_url=faulty.base_url)
        summary = crawl(settings, options(workers=2, related_via=via), policy=TEST_POLICY)
        fired = faulty.stats.faults
    assert summary.status == "target_reached"
    assert summary.blocks > 0 and fired["empty_body"] and fired["captcha"] and fired["http_5xx"]
    assert_corpus_shape(settings.db_url)
    assert summary.methods and summary.methods == expanded_by_method(settings.db_url)  # what landed, by method
    assert via == "auto" or set(summary.methods) == {via}


@pytest.mark.parametrize("via", ["auto", "page"])
def test_lists_answered_without_an_item_list_are_blocks_retried_not_empty_lists(tmp_path, via):
    """The contract's second bot answer (statusCode 0, no itemList), on every path a list comes by: a
    block, tried again, never a parent expanded with no children. Under ``auto`` it is first taken for
    the method's refusal, and a slower method answers in its place (a block only where all refuse: how
    the two workers' calls meet the faults decides which, so either counts)."""
    with Replica(ReplicaConfig(videos=60, seed=3, faults={"no_item_list": 0.3})) as faulty:
        settings = Settings(data_dir=tmp_path / "data", base_url=faulty.base_url)
        summary = crawl(settings, options(workers=2, max_videos=15, related_via=via), policy=TEST_POLICY)
        fired = faulty.stats.faults["no_item_list"]
    rescued = set(summary.methods) - {"fetch"}  # with no fault, auto's every list comes by fetch
    assert summary.status == "target_reached" and fired
    assert summary.blocks > 0 or (via == "auto" and rescued)
    videos = assert_corpus_shape(settings.db_url, target=15)
    store = open_store(settings)
    try:
        with store.sessions() as session:
            parents = set(session.scalars(select(RelatedEdge.parent_id)))
    finally:
        store.dispose()
    expanded = {video.id for video in videos.values() if video.expand_status == "expanded"}
    assert expanded and expanded <= parents, "a parent was expanded on an answer without its list"


def test_waf_interstitial_on_every_page_is_waited_out(replica, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", base_url=replica.base_url)
    before = replica.stats.faults["waf"]
    replica.set_faults({"waf": 1.0})
    try:
        summary = crawl(settings, options(workers=2, max_videos=12), policy=TEST_POLICY)
    finally:
        replica.set_faults({})
    assert summary.status == "target_reached" and summary.videos == 12
    assert replica.stats.faults["waf"] - before >= 2, "every worker's page load met the interstitial"
    assert_corpus_shape(settings.db_url, target=12)


@pytest.mark.timeout(120)  # closing a page under in-flight fetches used to hang the crawl
@pytest.mark.parametrize("via", ["auto", "page"])
def test_contexts_recycle_cleanly_under_concurrent_fetches(replica, tmp_path, via):
    settings = Settings(data_dir=tmp_path / "data", base_url=replica.base_url)
    # Every third request (the page load counts as one) renews the context, so however the ~15
    # requests split between the two workers, at least two recycles happen mid-crawl.
    policy = BlockPolicy(recycle_every=3, backoff_initial_s=0.05, backoff_max_s=0.5, warmup_wait_s=1.0)
    summary = crawl(settings, options(workers=2, in_flight=4, related_via=via), policy=policy)
    assert summary.status == "target_reached" and summary.recycles >= 2
    assert not TRANSPORT_KINDS & set(summary.errors), "a recycle closed a page under a fetch still in flight"
    assert_corpus_shape(settings.db_url)


def test_a_login_modal_is_closed_not_taken_for_a_block(replica, tmp_path):
    """The contract's login modal sits over a usable page: every page of the crawl opens under one (the
    feed scrolls no further until it is closed), and the crawl goes on as a guest, unblocked."""
    settings = Settings(data_dir=tmp_path / "data", base_url=replica.base_url)
    before = replica.stats.faults["login_modal"]
    replica.set_faults({"login_modal": 1.0})
    try:
        summary = crawl(settings, options(related_via="page"), policy=TEST_POLICY)
    finally:
        replica.set_faults({})
    assert summary.status == "target_reached" and summary.blocks == 0, summary.block_kinds
    assert replica.stats.faults["login_modal"] - before > summary.expansions, "the feed and video pages had one"
    assert_corpus_shape(settings.db_url)


CAPTION_BLOCK_WORDS = ("captcha-verify", "Verify to continue", "_wafchallengeid", "Something went wrong. Refresh")


def test_captions_holding_block_page_words_leave_their_pages_usable(make_replica, tmp_path):
    """Every caption of the site holds words that block pages show; its video pages (read whole by the
    page method, which gnarly signing leaves as the only one) and the feed stay pages, never blocks."""
    rep = make_replica(videos=150, seed=0, signing="gnarly", media=False)
    for n, video in enumerate(rep.catalog.videos):
        video.desc = f"{video.desc} {CAPTION_BLOCK_WORDS[n % len(CAPTION_BLOCK_WORDS)]}"
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    summary = crawl(settings, options(), policy=TEST_POLICY)
    assert summary.status == "target_reached" and summary.blocks == 0, summary.block_kinds
    assert summary.methods == {"page": summary.expansions}
    videos = assert_corpus_shape(settings.db_url)
    assert all(any(words in (v.desc or "") for words in CAPTION_BLOCK_WORDS) for v in videos.values())


@pytest.mark.timeout(180)  # without the stop, the outage failed the frontier's parents one after another
def crawl_into_an_outage(rep: Replica, settings: Settings, *, lists: int, **overrides) -> SiteUnreachable:
    """Crawl ``rep`` (to 250 videos) and stop its server once it has served ``lists`` related lists: the
    error the crawl stops with."""

    def outage() -> None:
        wait_for(lambda: rep.stats.requests["related"] >= lists, f"{lists} related lists served")
        rep.stop()

    cutting = threading.Thread(target=outage)
    cutting.start()
    try:
        with pytest.raises(SiteUnreachable) as stopped:
            crawl(settings, options(max_videos=250, **overrides), policy=TEST_POLICY)
    finally:
        cutting.join()
    return stopped.value


def test_an_outage_stops_the_crawl_with_one_line_and_leaves_the_parents_to_a_later_run(make_replica, tmp_path):
    """The site stops answering mid-crawl (its server is gone): after a few requests in a row with no
    answer the crawl stops with one line, its run recorded as such; no parent is failed, and the few
    that failed on the way wait out a backoff instead of being claimed again at once."""
    rep = make_replica(videos=300, seed=0, media=False)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    stopped = crawl_into_an_outage(rep, settings, lists=4)
    assert "did not answer" in stopped.message and "\n" not in stopped.message
    assert stopped.exit_code not in (0, 3)
    db_url = settings.db_url
    # The catalog's deleted posts fail as parents when their lists come before the outage: the site said so.
    assert video_rows(db_url, "expand_status = 'claimed'") == 0
    assert video_rows(db_url, "expand_status = 'failed' AND expand_error_kind != 'deleted'") == 0
    assert video_rows(db_url, "expand_attempts > 1") == 0, "no parent was claimed again at once"
    # An in-page fetch() to a server that is gone fails with "Failed to fetch": no answer, kind network.
    waiting = video_rows(db_url, "expand_error_kind = 'network' AND expand_not_before IS NOT NULL")
    # A few: fewer than the stop's count, but a list answered just before the server went away may land
    # after the first failures and start the count again (no answer fails a request in 3 quick tries).
    assert 0 < waiting < 2 * TEST_POLICY.give_up_after_unreachable
    assert run_statuses(db_url) == ["unreachable"]


def test_an_outage_leaves_the_downloads_beside_the_crawl_to_a_later_run(make_replica, tmp_path):
    """Downloads lag discovery: when the site stops answering, what they have not fetched stays pending
    for `corpus download` (they drained, trying every pending file against the dead site and failing
    each for good)."""
    rep = make_replica(videos=300, seed=0)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    crawl_into_an_outage(rep, settings, lists=8, download=True)
    db_url = settings.db_url
    # At most the files in flight when the site went away failed; the rest wait, none claimed.
    assert video_rows(db_url, "download_status = 'pending'") > 20
    assert video_rows(db_url, "download_status = 'failed'") <= 2 * DownloadOptions().concurrency  # in hand at once
    assert video_rows(db_url, "download_status = 'claimed'") == 0


@pytest.mark.timeout(180)  # without the give-back, the parents whose failures were still queued stayed claimed
def test_an_outage_on_a_busy_database_leaves_no_parent_claimed(make_replica, tmp_path, monkeypatch):
    """When the outage stops the crawl, other fetches' failures may still wait on the database thread
    (a slow disk, here the first failure's write held until the expansion loops have stopped): their
    writes are cancelled with the loops, and those parents go back at the end like the unstarted ones."""
    rep = make_replica(videos=300, seed=0, media=False)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    gathered, loops_stopped, held = [], threading.Event(), []

    async def outage_as_the_expansions_start(*tasks):
        gathered.append(tasks)
        if len(gathered) == 2:  # the first gathered the seeds; the second runs the expansion loops
            await asyncio.to_thread(rep.stop)
        try:
            return await gather_or_cancel(*tasks)
        except SiteUnreachable:
            loops_stopped.set()  # every loop cancelled and ended
            raise

    def held_retry_parent(store, parent_id, *args, **kwargs):
        held.append(parent_id)
        loops_stopped.wait(timeout=30)  # the first holds the database thread: the next failures' writes queue
        return retry_parent(store, parent_id, *args, **kwargs)

    monkeypatch.setattr(crawl_run, "gather_or_cancel", outage_as_the_expansions_start)
    monkeypatch.setattr(crawl_run, "retry_parent", held_retry_parent)
    with pytest.raises(SiteUnreachable):
        policy = dataclasses.replace(TEST_POLICY, give_up_after_unreachable=3)
        crawl(settings, options(max_videos=250), policy=policy)
    assert loops_stopped.is_set() and held, "the loops stopped with a failure's write held"
    assert video_rows(settings.db_url, "expand_status = 'claimed'") == 0
    assert video_rows(settings.db_url, "expand_status = 'expanded'") == 0, "the site was gone for every list"
    assert run_statuses(settings.db_url) == ["unreachable"]


def unanswering_url() -> str:
    """An address where nothing listens: a port just bound, then let go."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("where", ["refused", "unresolved"])
def test_a_site_that_never_answers_stops_the_crawl_at_once_with_exit_code_4(tmp_path, where):
    """A --base-url whose host refuses connections or does not resolve: the first page load is tried a
    few times, each retry said on stderr, then the crawl stops with the unreachable line and exit code 4
    in seconds (not a browser error after a minute of silence); its run is recorded as unreachable.
    With --json, stdout holds the error's document with the run's summary, for a script."""
    base_url = unanswering_url() if where == "refused" else "http://no-such-host.invalid"
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    started = time.monotonic()
    result = subprocess.run(
        crawl_command(base_url, db_url, tmp_path / "data", "--json", seeds=2, target=4),
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    assert result.returncode == 4, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: the site did not answer the first page load"), errors
    assert "check the network, the proxy or --base-url" in errors[0] and "Traceback" not in result.stderr
    retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
    assert len(retries) == BlockPolicy().unanswered_attempts - 1, result.stderr
    assert took < 30, f"{took:.0f}s to give up on a site that refuses every connection"
    assert run_statuses(db_url) == ["unreachable"]
    assert not (tmp_path / "data" / "session").exists(), "a session that loaded nothing was saved"
    said = json.loads(result.stdout)
    assert (said["error"], said["exit_code"], "error: " + said["message"]) == ("unreachable", 4, errors[0])
    assert said["summary"]["status"] == "unreachable" and said["summary"]["videos"] == 0


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (PlaywrightError("Page.goto: net::ERR_CONNECTION_RESET at http://h/foryou"), "network"),
        (PlaywrightError("Page.goto: net::ERR_INTERNET_DISCONNECTED at http://h/foryou"), "network"),
        (PlaywrightError("Page.evaluate: TypeError: Failed to fetch"), "network"),
        (PlaywrightTimeoutError("Page.goto: Timeout 30000ms exceeded.\nCall log:\n  - navigating"), "timeout"),
        (PlaywrightTimeoutError("Locator.click: Timeout 30000ms exceeded."), "browser_error"),
        (PlaywrightError("Page.goto: net::ERR_ABORTED at http://h/foryou"), "browser_error"),  # a reload's
        (PlaywrightError("Target page, context or browser has been closed"), "browser_error"),
        (PlaywrightError("Page.goto: net::ERR_UNSAFE_PORT at http://h:1/foryou"), "unloadable"),
    ],
)
def test_browser_failures_are_told_apart_by_whether_the_site_answered(error, kind):
    failure = browser_failure(error)
    assert failure.kind == kind and "\n" not in failure.message
    assert failure.retryable == (kind != "unloadable")


@pytest.mark.parametrize("scheme", ["unsafe port", "https to http"])
def test_an_address_chromium_will_not_load_fails_at_once_without_retries(replica, tmp_path, scheme):
    """A port Chromium refuses, or https:// to a server speaking http: no retry can help, so one line and
    exit 1 at once, not a minute of tries."""
    base_url = "http://127.0.0.1:1" if scheme == "unsafe port" else replica.base_url.replace("http:", "https:")
    result = subprocess.run(
        crawl_command(base_url, f"sqlite:///{tmp_path / 'corpus.db'}", tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert "error: Chromium cannot load it: Page.goto: net::ERR_" in result.stderr, result.stderr
    assert "retrying" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["crawl", "track"])
@pytest.mark.parametrize("base_url", ["notaurl", "ftp://x", "http://", "http://127.0.0.1:99999"])
def test_a_malformed_base_url_is_refused_at_once_in_one_line(tmp_path, command, base_url):
    result = subprocess.run(
        [str(CORPUS), "--data-dir", str(tmp_path / "data"), command, "--base-url", base_url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"error: the base URL {base_url!r} (--base-url or CORPUS_BASE_URL) is not an http(s) address with a "
        "host, like https://www.tiktok.com or http://127.0.0.1:8000"
    )
    assert not (tmp_path / "data").exists(), "refused before anything was made"


def test_retry_failed_gives_the_failed_parents_back(replica, tmp_path):
    """Parents failed on their last allowed claim (video pages that never carry their data) are expanded
    by a later `corpus crawl --retry-failed` once the site is well."""
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    settings = Settings(db_url=db_url, data_dir=tmp_path / "data", base_url=replica.base_url)
    replica.set_faults({"no_rehydration": 1.0})
    try:
        summary = crawl(settings, options(related_via="page", max_attempts=1), policy=TEST_POLICY)
    finally:
        replica.set_faults({})
    assert summary.status == "frontier_exhausted" and summary.errors == {"no_rehydration": SEEDS}
    assert video_rows(db_url, "expand_status = 'failed'") == SEEDS
    resumed = subprocess.run(
        crawl_command(replica.base_url, db_url, tmp_path / "data", "--retry-failed"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_corpus_shape(db_url)


def test_a_full_corpus_asked_for_more_seeds_ends_instead_of_scrolling_for_ever(replica, tmp_path):
    """A corpus at --max-videos takes no seed: the feed was scrolled for new ones that could never be
    added, and the crawl never ended."""
    settings = Settings(data_dir=tmp_path / "data", base_url=replica.base_url)
    assert crawl(settings, options(seeds=3, max_videos=10), policy=TEST_POLICY).status == "target_reached"

    again = crawl(settings, options(seeds=6, max_videos=10), policy=TEST_POLICY)

    assert (again.status, again.videos, again.seeds) == ("target_reached", 10, 3)


def test_crawl_with_downloads_stores_the_replica_bytes(make_replica, tmp_path):
    rep = make_replica(videos=60, seed=2)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    summary = crawl(settings, options(max_videos=20, download=True, workers=2), policy=TEST_POLICY)
    assert summary.status == "target_reached" and summary.downloads is not None
    store = open_store(settings)
    try:
        with store.sessions() as session:
            videos = list(session.scalars(select(Video)))
            files = {f.video_id: f for f in session.scalars(select(MediaFile))}
    finally:
        store.dispose()
    downloadable = [v for v in videos if v.media_urls and v.item_kind == "video"]
    assert len(downloadable) >= 15 and summary.downloads["downloaded"] == len(downloadable)
    for video in downloadable:
        assert video.download_status == "downloaded" and video.probe_status == "pending"
        stored = settings.data_dir / files[video.id].path
        assert stored.read_bytes() == rep.media_path(video.id).read_bytes(), video.id
    others = [v for v in videos if v not in downloadable]
    assert others, "the catalog's photo / ad / live / private posts were met"
    assert all(v.download_status == "skipped" and v.probe_status == "skipped" for v in others)
    assert set(files) == {v.id for v in downloadable}


def test_persistent_blocking_stops_with_exit_code_3(replica, tmp_path):
    replica.set_faults({"empty_body": 1.0})
    try:
        result = subprocess.run(
            crawl_command(replica.base_url, f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "d"),
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        replica.set_faults({})
    assert result.returncode == 3, result.stderr
    assert "persistently blocked" in result.stderr and "tt_chain_token" not in result.stderr + result.stdout


def test_a_region_block_answering_10204_for_every_post_is_a_block_not_a_corpus_of_deleted_videos(replica, tmp_path):
    """The site answers a region or IP block with the statusCode of a deleted post: after a few in a row
    the answers count as blocks, the parents failed by the first ones go back to the frontier, the crawl
    stops as persistently blocked, and a resumed crawl finishes."""
    db_url = f"sqlite:///{tmp_path / 'c.db'}"
    command = crawl_command(replica.base_url, db_url, tmp_path / "d", seeds=25, target=60)
    replica.set_faults({"region_block": 1.0})
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    finally:
        replica.set_faults({})
    assert result.returncode == 3 and "persistently blocked" in result.stderr and "unavailable_run" in result.stderr
    assert video_rows(db_url, "expand_status = 'failed'") == 0  # the first answers, believed, are set back
    assert video_rows(db_url, "expand_status = 'pending'") == video_rows(db_url, VIDEO_ITEMS)
    assert video_rows(db_url, "expand_error_kind = 'unavailable_run'") == BlockPolicy().unavailable_run
    assert video_rows(db_url, "expand_status = 'claimed'") == 0
    finished = subprocess.run(command, capture_output=True, text=True, timeout=240)  # the block lifted
    assert finished.returncode == 0, finished.stderr


def test_video_pages_that_fail_tls_for_the_whole_site_stop_the_crawl_as_unreachable_not_fail_every_parent(
    replica, tmp_path
):
    """A certificate or proxy failing for the site fails every video page alike: each parent was failed
    for good as ``unloadable``, and the crawl ended "frontier exhausted" with a frontier of failures."""
    settings = Settings(data_dir=tmp_path / "data", base_url=replica.base_url)
    db_url = settings.db_url
    quick_retry = dataclasses.replace(TEST_POLICY, parent_retry_after_s=0.1)
    replica.set_faults({"tls_failure": 1.0})
    try:
        with pytest.raises(SiteUnreachable, match="net::ERR_SSL_PROTOCOL_ERROR"):
            crawl(settings, options(related_via="page", seeds=10), policy=quick_retry)
    finally:
        replica.set_faults({})
    assert run_statuses(db_url) == ["unreachable"]
    assert video_rows(db_url, "expand_status = 'failed'") == 0
    assert video_rows(db_url, "expand_status = 'pending'") == video_rows(db_url, VIDEO_ITEMS)
    finished = crawl(settings, options(related_via="page", seeds=10), policy=quick_retry)  # the certificate renewed
    assert finished.status == "target_reached"


def test_a_for_you_feed_that_only_repeats_itself_ends_the_seeds_instead_of_scrolling_for_ever(make_replica, tmp_path):
    """A site with fewer videos than the seeds asked for: each batch reset the stall count, so the feed was
    scrolled for ever and the crawl never reached its expansions."""
    rep = make_replica(videos=12, seed=0, media=False)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    ended: dict = {}
    crawling = threading.Thread(
        target=lambda: ended.update(summary=crawl(settings, options(seeds=25, max_videos=40), policy=TEST_POLICY)),
        daemon=True,
    )
    crawling.start()
    crawling.join(180)
    assert not crawling.is_alive(), "the crawl kept scrolling a feed that brings nothing new"
    summary = ended["summary"]
    assert summary.status == "frontier_exhausted" and 0 < summary.seeds < 25 and summary.expansions > 0


def test_a_for_you_feed_answering_empty_lists_stops_the_crawl_as_blocked_not_as_a_crawl_without_seeds(
    make_replica, tmp_path
):
    """An empty list is a stall, not a repeat: four of them ended the seeds as if the feed had no more to
    give, and the crawl went on to expand nothing ("frontier exhausted", no seed)."""
    rep = make_replica(videos=40, seed=0, media=False, faults={"empty_list": 1.0})
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)
    with pytest.raises(PersistentlyBlocked, match="stopped bringing new videos"):
        crawl(settings, options(), policy=dataclasses.replace(TEST_POLICY, attempts=2))
    assert run_statuses(settings.db_url) == ["blocked"]


@pytest.mark.parametrize(
    "changed", ["() => null", "() => { throw new Error('moved'); }", "() => ({'X-Gnarly': 'abc'})"]
)
def test_a_frontier_sign_the_site_changed_refuses_to_sign_so_a_slower_method_gets_its_turn(make_replica, changed):
    """A frontierSign that throws or gives no X-Bogus was a browser error: no fallback to the page, and
    after eight parents the crawl stopped as an unreachable site that answered every page."""
    rep = make_replica(videos=40, media=False, signing="xbogus")
    video_id = next(v.id for v in rep.catalog.videos if v.kind == "video")
    path = f"/api/related/item_list/?aid=1988&count=16&itemID={video_id}"

    async def sign_twice() -> tuple[str, BlockedError]:
        async with launched_browser(Settings()) as browser:
            session = WorkerSession(
                browser,
                rep.base_url,
                policy=TEST_POLICY,
                monitor=BlockMonitor(TEST_POLICY),
                pacer=Pacer(0.0, None, random.Random(0)),
            )
            try:
                await session.start()
                signed = await session.fetch_text(path, signed=True)
                assert session.page is not None
                await session.page.evaluate(f"() => {{ window.byted_acrawler.frontierSign = {changed}; }}")
                with pytest.raises(BlockedError) as refused:
                    await session.fetch_text(path, signed=True)
            finally:
                await session.close()
        return signed, refused.value

    signed, refused = asyncio.run(sign_twice())
    assert json.loads(signed)["itemList"] and refused.kind == "no_signer"


# --- request signing (issue #14) ------------------------------------------------------------------------
# The crawl, 25 seeds at fanout 5, on a catalog without media files: these crawls download nothing.
SIGNED_SEEDS, SIGNED_FANOUT, SIGNED_TARGET = 25, 5, 60


def signing_replica(make_replica, signing: str) -> Replica:
    return make_replica(videos=200, seed=0, signing=signing, media=False)


def expanded_by_method(db_url: str) -> Counter:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT expand_method, count(*) FROM videos WHERE expand_status = 'expanded' GROUP BY 1")
            ).all()
    finally:
        engine.dispose()
    return Counter(dict(rows))


@pytest.mark.parametrize(("signing", "method"), [("none", "fetch"), ("xbogus", "signed"), ("gnarly", "page")])
def test_each_signing_mode_is_crawled_with_the_cheapest_method_it_accepts(make_replica, tmp_path, signing, method):
    rep = signing_replica(make_replica, signing)
    settings = Settings(data_dir=tmp_path / "data", base_url=rep.base_url)

    summary = crawl(
        settings, options(seeds=SIGNED_SEEDS, fanout=SIGNED_FANOUT, max_videos=SIGNED_TARGET), policy=TEST_POLICY
    )

    assert summary.status == "target_reached" and summary.seeds == SIGNED_SEEDS, "the For You seeds came in"
    assert_corpus_shape(settings.db_url, target=SIGNED_TARGET, seeds=SIGNED_SEEDS, fanout=SIGNED_FANOUT)
    assert summary.methods == {method: summary.expansions} == expanded_by_method(settings.db_url)
    refused = rep.stats.refused_signatures
    assert summary.blocks == 0 and sum(refused.values()) == ("fetch", "signed", "page").index(method), (
        "the probe's refused calls (one per cheaper method) were the only ones, and none was a block"
    )
    store = open_store(settings)
    with store.sessions() as session:
        run = session.scalars(select(CrawlRun)).one()
    store.dispose()
    assert run.counts["methods"] == summary.methods


def test_a_switch_from_xbogus_to_gnarly_mid_crawl_falls_back_to_the_page(make_replica, tmp_path):
    rep = signing_replica(make_replica, "xbogus")
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    target = 90  # room for a dozen expansions after the switch
    command = crawl_command(
        rep.base_url, db_url, tmp_path / "data", "--json", seeds=SIGNED_SEEDS, fanout=SIGNED_FANOUT, target=target
    )
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Mid-crawl by what the site served (the crawl writes its expansions a batch at a time, so the
        # database trails the lists it has in hand).
        wait_for(lambda: rep.stats.requests["related"] >= 6, "6 related lists served", proc)
        rep.set_signing("gnarly")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["status"] == "target_reached" and summary["blocks"] == 0, "every refused list was filled"
    methods = expanded_by_method(db_url)
    assert methods == summary["methods"] and methods["signed"] >= 3 and methods["page"] >= 3
    assert rep.stats.refused_signatures, "the site did refuse the signed calls after the switch"
    videos = assert_corpus_shape(db_url, target=target, seeds=SIGNED_SEEDS, fanout=SIGNED_FANOUT)
    assert all(v.expand_attempts == 1 for v in videos.values() if v.expand_status == "expanded"), (
        "no parent was given back and expanded again"
    )


def test_fetch_alone_against_gnarly_is_persistently_blocked_where_auto_goes_on(make_replica, tmp_path):
    rep = signing_replica(make_replica, "gnarly")
    db_url = f"sqlite:///{tmp_path / 'corpus.db'}"
    sizes = {"seeds": SIGNED_SEEDS, "fanout": SIGNED_FANOUT, "target": SIGNED_TARGET}

    blocked = subprocess.run(
        crawl_command(rep.base_url, db_url, tmp_path / "data", "--related-via", "fetch", **sizes),
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert blocked.returncode == 3, blocked.stderr
    assert "persistently blocked" in blocked.stderr and "empty_body" in blocked.stderr
    # What helps, where waiting and a proxy do not: the method with a fallback.
    assert "--related-via fetch has no fallback" in blocked.stderr and "--related-via auto" in blocked.stderr
    assert video_rows(db_url, "expand_status = 'expanded'") == 0 and video_rows(db_url) >= SIGNED_SEEDS
    resumed = subprocess.run(
        crawl_command(rep.base_url, db_url, tmp_path / "data", **sizes), capture_output=True, text=True, timeout=240
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_corpus_shape(db_url, target=SIGNED_TARGET, seeds=SIGNED_SEEDS, fanout=SIGNED_FANOUT)
    assert set(expanded_by_method(db_url)) == {"page"}
