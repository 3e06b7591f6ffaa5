"""`corpus track` end to end: real Chromium against a replica whose engagement grows on its own clock,
real SQLite and Postgres, the command in subprocesses for kill -9 and for two processes on one queue; and
a browser the caller gives the crawl and the tracking."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from tests.waiting import wait_for
from tiktok_corpus.clock import VirtualClock
from tiktok_corpus.config import Settings
from tiktok_corpus.crawl import CrawlOptions, crawl, crawl_async
from tiktok_corpus.errors import SiteUnreachable
from tiktok_corpus.replica import Replica, ReplicaConfig
from tiktok_corpus.replica.catalog import tiktok_rounded
from tiktok_corpus.store.db import open_store, upgrade_database
from tiktok_corpus.store.models import Author, AuthorSnapshot, StatsSnapshot, TrackTarget, Video
from tiktok_corpus.tiktok.blocks import BlockPolicy
from tiktok_corpus.track import TrackOptions, track, track_async

pytestmark = [pytest.mark.browser, pytest.mark.slow(100)]
CORPUS = Path(sys.executable).with_name("corpus")
HOUR, DAY = 3_600, 86_400
T0 = 1_790_000_000.0  # the site clock's origin: posts were made in the 3 days before it
WEEK_AGES = "1h,6h,1d,3d,7d"
TEST_POLICY = BlockPolicy(backoff_initial_s=0.05, backoff_max_s=0.5, warmup_wait_s=1.0, waf_wait_s=5.0)
FAST = {"delay_s": 0.0, "max_rate": None}


def crawled_corpus(replica: Replica, tmp_path: Path, db_url: str | None = None) -> Settings:
    """A small crawl of the replica (the videos to track), without downloads."""
    settings = Settings(
        db_url=db_url or f"sqlite:///{tmp_path / 'corpus.db'}", data_dir=tmp_path / "data", base_url=replica.base_url
    )
    upgrade_database(settings)
    crawl(settings, CrawlOptions(seeds=5, fanout=3, max_videos=20, download=False, **FAST), policy=TEST_POLICY)
    return settings


def settled_targets(settings: Settings) -> list[TrackTarget]:
    with open_store(settings) as store, store.sessions() as session:
        return list(session.scalars(select(TrackTarget)))


def track_snapshots(settings: Settings) -> list[StatsSnapshot]:
    with open_store(settings) as store, store.sessions() as session:
        return list(session.scalars(select(StatsSnapshot).where(StatsSnapshot.source == "track")))


def test_a_simulated_week_observes_every_target_once_at_its_age_with_what_the_site_served(tmp_path):
    clock = VirtualClock(T0)
    config = ReplicaConfig(videos=80, seed=5, media=False, time_scale=1.0, time_origin=T0)
    with Replica(config, site_clock=clock) as replica:
        settings = crawled_corpus(replica, tmp_path)
        # Which of the catalog's deleted posts a crawl reaches depends on its path, so one more is deleted
        # now: whatever the crawl found, some target's detail answers 10204.
        with open_store(settings) as store, store.sessions() as session:
            removed = session.scalar(select(func.min(Video.id)).where(Video.item_kind == "video"))
        replica.remove(removed)
        options = TrackOptions(ages=WEEK_AGES, follow=True, until="8d", **FAST)
        with open_store(settings) as store:
            summary = asyncio.run(track_async(store, settings, options, clock=clock, policy=TEST_POLICY))
        detail_calls = replica.stats.requests["detail"]
        catalog = replica.catalog
    assert summary.status == "until_reached" and clock() >= T0 + 8 * DAY
    targets = settled_targets(settings)
    snapshots = {s.id: s for s in track_snapshots(settings)}
    # Deleted posts show in lists like any other, but their detail answers 10204: gone.
    deleted = {t.video_id for t in targets if catalog.by_id[t.video_id].kind == "deleted"} | {removed}
    assert {t.video_id for t in targets if t.status == "gone"} == deleted
    assert {t.status for t in targets if t.video_id not in deleted} == {"observed"}, Counter(t.status for t in targets)
    # Every target of the schedule is there: the ages still ahead of each video when tracking began.
    with open_store(settings) as store, store.sessions() as session:
        created = dict(
            session.execute(select(Video.id, Video.create_time).where(Video.item_kind.in_(("video", "photo")))).all()
        )
    expected = {
        (vid, age)
        for vid, created_at in created.items()
        for age in (HOUR, 6 * HOUR, DAY, 3 * DAY, 7 * DAY)
        if created_at + age + max(60, age / 4) >= T0
    }
    assert {(t.video_id, t.age_s) for t in targets} == expected
    observed = [t for t in targets if t.status == "observed"]
    # At its age: the virtual clock stands still during an observation, so the stated tolerance is 1 s;
    # a target already due when tracking began (within its allowed lateness) is taken at once.
    assert all(abs(t.observed_age_s - max(t.age_s, T0 - created[t.video_id])) <= 1 for t in observed)
    # Once: one snapshot per observation, each target settled by exactly one, none left over.
    assert {t.snapshot_id for t in observed} == set(snapshots)
    # One request per observation, the deleted posts' refused reads (one each, final) included.
    assert summary.observations + len(deleted) == len(snapshots) + len(deleted) == detail_calls
    for snapshot in snapshots.values():
        assert snapshot.clock == "site"  # the detail answer's extra.now
        served = catalog.stats_at(snapshot.video_id, snapshot.captured_at.timestamp())
        as_served = (served.plays, served.likes, served.comments)
        if not snapshot.exact:  # an answer without statsV2 carries the rounded counts
            as_served = tuple(tiktok_rounded(count) for count in as_served)
        assert (snapshot.play_count, snapshot.like_count, snapshot.comment_count) == as_served
    plays = {}
    for snapshot in sorted(snapshots.values(), key=lambda s: s.captured_at):
        assert snapshot.play_count >= plays.get(snapshot.video_id, 0)  # grown, never shrunk
        plays[snapshot.video_id] = snapshot.play_count
    with open_store(settings) as store, store.sessions() as session:
        author_moments = Counter(session.execute(select(AuthorSnapshot.video_id, AuthorSnapshot.captured_at)).all())
        author_counts = session.execute(
            select(
                AuthorSnapshot.author_id,
                AuthorSnapshot.captured_at,
                AuthorSnapshot.clock,
                AuthorSnapshot.follower_count,
                AuthorSnapshot.verified,
                Author.follower_count,
                Author.verified,
            ).join(Author, Author.id == AuthorSnapshot.author_id)
        ).all()
        crawled_authors = set(session.scalars(select(Video.author_id).where(Video.author_id.is_not(None))))
        crawled = session.execute(
            select(StatsSnapshot.captured_at, StatsSnapshot.clock, StatsSnapshot.age_s, Video.create_time)
            .join(Video, Video.id == StatsSnapshot.video_id)
            .where(StatsSnapshot.source != "track")
        ).all()
    # Each observation took its author's counts at its own moment, and so did the crawl's sightings, at T0:
    # every author seen (the replica's followers do not change, so they are the profile's).
    assert all(author_moments[(s.video_id, s.captured_at)] >= 1 for s in snapshots.values())
    assert all(
        clock == "site" and (followers, badge) == (profile_followers, profile_badge) and badge is not None
        for _, _, clock, followers, badge, profile_followers, profile_badge in author_counts
    )
    assert {author for author, captured, *_ in author_counts if captured.timestamp() == T0} == crawled_authors
    # The crawl's sightings are timed by the lists' own extra.now too: the site clock stood at T0.
    assert crawled and all(
        (captured.timestamp(), clock, age) == (T0, "site", T0 - created) for captured, clock, age, created in crawled
    )


def test_a_deleted_video_stops_its_schedule_and_refused_reads_are_retried_not_recorded(tmp_path):
    clock = VirtualClock(T0)
    config = ReplicaConfig(videos=80, seed=5, media=False, time_scale=1.0, time_origin=T0)
    with Replica(config, site_clock=clock) as replica:
        settings = crawled_corpus(replica, tmp_path)
        with open_store(settings) as store:
            first = asyncio.run(
                track_async(store, settings, TrackOptions(ages=WEEK_AGES, follow=True, until="1d", **FAST), clock=clock)
            )
            pending = [t for t in settled_targets(settings) if t.status == "pending"]
            gone_id = next(t.video_id for t in pending if replica.catalog.by_id[t.video_id].kind == "video")
            replica.remove(gone_id)
            replica.set_faults({"empty_body": 0.3})  # refused reads: retried, never taken for data
            second = asyncio.run(
                track_async(
                    store,
                    settings,
                    TrackOptions(ages=WEEK_AGES, follow=True, until="7d", via="fetch", **FAST),
                    clock=clock,
                    policy=TEST_POLICY,
                )
            )
        catalog = replica.catalog
    assert first.observations and second.observations and second.blocks > 0
    by_video: dict[str, set[str]] = {}
    for target in settled_targets(settings):
        by_video.setdefault(target.video_id, set()).add(target.status)
    assert by_video[gone_id] <= {"observed", "gone"} and "gone" in by_video[gone_id]
    gone = [t for t in settled_targets(settings) if t.status == "gone"]
    deleted_before = {t.video_id for t in gone if catalog.by_id[t.video_id].kind == "deleted"}
    assert {t.video_id for t in gone} == {gone_id} | deleted_before and {t.error_kind for t in gone} == {"deleted"}
    assert first.outcomes.get("gone", 0) + second.outcomes.get("gone", 0) == len(gone)
    assert {s for statuses in by_video.values() for s in statuses} <= {"observed", "gone", "pending"}
    snapshot_ids = [t.snapshot_id for t in settled_targets(settings) if t.snapshot_id is not None]
    assert len(track_snapshots(settings)) == len(set(snapshot_ids))


def rows(db_url: str, sql: str) -> int:
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar() or 0
    except DBAPIError:
        return 0
    finally:
        engine.dispose()


def track_command(replica: Replica, settings: Settings, *extra: str) -> list[str]:
    return [
        str(CORPUS),
        "--db",
        settings.db_url,
        "--data-dir",
        str(settings.data_dir),
        "track",
        "--base-url",
        replica.base_url,
        "--ages",
        "1d,2d,3d,4d",
        "--delay",
        "0",
        "--max-rate",
        "0",
        "--time-scale",
        str(replica.config.time_scale),
        "--time-origin",
        str(replica.time_origin),
        "--json",
        *extra,
    ]


def assert_each_target_settled_once(settings: Settings) -> list[TrackTarget]:
    targets = settled_targets(settings)
    snapshots = track_snapshots(settings)
    assert targets and not [t for t in targets if t.status in ("claimed", "failed")]
    # No observation lost (each settled target has its snapshot) or duplicated (no snapshot settles nothing).
    assert {t.snapshot_id for t in targets if t.status in ("observed", "missed")} == {s.id for s in snapshots}
    return targets


def replica_ahead_of_its_posts() -> ReplicaConfig:
    """A site clock running a day every 2 wall seconds whose posts are all made 1.5 to 6 site days (3 to
    12 wall seconds) after the start: the trackers are up before the first target (a day later) falls due."""
    return ReplicaConfig(videos=80, seed=5, media=False, time_scale=DAY / 2, time_origin=time.time() + 12)


def observed(settings: Settings) -> int:
    return rows(settings.db_url, "SELECT count(*) FROM stats_snapshots WHERE source = 'track'")


def test_kill_9_mid_run_twice_then_a_restart_loses_and_repeats_nothing(tmp_path):
    """Killed early (2 observations in) and again after a restart (6 in): the third run finishes the schedule."""
    with Replica(replica_ahead_of_its_posts()) as replica:
        settings = crawled_corpus(replica, tmp_path)
        command = track_command(replica, settings, "--follow", "--until", "12d")
        for kill_after in (2, 6):
            log = tmp_path / f"track-{kill_after}.err"
            with log.open("w") as stderr:
                proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                wait_for(lambda: observed(settings) >= kill_after, f"{kill_after} observations", proc)  # noqa: B023
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{log.read_text()}") from None
            finally:
                proc.send_signal(signal.SIGKILL)  # a no-op once it has ended
                proc.wait()
            assert rows(settings.db_url, "SELECT count(*) FROM track_targets WHERE status = 'pending'") > 0
        finished = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert finished.returncode == 0, finished.stderr
    targets = assert_each_target_settled_once(settings)
    assert not [t for t in targets if t.status == "pending"]


@pytest.mark.postgres
def test_two_processes_on_one_postgres_share_the_queue_without_duplicates(tmp_path, pg_url):
    with Replica(replica_ahead_of_its_posts()) as replica:
        settings = crawled_corpus(replica, tmp_path, db_url=pg_url)
        command = track_command(replica, settings, "--follow", "--until", "12d", "--workers", "1")
        procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [proc.communicate(timeout=240) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    targets = assert_each_target_settled_once(settings)
    assert not [t for t in targets if t.status == "pending"]
    observed_by = Counter(t.worker.split(":")[1] for t in targets if t.worker)
    assert len(observed_by) == 2, f"one process did all the work: {observed_by}"


def test_a_site_that_never_answers_stops_the_tracking_at_once_with_exit_code_4(tmp_path, caplog):
    """Videos due, and a --base-url where nothing listens: the first page load is tried a few times, each
    retry a warning, then the run stops as unreachable (exit code 4) in seconds, every target still
    pending with none of its tries spent."""
    with socket.socket() as probe:  # a port just bound, then let go: nothing listens there
        probe.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = Settings(data_dir=tmp_path / "data", base_url=base_url)
    posted = int(time.time()) - HOUR - 60  # their 1h age fell due a minute ago
    with open_store(settings) as store, store.transaction() as session:
        session.execute(insert(Video), [{"id": str(100 + i), "create_time": posted} for i in range(3)])
    started = time.monotonic()
    with pytest.raises(SiteUnreachable, match="^the site did not answer the first page load") as stopped:
        track(settings, TrackOptions(ages="1h", **FAST))  # the real site's policy: its patience is the point
    took = time.monotonic() - started
    assert stopped.value.exit_code == 4 and "net::ERR_CONNECTION_REFUSED" in stopped.value.message
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == BlockPolicy().unanswered_attempts - 1 and {r.levelname for r in retries} == {"WARNING"}
    assert took < 30, f"{took:.0f}s to give up on a site that refuses every connection"
    assert Counter((t.status, t.attempts) for t in settled_targets(settings)) == Counter({("pending", 0): 3})


def test_a_run_without_follow_waits_for_a_retry_whose_backoff_has_not_ended(tmp_path):
    """A 1h target read once, unsuccessfully, its retry due in seconds: the run saw nothing due now and
    ended at once ("done"), leaving the retry to a next run, by when its 15 minutes of slack may be gone.
    It opens its browser for it (here on a site where nothing listens: exit code 4 says it tried)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = Settings(data_dir=tmp_path / "data", base_url=base_url)
    posted = int(time.time()) - HOUR - 60
    with open_store(settings) as store, store.transaction() as session:
        session.execute(insert(Video), [{"id": "100", "create_time": posted}])
        session.add(TrackTarget(video_id="100", age_s=HOUR, due_at=posted + HOUR, attempts=1, retry_at=time.time() + 5))
    with pytest.raises(SiteUnreachable):
        track(settings, TrackOptions(ages="1h", **FAST))


class ContextsSeen:
    """A progress display that notes how many contexts ``browser`` holds at each of a stage's updates."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.counts: list[int] = []

    def update(self, counters: object) -> None:
        self.counts.append(len(self.browser.contexts))

    def used(self) -> bool:
        """Whether the stage opened its contexts in ``browser`` (and forgets, for the next stage)."""
        used, self.counts = max(self.counts, default=0) > 0, []
        return used


def test_the_crawl_and_the_tracking_run_on_the_browser_they_are_given_and_leave_it_open(tmp_path):
    """One browser the caller launched, shared by a crawl and the tracking after it: each stage's workers
    open their contexts in it, close them, and leave the browser open (it is the caller's). An opener is
    entered and left by the stage instead."""
    clock = VirtualClock(T0)
    config = ReplicaConfig(videos=80, seed=5, media=False, time_scale=1.0, time_origin=T0)
    lent: list[str] = []

    async def stages(settings: Settings) -> None:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=settings.resolved_browser_path())

            @contextlib.asynccontextmanager
            async def opener() -> AsyncIterator[Browser]:
                lent.append("entered")
                yield browser
                lent.append("left")

            seen = ContextsSeen(browser)
            tracking = TrackOptions(ages=WEEK_AGES, follow=True, until="3d", limit=3, **FAST)
            try:
                with open_store(settings) as store:
                    crawled = await crawl_async(
                        store,
                        settings,
                        CrawlOptions(seeds=5, fanout=3, max_videos=20, download=False, **FAST),
                        policy=TEST_POLICY,
                        progress=seen,
                        browser=browser,
                    )
                    assert crawled.status == "target_reached" and seen.used()
                    assert browser.is_connected() and browser.contexts == []
                    tracked = await track_async(
                        store, settings, tracking, clock=clock, policy=TEST_POLICY, progress=seen, browser=browser
                    )
                    assert tracked.status == "limit_reached" and tracked.observations == 3 and seen.used()
                    assert browser.is_connected() and browser.contexts == []
                    tracked = await track_async(
                        store, settings, tracking, clock=clock, policy=TEST_POLICY, progress=seen, browser=opener
                    )
                    assert tracked.status == "limit_reached" and seen.used() and lent == ["entered", "left"]
                page = await browser.new_page()  # still the caller's to use
                await page.goto(settings.base_url)
                await page.close()
            finally:
                await browser.close()

    with Replica(config, site_clock=clock) as replica:
        settings = Settings(
            db_url=f"sqlite:///{tmp_path / 'corpus.db'}", data_dir=tmp_path / "data", base_url=replica.base_url
        )
        upgrade_database(settings)
        asyncio.run(stages(settings))
