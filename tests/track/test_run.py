"""The tracker's loops (track/run.py) over scripted readers, without a browser: claims held through a
slow read and lost without a trace, the schedule refreshed under a backlog, unavailable answers checked
on the video page, and answers without counts never stored; and a run's pacing, seeded like a crawl's."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from playwright.async_api import Browser
from sqlalchemy import insert, select, update

from tests.waiting import until
from tiktok_corpus.clock import Clock, VirtualClock, clock_kind
from tiktok_corpus.errors import ConfigError, ContractError, ItemUnavailable, PersistentlyBlocked, SiteUnreachable
from tiktok_corpus.store.models import StatsSnapshot, TrackTarget, Video
from tiktok_corpus.store.tracking import claim_due
from tiktok_corpus.tiktok.blocks import BlockMonitor, BlockPolicy, Pacer
from tiktok_corpus.tiktok.contract import ItemAt, ItemRecord, StatsRecord
from tiktok_corpus.tiktok.site_methods import Answer
from tiktok_corpus.track import loops as track_loops
from tiktok_corpus.track import run as track_run
from tiktok_corpus.track.loops import Observe, Reader, Tracking
from tiktok_corpus.track.options import TrackCounters, TrackOptions

HOUR = 3_600
T0 = 1_790_000_000.0


def add_videos(store, created: dict[str, float]) -> None:
    with store.transaction() as session:
        session.execute(insert(Video), [{"id": vid, "create_time": int(at)} for vid, at in created.items()])


def targets(store) -> dict[tuple[str, int], TrackTarget]:
    with store.sessions() as session:
        return {(t.video_id, t.age_s): t for t in session.scalars(select(TrackTarget))}


def snapshots(store) -> list[StatsSnapshot]:
    with store.sessions() as session:
        return list(session.scalars(select(StatsSnapshot)))


def answer(video_id: str, plays: int, *, at: float | None = None, method: str = "fetch") -> Answer[ItemAt]:
    return Answer(ItemAt(ItemRecord(id=video_id, stats=StatsRecord(play_count=plays, exact=True)), at), method)


def deleted() -> ItemUnavailable:
    return ItemUnavailable("statusCode 10204 (deleted)", kind="deleted")


def reader(read: Observe, confirm: Observe | None = None) -> Reader:
    async def unused(video_id: str) -> Answer[ItemAt]:
        raise AssertionError(f"no page read expected for {video_id}")

    return Reader(read=read, confirm=confirm or unused)


def tracking(store, options: TrackOptions, clock: Clock, **kwargs) -> Tracking:
    return Tracking(store, options, clock=clock, progress=None, monitor=BlockMonitor(BlockPolicy()), **kwargs)


async def run(tracker: Tracking, readers: dict[str, Reader]) -> str:
    await tracker.schedule()
    try:
        return await tracker.run(readers)
    finally:
        tracker.close()


def test_a_slow_read_keeps_its_claim_so_no_other_tracker_reads_the_video_too(store):
    """A read under blocks retries for minutes, longer than a lease: renewed, the claim is never taken
    over, so the video is read and stored once."""
    add_videos(store, {"1": T0 - HOUR})
    options = TrackOptions(ages="1h", lease_s=3.0)  # renewed every second: a busy database may be late
    clock = VirtualClock(T0)
    reads: list[str] = []
    second_done = asyncio.Event()

    async def slow(video_id: str) -> Answer[ItemAt]:
        reads.append(video_id)
        await asyncio.wait_for(second_done.wait(), 120)  # the read outlasts the other tracker's whole run
        return answer(video_id, 100)

    def lease_until() -> datetime:
        until = targets(store)["1", HOUR].lease_until
        assert until is not None
        return until if until.tzinfo else until.replace(tzinfo=UTC)  # SQLite gives it back naive

    def renewed_past(first_lease: datetime) -> bool:
        # wall time itself is what lapses a lease: the first one has run out, and a renewal holds
        return datetime.now(UTC) > first_lease and lease_until() > first_lease

    async def both() -> list[str]:
        first = asyncio.ensure_future(run(tracking(store, options, clock), {"t0": reader(slow)}))
        while not reads:
            await asyncio.sleep(0)  # until the first tracker holds the claim and reads
        first_lease = lease_until()
        await until(lambda: renewed_past(first_lease), "the first lease lapsed and a renewal holding")
        second = await run(tracking(store, options, clock), {"t1": reader(slow)})
        second_done.set()
        return [await first, second]

    assert asyncio.run(both()) == ["done", "done"]
    assert reads == ["1"]
    [snapshot] = snapshots(store)
    assert targets(store)["1", HOUR].snapshot_id == snapshot.id


def test_each_loop_claims_as_a_worker_of_its_own(store):
    add_videos(store, {"1": T0 - HOUR, "2": T0 - HOUR})
    reading: set[str] = set()
    both_reading = asyncio.Event()

    async def read(video_id: str) -> Answer[ItemAt]:
        reading.add(video_id)
        if len(reading) == 2:
            both_reading.set()
        await asyncio.wait_for(both_reading.wait(), 30)  # both loops hold a claim at once
        return answer(video_id, 100)

    tracker = tracking(store, TrackOptions(ages="1h", in_flight=2), VirtualClock(T0))
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == "done"
    workers = {t.worker for t in targets(store).values()}
    assert len(workers) == 2 and {worker.rsplit(":", 1)[1] for worker in workers} == {"t0.0", "t0.1"}


def test_a_claim_lost_mid_read_writes_nothing_and_the_run_goes_on(store):
    add_videos(store, {"1": T0 - HOUR, "2": T0 - HOUR})
    clock = VirtualClock(T0)

    async def read(video_id: str) -> Answer[ItemAt]:
        if video_id == "1":  # the lease lapses (a stalled process) and another tracker takes the claim
            with store.transaction() as session:
                session.execute(
                    update(TrackTarget)
                    .where(TrackTarget.video_id == "1")
                    .values(lease_until=datetime(2000, 1, 1, tzinfo=UTC))
                )
            [taken] = claim_due(store, 1, now=clock(), worker="elsewhere:1:t0", lease_s=60, late_fraction=0.25)
            assert taken.video_id == "1"
        return answer(video_id, 100)

    tracker = tracking(store, TrackOptions(ages="1h", in_flight=1), clock)
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == "done"
    settled = targets(store)
    assert (settled["1", HOUR].status, settled["1", HOUR].worker) == ("claimed", "elsewhere:1:t0")
    assert settled["2", HOUR].status == "observed"
    assert [s.video_id for s in snapshots(store)] == ["2"]
    assert tracker.counters.errors == Counter(claim_lost=1) and tracker.counters.observations == 1


def test_videos_a_crawl_adds_during_a_backlog_get_their_early_ages(store):
    """Every loop busy, none idle: the schedule is refreshed on the wall clock all the same, so a video
    found 20 s after posting still gets its 1m target, taken before the backlog's overdue ones."""
    add_videos(store, {str(1000 + i): T0 - 60 for i in range(30)})  # a backlog: 30 videos due now
    clock, wall = VirtualClock(T0), VirtualClock(0)

    async def read(video_id: str) -> Answer[ItemAt]:
        clock.advance_to(clock() + 10)  # each read takes 10 s of the site's time, 1 s of this process's
        wall.advance_to(wall() + 1)
        if len(read_ids) == 2:  # meanwhile a crawl finds a video posted 20 s ago
            add_videos(store, {"1": clock() - 20})
        read_ids.append(video_id)
        return answer(video_id, 100, at=clock())

    read_ids: list[str] = []
    tracker = tracking(store, TrackOptions(ages="1m,10m", in_flight=1), clock, wall=wall)
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == "done"
    new = targets(store)["1", 60]
    assert new.status == "observed" and new.observed_age_s <= 120
    assert read_ids.index("1") < len(read_ids) - 1, "the new video waited for the whole backlog"


def test_a_following_run_takes_back_at_once_the_claims_of_a_tracker_killed_after_it_started(store):
    """Another tracker holds a claim when it is killed (kill -9, a lost container): a run already going
    took back the dead worker's claims only at its start, and waited out the lease (two minutes) for one
    made later."""
    add_videos(store, {"1": T0 - HOUR, "2": T0 - HOUR})
    clock, wall = VirtualClock(T0), VirtualClock(0)
    dead = f"{socket.gethostname()}:999999999:t0"  # no such process on this host
    taken_by_dead: list[str] = []

    async def read(video_id: str) -> Answer[ItemAt]:
        if not taken_by_dead:  # the other tracker claims the video left, then dies
            claimed = claim_due(store, 5, now=clock(), worker=dead, lease_s=120, late_fraction=0.25)
            taken_by_dead.extend(due.video_id for due in claimed)
        wall.advance_to(wall() + 6)  # past the schedule's refresh
        return answer(video_id, 100, at=clock())

    options = TrackOptions(ages="1h", in_flight=1, follow=True, until="2h")
    tracker = tracking(store, options, clock, wall=wall)
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == "until_reached"
    assert len(taken_by_dead) == 1
    assert {key: t.status for key, t in targets(store).items()} == {("1", HOUR): "observed", ("2", HOUR): "observed"}


def test_an_unavailable_answer_is_checked_on_the_video_page_before_the_schedule_stops(store):
    """10204 also answers region and IP blocks: the video page decides."""
    add_videos(store, {"1": T0 - HOUR, "2": T0 - HOUR})
    page_reads: list[str] = []

    async def read(video_id: str) -> Answer[ItemAt]:
        raise deleted()

    async def page(video_id: str) -> Answer[ItemAt]:
        page_reads.append(video_id)
        if video_id == "2":
            raise deleted()
        return answer(video_id, 100, method="page")

    tracker = tracking(store, TrackOptions(ages="1h,1d"), VirtualClock(T0))
    assert asyncio.run(run(tracker, {"t0": reader(read, page)})) == "done"
    settled = {key: (t.status, t.error_kind) for key, t in targets(store).items()}
    assert settled == {
        ("1", HOUR): ("observed", None),
        ("1", 24 * HOUR): ("pending", None),
        ("2", HOUR): ("gone", "deleted"),
        ("2", 24 * HOUR): ("gone", "deleted"),
    }
    assert page_reads == ["1", "2"] and tracker.counters.methods == Counter(page=1)
    # The page has no site time of its own: the moment is the tracker's clock, here the site's (virtual).
    assert [(s.video_id, s.clock) for s in snapshots(store)] == [("1", "site")]
    assert clock_kind(time.time) == "local"  # tiktok.com's tracker: this machine's clock


def test_a_run_of_unavailable_answers_is_a_block_that_leaves_the_schedules_pending(store):
    """A region block answers 10204 for every video, page included: after the policy's ``unavailable_run``
    videos in a row the answers count as blocks, the schedules stopped by the first ones resume, and
    persistent blocking stops the run."""
    add_videos(store, {str(i): T0 - HOUR for i in range(1, 41)})
    options = TrackOptions(ages="1h,1d", in_flight=1)

    async def read(video_id: str) -> Answer[ItemAt]:
        raise deleted()

    tracker = tracking(store, options, VirtualClock(T0))
    with pytest.raises(PersistentlyBlocked):
        asyncio.run(run(tracker, {"t0": reader(read, read)}))
    statuses = Counter(t.status for t in targets(store).values())
    assert statuses == Counter(pending=2 * 40)  # the first answers, believed at first, were the block's too
    doubted = [t for t in targets(store).values() if t.error_kind == "unavailable_run"]
    assert len(doubted) == 2 * BlockPolicy().unavailable_run
    assert tracker.monitor.total == BlockPolicy().give_up_after_blocks


def test_the_gone_count_set_back_by_a_block_is_the_count_this_run_made(store, monkeypatch):
    """One loop records a video gone while another judges the run a block and sets it back: the count is
    then 0, as the schedules are pending again. The count read before the set back's wait lost the first
    loop's record, and the summary said gone -2."""
    add_videos(store, {str(i): T0 - HOUR for i in range(1, 3)})
    monitor = BlockMonitor(BlockPolicy(unavailable_run=1))
    tracker = Tracking(
        store, TrackOptions(ages="1h,1d", in_flight=2), clock=VirtualClock(T0), progress=None, monitor=monitor
    )
    record_started, doubt_taken = threading.Event(), threading.Event()
    real_record_gone, real_take_doubted = track_loops.record_gone, monitor.take_doubted

    def record_gone(*args, **kwargs) -> int:  # on the database thread: held until the other loop doubts
        record_started.set()
        assert doubt_taken.wait(10), "the second loop never judged the block"
        return real_record_gone(*args, **kwargs)

    def take_doubted() -> list[str]:
        doubted = real_take_doubted()
        if doubted:
            doubt_taken.set()
        return doubted

    monkeypatch.setattr(track_loops, "record_gone", record_gone)
    monkeypatch.setattr(monitor, "take_doubted", take_doubted)
    reads = 0

    async def read(video_id: str) -> Answer[ItemAt]:
        nonlocal reads
        reads += 1
        if reads == 2:  # the second loop's answer comes while the first loop's record is being written
            assert await asyncio.to_thread(record_started.wait, 10), "the first loop never recorded its video gone"
        raise deleted()

    async def confirm(video_id: str) -> Answer[ItemAt]:
        raise deleted()

    with pytest.raises(PersistentlyBlocked):
        asyncio.run(run(tracker, {"t0": reader(read, confirm)}))
    assert Counter(t.status for t in targets(store).values()) == Counter(pending=4)
    assert tracker.counters.outcomes["gone"] == 0


def test_a_video_whose_page_still_loads_when_the_block_is_judged_stays_pending(store):
    """With several loops, a video believed unavailable may still be loading its page when later answers
    prove the run a block: set back with the others, its page's answer must not stop its schedule after."""
    add_videos(store, {str(i): T0 - HOUR for i in range(1, 41)})
    tracker = tracking(store, TrackOptions(ages="1h,1d", in_flight=2), VirtualClock(T0))
    first_page_done = asyncio.Event()

    async def read(video_id: str) -> Answer[ItemAt]:
        if tracker.monitor.total:  # the block is judged: the rest wait for the first video's page
            await first_page_done.wait()
        raise deleted()

    async def page(video_id: str) -> Answer[ItemAt]:
        if video_id == "1":
            try:
                await until(lambda: tracker.monitor.total > 0, "the run of unavailable answers judged a block")
            finally:
                first_page_done.set()
        raise deleted()

    with pytest.raises(PersistentlyBlocked):
        asyncio.run(run(tracker, {"t0": reader(read, page)}))
    assert Counter(t.status for t in targets(store).values()) == Counter(pending=2 * 40)
    assert tracker.counters.outcomes["gone"] == 0  # those set back are no longer counted


def test_a_deleted_video_set_back_with_a_block_is_found_gone_once_the_block_is_over(store):
    """Set back for the block's sake, a video that really is deleted must be stopped by its next reads:
    kept doubted for good, it was given back after every one, and its answers alone then made a run of
    unavailable answers that stopped the tracker as persistently blocked."""
    add_videos(store, {str(i): T0 - HOUR for i in range(1, 9)})
    tracker = tracking(store, TrackOptions(ages="1h", in_flight=1), VirtualClock(T0))

    async def read(video_id: str) -> Answer[ItemAt]:
        if video_id == "5" or not tracker.monitor.total:  # a block until it is judged; 5 is deleted
            raise deleted()
        return answer(video_id, 100)

    assert asyncio.run(run(tracker, {"t0": reader(read, read)})) == "done"
    statuses = {video_id: t.status for (video_id, _), t in targets(store).items()}
    assert statuses == {**{str(i): "observed" for i in range(1, 9)}, "5": "gone"}


def test_an_outage_stops_the_run_and_spends_no_video_s_tries(store):
    """The site stops answering (the network is down): after the policy's ``give_up_after_unreachable``
    reads in a row with no answer the run stops as unreachable, before it fails a video for it; nothing
    is left claimed, and the read in hand when it stopped costs its video no try."""
    add_videos(store, {str(i): T0 - HOUR for i in range(1, 21)})
    reads: list[str] = []

    async def read(video_id: str) -> Answer[ItemAt]:
        reads.append(video_id)
        raise ContractError("page.goto: net::ERR_CONNECTION_REFUSED", kind="browser_error")

    tracker = tracking(store, TrackOptions(ages="1h", in_flight=1), VirtualClock(T0))
    with pytest.raises(SiteUnreachable, match="did not answer the last 8 requests"):
        asyncio.run(run(tracker, {"t0": reader(read)}))
    unanswered = BlockPolicy().give_up_after_unreachable
    assert len(reads) == unanswered
    assert Counter(t.status for t in targets(store).values()) == Counter(pending=20), "none failed or claimed"
    assert sorted(t.attempts for t in targets(store).values()) == [0] * (21 - unanswered) + [1] * (unanswered - 1)


def test_a_claim_committing_when_the_run_is_cancelled_goes_back(store, monkeypatch):
    """Ctrl-C (or another loop's outage) cancels a loop while its claim commits on the database thread:
    the claim is in hand from the claim's own call, so close() gives it back, not a later run's lease."""
    add_videos(store, {"1": T0 - HOUR})
    claiming, cancelled = threading.Event(), threading.Event()

    def held_claim(*args, **kwargs):
        claiming.set()
        assert cancelled.wait(30), "the run was not cancelled"
        return claim_due(*args, **kwargs)

    async def read(video_id: str) -> Answer[ItemAt]:
        raise AssertionError(f"a cancelled run read {video_id}")

    monkeypatch.setattr(track_loops, "claim_due", held_claim)
    tracker = tracking(store, TrackOptions(ages="1h", in_flight=1), VirtualClock(T0))

    async def cancelled_mid_claim() -> None:
        running = asyncio.ensure_future(run(tracker, {"t0": reader(read)}))
        await until(claiming.is_set, "a claim on the database thread")
        running.cancel()
        cancelled.set()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    asyncio.run(cancelled_mid_claim())
    assert [(t.status, t.attempts) for t in targets(store).values()] == [("pending", 0)], "given back untried"


def test_a_run_without_follow_waits_for_the_retry_of_a_read_still_running_when_the_rest_was_done(store, monkeypatch):
    """Two loops: one finds nothing left to claim while the other's read is still running, and then
    fails; the run waits for that read, then for its retry's backoff, instead of ending without it."""
    add_videos(store, {"1": T0 - HOUR, "2": T0 - HOUR})
    found_nothing = threading.Event()
    real_claim = track_loops.claim_due

    def claim_due(*args, **kwargs):
        claimed = real_claim(*args, **kwargs)
        if not claimed:
            found_nothing.set()
        return claimed

    monkeypatch.setattr(track_loops, "claim_due", claim_due)
    reads: list[str] = []

    async def read(video_id: str) -> Answer[ItemAt]:
        reads.append(video_id)
        if video_id == "2" and reads.count("2") == 1:
            await until(found_nothing.is_set, "the other loop to find nothing to claim")
            raise ContractError("page.goto: Timeout 30000ms exceeded", kind="timeout")
        return answer(video_id, 100)

    tracker = tracking(store, TrackOptions(ages="1h", in_flight=2), VirtualClock(T0))
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == "done"
    assert sorted(reads) == ["1", "2", "2"]
    assert {video: target.status for (video, _), target in targets(store).items()} == {"1": "observed", "2": "observed"}


@pytest.mark.parametrize(("limit", "due", "stop"), [(1, 10, "limit_reached"), (3, 10, "limit_reached"), (5, 2, "done")])
def test_a_limit_is_never_exceeded_by_loops_claiming_at_once(store, limit, due, stop):
    """--limit with the default 4 loops: each loop holds its observation from before its claim, so no more
    are claimed (or read) than the limit allows; a limit above what is due still ends when nothing is."""
    add_videos(store, {str(i): T0 - HOUR for i in range(1, due + 1)})
    reads: list[str] = []

    async def read(video_id: str) -> Answer[ItemAt]:
        reads.append(video_id)
        return answer(video_id, 100)

    tracker = tracking(store, TrackOptions(ages="1h", limit=limit), VirtualClock(T0))
    assert tracker.options.in_flight == 4
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == stop
    observed = min(limit, due)
    assert len(reads) == tracker.counters.observations == len(snapshots(store)) == observed
    assert Counter(t.status for t in targets(store).values()) == Counter(observed=observed, pending=due - observed)


def test_a_failed_read_gives_back_its_place_under_the_limit(store):
    """The first read fails: the observation it held is claimed again, and the run still makes exactly
    --limit observations."""
    add_videos(store, {str(i): T0 - HOUR for i in range(1, 7)})
    reads: list[str] = []

    async def read(video_id: str) -> Answer[ItemAt]:
        reads.append(video_id)
        if len(reads) == 1:
            raise ContractError("HTTP 503 from /api/item/detail/", kind="http_503")
        return answer(video_id, 100)

    tracker = tracking(store, TrackOptions(ages="1h", limit=2), VirtualClock(T0))
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == "limit_reached"
    assert len(reads) == 3 and tracker.counters.observations == len(snapshots(store)) == 2
    assert tracker.counters.errors == Counter(http_503=1)


class Updates:
    """A live display that keeps a copy of every update."""

    def __init__(self) -> None:
        self.seen: list[TrackCounters] = []

    def update(self, counters: TrackCounters) -> None:
        self.seen.append(copy.deepcopy(counters))


def test_the_last_live_update_is_the_runs_final_count(store):
    """Updates are throttled on the wall clock (here still): the display's last one is all the same the
    run's final count, the one its summary reports, not a count from its first moments."""
    add_videos(store, {str(i): T0 - HOUR for i in range(1, 8)})

    async def read(video_id: str) -> Answer[ItemAt]:
        return answer(video_id, 100)

    updates = Updates()
    monitor = BlockMonitor(BlockPolicy())
    tracker = Tracking(
        store,
        TrackOptions(ages="1h"),
        clock=VirtualClock(T0),
        progress=updates,
        monitor=monitor,
        wall=VirtualClock(100),
    )
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == "done"
    assert updates.seen[0].observations == 0, "the first update came before any observation"
    last = updates.seen[-1]
    assert last == tracker.counters and last.observations == 7
    assert (last.outcomes, last.methods, last.next_due_in_s) == (Counter(observed=7), Counter(fetch=7), None)


@pytest.mark.parametrize(
    "stats",
    [None, StatsRecord(exact=True), StatsRecord(like_count=40, comment_count=3, exact=True)],
    ids=["no stats", "stats without counts", "counts without plays"],
)
def test_an_answer_without_plays_is_retried_then_failed_never_stored(store, stats):
    """An export places no snapshot without plays at an age: stored, it would settle the targets as
    observed and the ages would be lost."""
    add_videos(store, {"1": T0 - HOUR})
    reads: list[str] = []

    async def read(video_id: str) -> Answer[ItemAt]:
        reads.append(video_id)
        return Answer(ItemAt(ItemRecord(id=video_id, stats=stats), T0), "fetch")

    tracker = tracking(store, TrackOptions(ages="1h", max_attempts=3, in_flight=1), VirtualClock(T0))
    assert asyncio.run(run(tracker, {"t0": reader(read)})) == "done"
    target = targets(store)["1", HOUR]
    assert (target.status, target.error_kind, target.attempts) == ("failed", "no_stats", 3)
    assert reads == ["1"] * 3 and snapshots(store) == []


def test_runs_with_the_same_seed_pace_with_the_same_delays(store, settings, monkeypatch):
    """No RNG given, the pacing jitter draws from the options' seed: a run is repeatable; without one,
    each run draws its own (trackers sharing a database must not pace in step)."""
    pacers: list[Pacer] = []

    class Recorded(Pacer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            pacers.append(self)

    monkeypatch.setattr(track_run, "Pacer", Recorded)

    def delays(options: TrackOptions) -> list[float]:
        pacers.clear()
        asyncio.run(track_run.track_async(store, settings, options))  # nothing is due: no browser either
        (pacer,) = pacers
        return [pacer.jittered_delay() for _ in range(5)]

    seeded = delays(TrackOptions(seed=7))
    assert len(set(seeded)) == 5, "the delays are jittered"
    assert delays(TrackOptions(seed=7)) == seeded != delays(TrackOptions(seed=8))
    assert delays(TrackOptions()) != delays(TrackOptions())


def test_a_run_with_nothing_due_opens_no_browser(store, settings):
    def opener() -> contextlib.AbstractAsyncContextManager[Browser]:
        raise AssertionError("a browser was opened with nothing to observe")

    summary = asyncio.run(track_run.track_async(store, settings, TrackOptions(), browser=opener))
    assert (summary.status, summary.observations) == ("done", 0)
    assert summary.message == (
        "nothing to track: no video of the corpus has a posting time to count its ages from (crawl first)"
    )


def test_a_run_over_videos_older_than_every_age_says_why_it_found_nothing(store, settings):
    """A corpus crawled long ago, or a replica without a clock: "0 newly scheduled" and an empty queue,
    without a word of why. A video found gone counts no more than its schedule does."""
    add_videos(store, {"old": T0 - 32 * 24 * HOUR, "older": T0 - 40 * 24 * HOUR, "gone": T0 - HOUR})
    with store.transaction() as session:
        session.execute(insert(TrackTarget), [{"video_id": "gone", "age_s": HOUR, "due_at": T0, "status": "gone"}])

    summary = asyncio.run(track_run.track_async(store, settings, TrackOptions(), clock=lambda: T0))

    assert (summary.status, summary.scheduled, summary.observations) == ("done", 0, 0)
    assert summary.message == (
        "nothing to track: the newest of the corpus's 2 videos was posted 32d ago on the site's clock, past the "
        "last age asked for (30d); tracking follows videos crawled soon after their posting (or give --ages up to "
        "their age)"
    )
    later = asyncio.run(track_run.track_async(store, settings, TrackOptions(ages="1h,60d"), clock=lambda: T0))
    assert later.scheduled == 2 and later.message is None  # due in 28 and 20 days


def test_a_browser_that_cannot_start_stops_the_run_with_its_error_and_closes_it(store, settings):
    """The launch's own error reaches the caller, and the run's database thread is stopped all the same."""
    add_videos(store, {"1": T0 - HOUR - 60})  # its first age fell due a minute ago

    def opener() -> contextlib.AbstractAsyncContextManager[Browser]:
        raise ConfigError("Chromium could not start (/bin/false)")

    with pytest.raises(ConfigError, match="could not start"):
        asyncio.run(track_run.track_async(store, settings, TrackOptions(), clock=lambda: T0, browser=opener))
    assert [t.name for t in threading.enumerate() if t.name.startswith("track-db")] == []
