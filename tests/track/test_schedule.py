"""The tracking schedule as a queue (store/tracking.py) on SQLite and Postgres: which targets get
scheduled, claims, and how an observation, a deletion, a failure or a stop settles them."""

from __future__ import annotations

import random
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, insert, select, update

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import make_engine, open_store, upgrade
from tiktok_corpus.store.models import AuthorSnapshot, StatsSnapshot, TrackTarget, Video
from tiktok_corpus.store.tracking import (
    allowed_lateness_s,
    claim_due,
    next_due_at,
    reclaim_dead_targets,
    record_failure,
    record_gone,
    record_observation,
    release_targets,
    renew_claim,
    schedule_targets,
    tracking_counts,
)
from tiktok_corpus.tiktok.contract import AuthorRecord, ItemRecord, StatsRecord
from tiktok_corpus.track.options import TrackOptions

HOUR, DAY = 3_600, 86_400
T0 = 1_790_000_000  # "now" on the site's clock at the start of each test
AGES = (HOUR, 6 * HOUR, DAY)
WORKER = "testhost:1:t0"


def migrated_store(url: str):
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return open_store(Settings(db_url=url))


def add_videos(store, ages_now_s: dict[str, int | None], **columns) -> None:
    """Videos by id, each posted ``age`` seconds before T0 (None: no createTime)."""
    rows = [{"id": vid, "create_time": None if age is None else T0 - age, **columns} for vid, age in ages_now_s.items()]
    with store.transaction() as session:
        session.execute(insert(Video), rows)


def targets(store) -> dict[tuple[str, int], tuple]:
    with store.sessions() as session:
        rows = session.execute(
            select(TrackTarget.video_id, TrackTarget.age_s, TrackTarget.status, TrackTarget.due_at)
        ).all()
    return {(vid, age): (status, due) for vid, age, status, due in rows}


def failed_at(now: float) -> dict:
    """record_failure's retry terms for a try failed at ``now``: three tries, the tracker's backoff."""
    return {"max_attempts": 3, "now": now, "retry_after_s": TrackOptions().retry_after}


def item(video_id: str, plays: int, *, author: AuthorRecord | None = None) -> ItemRecord:
    return ItemRecord(
        id=video_id, stats=StatsRecord(play_count=plays, like_count=plays // 10, exact=True), author=author
    )


def test_only_the_ages_still_ahead_are_scheduled_and_only_once(any_db_url):
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0, "2": 2 * HOUR, "3": 3 * DAY, "4": None})
        add_videos(store, {"5": 0}, item_kind="ad")
        add_videos(store, {"6": 0}, status_code=10204)
        assert schedule_targets(store, AGES, now=T0, late_fraction=0.25) == 3 + 2
        scheduled = targets(store)
        # Video 2 is 2h old: 1h is behind it (past its 15 min lateness), 6h and 1d ahead; video 3 is too old.
        assert set(scheduled) == {("1", HOUR), ("1", 6 * HOUR), ("1", DAY), ("2", 6 * HOUR), ("2", DAY)}
        assert scheduled["2", DAY] == ("pending", T0 - 2 * HOUR + DAY)
        assert schedule_targets(store, AGES, now=T0, late_fraction=0.25) == 0
        # A new age asked later is added to the videos for which it is still ahead (video 3 is 3 days old: due now).
        assert schedule_targets(store, (3 * DAY,), now=T0, late_fraction=0.25) == 3


def test_a_claim_takes_every_due_target_of_a_video_and_one_observation_settles_them(any_db_url):
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0, "2": 0})
        schedule_targets(store, AGES, now=T0, late_fraction=0.25)
        assert claim_due(store, 5, now=T0 + HOUR - 1, worker=WORKER, lease_s=60, late_fraction=0.25) == []
        assert next_due_at(store) == T0 + HOUR
        # The tracker was away: at 7h both the 1h and the 6h targets of each video are due.
        now = T0 + 7 * HOUR
        claimed = claim_due(store, 1, now=now, worker=WORKER, lease_s=60, late_fraction=0.25)
        assert [(due.video_id, due.ages_s) for due in claimed] == [("1", (HOUR, 6 * HOUR))]
        author = AuthorRecord(id="a1", follower_count=10, heart_count=99)
        outcomes = record_observation(
            store,
            claimed[0],
            item("1", 500, author=author),
            captured_at=now,
            clock="site",
            worker=WORKER,
            late_fraction=0.25,
        )
        # 6 hours late for the 1h target (allowed: 15 min): missed; one hour late for 6h (allowed 1.5h): observed.
        assert outcomes == {"missed": 1, "observed": 1}
        with store.sessions() as session:
            snapshot = session.execute(select(StatsSnapshot)).scalar_one()
            author_row = session.execute(select(AuthorSnapshot)).scalar_one()
            settled = session.execute(select(TrackTarget).where(TrackTarget.video_id == "1")).scalars().all()
        assert (snapshot.play_count, snapshot.source, snapshot.clock, snapshot.age_s) == (
            500,
            "track",
            "site",
            7 * HOUR,
        )
        assert (author_row.author_id, author_row.follower_count, author_row.video_id) == ("a1", 10, "1")
        by_age = {row.age_s: row for row in settled}
        assert by_age[HOUR].status == "missed" and by_age[6 * HOUR].status == "observed"
        assert by_age[6 * HOUR].snapshot_id == snapshot.id and by_age[6 * HOUR].observed_age_s == 7 * HOUR
        assert by_age[DAY].status == "pending"
        counts = tracking_counts(store, now=now)
        assert (counts["due_now"], counts["due_later"], counts["observed"], counts["missed"]) == (2, 2, 1, 1)


def test_a_deleted_video_stops_its_schedule(any_db_url):
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0})
        schedule_targets(store, AGES, now=T0, late_fraction=0.25)
        [due] = claim_due(store, 1, now=T0 + HOUR, worker=WORKER, lease_s=60, late_fraction=0.25)
        found = T0 + HOUR + 5
        assert record_gone(store, due, worker=WORKER, kind="deleted", message="10204 (deleted)", now=found) == 3
        assert {status for status, _ in targets(store).values()} == {"gone"}
        with store.sessions() as session:  # the age it was found gone at, on the site's clock: an export's date
            assert set(session.scalars(select(TrackTarget.observed_age_s))) == {HOUR + 5}
        assert claim_due(store, 1, now=T0 + 2 * DAY, worker=WORKER, lease_s=60, late_fraction=0.25) == []
        # A later run with more ages schedules none of them for it: each would cost two reads of a gone post.
        assert schedule_targets(store, (*AGES, 3 * DAY), now=T0 + HOUR, late_fraction=0.25) == 0
        assert {status for status, _ in targets(store).values()} == {"gone"}


def test_failures_wait_out_a_doubling_backoff_then_are_recorded_with_their_reason(any_db_url):
    """A failed try is not claimed again at once (a video whose reads time out would spend its tries in
    seconds): it waits 30 s of the site's clock, then 60 s, and the schedule says when it is due."""
    backoff = TrackOptions().retry_after
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0})
        schedule_targets(store, (HOUR,), now=T0, late_fraction=0.25)
        now, statuses = T0 + HOUR, []
        for tries in range(1, 4):
            [due] = claim_due(store, 1, now=now, worker=WORKER, lease_s=60, late_fraction=0.25)
            statuses.append(
                record_failure(store, due, worker=WORKER, kind="malformed_json", message="not JSON", **failed_at(now))
            )
            if tries < 3:
                wait = backoff(tries)
                assert claim_due(store, 1, now=now + wait - 1, worker=WORKER, lease_s=60, late_fraction=0.25) == []
                assert next_due_at(store) == now + wait
                assert tracking_counts(store, now=now + wait - 1)["due_later"] == 1
                now += wait
        assert [backoff(1), backoff(2)] == [30, 60]
        assert statuses == [{"pending": 1}, {"pending": 1}, {"failed": 1}]
        with store.sessions() as session:
            row = session.execute(select(TrackTarget)).scalar_one()
        assert (row.status, row.attempts, row.error_kind, row.error) == ("failed", 3, "malformed_json", "not JSON")
        assert next_due_at(store) is None


def test_a_claim_lapsed_on_another_machine_is_due_so_a_one_shot_run_takes_it(any_db_url):
    """A tracker killed on another host leaves its claim until the lease lapses; a run that finds nothing
    else must still see it due (it skipped the browser, and the age could be missed by the next run)."""
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0})
        schedule_targets(store, (HOUR,), now=T0, late_fraction=0.25)
        now = T0 + HOUR
        claim_due(store, 1, now=now, worker="otherhost:9:t0", lease_s=3600, late_fraction=0.25)
        assert next_due_at(store) is None  # held by a live claim: nothing for this run
        with store.transaction() as session:
            session.execute(update(TrackTarget).values(lease_until=datetime(2000, 1, 1, tzinfo=UTC)))

        assert next_due_at(store) == T0 + HOUR <= now
        taken = claim_due(store, 1, now=now, worker=WORKER, lease_s=60, late_fraction=0.25)
        assert [due.video_id for due in taken] == ["1"]


def test_an_age_claimed_beside_a_retry_worn_one_keeps_its_own_tries(any_db_url):
    """A backlog claims a video's overdue 1h target with its 6h one: a failure then ends the 1h target,
    worn by its earlier tries, but the 6h target had one try of the three it may have."""
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0})
        schedule_targets(store, (HOUR, 6 * HOUR), now=T0, late_fraction=0.25)
        for minute in range(2):
            now = T0 + HOUR + 60 * minute  # after the first try's backoff
            [due] = claim_due(store, 1, now=now, worker=WORKER, lease_s=60, late_fraction=0.25)
            assert record_failure(store, due, worker=WORKER, kind="timeout", message="slow", **failed_at(now))
        [both] = claim_due(store, 1, now=T0 + 6 * HOUR, worker=WORKER, lease_s=60, late_fraction=0.25)
        assert both.ages_s == (HOUR, 6 * HOUR)

        settled = record_failure(store, both, worker=WORKER, kind="timeout", message="slow", **failed_at(T0 + 6 * HOUR))

        assert settled == {"pending": 1, "failed": 1}
        with store.sessions() as session:
            rows = session.execute(select(TrackTarget.age_s, TrackTarget.status, TrackTarget.attempts)).all()
        assert sorted(rows) == [(HOUR, "failed", 3), (6 * HOUR, "pending", 1)]


def test_released_and_dead_workers_claims_come_back_but_a_live_claim_is_never_shared(any_db_url):
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0, "2": 0})
        schedule_targets(store, (HOUR,), now=T0, late_fraction=0.25)
        now = T0 + HOUR
        first = claim_due(store, 1, now=now, worker=WORKER, lease_s=60, late_fraction=0.25)
        second = claim_due(store, 5, now=now, worker="testhost:2:t0", lease_s=60, late_fraction=0.25)
        assert [d.video_id for d in first] == ["1"] and [d.video_id for d in second] == ["2"]
        release_targets(store, first, worker=WORKER)
        dead = f"{socket.gethostname()}:999999999:t0"  # no such pid
        assert [d.video_id for d in claim_due(store, 5, now=now, worker=dead, lease_s=60, late_fraction=0.25)] == ["1"]
        assert reclaim_dead_targets(store) == 1
        [again] = claim_due(store, 5, now=now, worker=WORKER, lease_s=60, late_fraction=0.25)
        assert again.video_id == "1"
        with store.sessions() as session:
            attempts = session.scalar(select(TrackTarget.attempts).where(TrackTarget.video_id == "1"))
        assert attempts == 2  # the released claim gave its attempt back; the dead one's counted


def test_a_dead_workers_claims_are_taken_back_on_its_host_alone(any_db_url, monkeypatch):
    """This host's name went into a LIKE, where its ``_`` matches any character (and SQLite ignores case):
    web_1 took back the live claims of web-1 and WEB_1, whose pids it could not see."""
    monkeypatch.setattr(socket, "gethostname", lambda: "web_1")
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0, "2": 0, "3": 0})
        schedule_targets(store, (HOUR,), now=T0, late_fraction=0.25)
        for worker in ("web-1:999999999:t0", "WEB_1:999999999:t0", "web_1:999999999:t0"):  # videos 1, 2, 3
            claim_due(store, 1, now=T0 + HOUR, worker=worker, lease_s=600, late_fraction=0.25)
        assert reclaim_dead_targets(store) == 1  # web_1's own dead worker only
        with store.sessions() as session:
            claimed = session.scalars(select(TrackTarget.video_id).where(TrackTarget.status == "claimed")).all()
        assert sorted(claimed) == ["1", "2"]


def test_a_claim_lost_to_a_lapsed_lease_writes_nothing_and_its_new_holder_settles_it(any_db_url):
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0})
        schedule_targets(store, AGES, now=T0, late_fraction=0.25)
        now = T0 + HOUR
        [lapsed] = claim_due(store, 1, now=now, worker=WORKER, lease_s=-1, late_fraction=0.25)
        [taken] = claim_due(store, 1, now=now, worker="otherhost:1:t0", lease_s=60, late_fraction=0.25)
        assert taken == lapsed
        observe = {"captured_at": now, "clock": "site", "late_fraction": 0.25}
        assert not renew_claim(store, lapsed, worker=WORKER, lease_s=60)
        assert record_observation(store, lapsed, item("1", 500), worker=WORKER, **observe) == {}
        failed = failed_at(now) | {"max_attempts": 1}
        assert record_failure(store, lapsed, worker=WORKER, kind="timeout", message="slow", **failed) is None
        assert record_gone(store, lapsed, worker=WORKER, kind="deleted", message="10204", now=T0) == 0
        with store.sessions() as session:
            assert session.execute(select(StatsSnapshot)).first() is None
        assert targets(store)["1", HOUR][0] == "claimed"
        assert record_observation(store, taken, item("1", 600), worker="otherhost:1:t0", **observe) == {"observed": 1}
        with store.sessions() as session:
            assert session.scalars(select(StatsSnapshot.play_count)).all() == [600]


def test_a_renewed_claim_does_not_lapse(any_db_url):
    with migrated_store(any_db_url) as store:
        add_videos(store, {"1": 0})
        schedule_targets(store, (HOUR,), now=T0, late_fraction=0.25)
        [due] = claim_due(store, 1, now=T0 + HOUR, worker=WORKER, lease_s=-1, late_fraction=0.25)
        assert renew_claim(store, due, worker=WORKER, lease_s=60)
        assert claim_due(store, 1, now=T0 + HOUR, worker="otherhost:1:t0", lease_s=60, late_fraction=0.25) == []


def test_claims_go_by_deadline_and_targets_past_theirs_come_last(any_db_url):
    """A 7d target has 42 hours of slack, a 1h target 15 minutes: the 1h one goes first though due later;
    one already past its deadline would be missed anyway, so it waits for the ones still in time."""
    week_old, hour_target, overdue = "1", "2", "3"
    with migrated_store(any_db_url) as store:
        add_videos(store, {week_old: 7 * DAY, hour_target: HOUR - 60, overdue: HOUR + 1_000})
        schedule_targets(store, (HOUR, 7 * DAY), now=T0 - 2_000, late_fraction=0.25)
        due_by_then = {key: due_at for key, (_, due_at) in targets(store).items() if due_at <= T0 + 60}
        assert due_by_then == {(week_old, 7 * DAY): T0, (hour_target, HOUR): T0 + 60, (overdue, HOUR): T0 - 1_000}
        order = [
            claimed.video_id
            for _ in range(3)
            for claimed in claim_due(store, 1, now=T0 + 60, worker=WORKER, lease_s=60, late_fraction=0.25)
        ]
        assert order == [hour_target, week_old, overdue]


def test_claims_follow_the_deadline_order_over_every_due_target(any_db_url):
    """The claim reads a few rows per age from the age index; its order must be the one a sort of every
    claimable target gives: in time before overdue, soonest deadline first, lapsed claims among them."""
    rng = random.Random(7)
    ages = (HOUR, 6 * HOUR, DAY, 3 * DAY)
    now = T0 + 2 * DAY
    with migrated_store(any_db_url) as store:
        add_videos(store, {str(100 + n): rng.randrange(0, 3 * DAY) for n in range(60)})
        schedule_targets(store, ages, now=T0, late_fraction=0.25)
        lapsed = claim_due(store, 4, now=now, worker="otherhost:1:t0", lease_s=-1, late_fraction=0.25)
        assert len(lapsed) == 4

        lapsed_ids = {due.video_id for due in lapsed}

        def first_by_deadline() -> str | None:
            claimable = [
                (due_at + allowed_lateness_s(age, 0.25), vid)
                for (vid, age), (status, due_at) in targets(store).items()
                if (status == "pending" and due_at <= now) or (status == "claimed" and vid in lapsed_ids)
            ]
            return min(((deadline < now, deadline, vid) for deadline, vid in claimable), default=(0, 0, None))[2]

        claims = 0
        while (expected := first_by_deadline()) is not None:
            got = claim_due(store, 1, now=now, worker=WORKER, lease_s=60, late_fraction=0.25)
            assert [due.video_id for due in got] == [expected]
            lapsed_ids.discard(expected)
            claims += 1
        assert claims > 30 and claim_due(store, 1, now=now, worker=WORKER, lease_s=60, late_fraction=0.25) == []


def test_lateness_allowance():
    """A quarter of the age, at least a minute, at most a day: a 30d target observed 7 days late was
    "observed", though no export at 30d would read that sighting as the count at 30d."""
    assert allowed_lateness_s(HOUR, 0.25) == 900 and allowed_lateness_s(60, 0.25) == 60
    assert allowed_lateness_s(4 * 86_400, 0.25) == allowed_lateness_s(30 * 86_400, 0.25) == 86_400


@pytest.mark.postgres
def test_the_queue_counts_are_of_one_moment(pg_url):
    """Two statements, each its own snapshot on Postgres: a due target scheduled between them was counted
    due now but not pending, and ``due_later`` came out negative."""
    with migrated_store(pg_url) as store:
        add_videos(store, {"1": 0, "2": 2 * HOUR})
        schedule_targets(store, (HOUR,), now=T0, late_fraction=0.25)  # 1's 1h: 2 is past its 1h by then
        statements = 0

        @event.listens_for(store.engine, "after_cursor_execute")
        def schedule_between(conn, cursor, statement, parameters, context, executemany):
            nonlocal statements
            statements += 1
            if statements == 1:  # after the count per status, another process schedules a due target
                with store.transaction() as session:
                    session.execute(insert(TrackTarget).values(video_id="2", age_s=DAY, due_at=T0, status="pending"))

        counts = tracking_counts(store, now=T0 + HOUR)
        assert counts["due_later"] >= 0 and counts["due_now"] == 1, counts


@pytest.mark.postgres
def test_two_claims_of_one_videos_targets_never_deadlock(pg_url):
    """Two trackers that each locked one of a video's due targets (SKIP LOCKED hands them different
    rows) must not then wait on each other's rows: updating every due target of the video did, and
    Postgres killed one of them with "deadlock detected"."""
    with migrated_store(pg_url) as store:
        add_videos(store, {"1": 0})
        schedule_targets(store, AGES, now=T0, late_fraction=0.25)
        both_locked = threading.Barrier(2, timeout=20)
        waited: set[int] = set()

        @event.listens_for(store.engine, "after_cursor_execute")
        def hold_after_the_first_lock(conn, cursor, statement, parameters, context, executemany):
            if "FOR UPDATE" in statement and threading.get_ident() not in waited:
                waited.add(threading.get_ident())
                both_locked.wait()  # each claim holds its candidates now

        with ThreadPoolExecutor(2) as pool:
            claims = [
                pool.submit(
                    claim_due, store, 1, now=T0 + 7 * HOUR, worker=f"{WORKER}{i}", lease_s=60, late_fraction=0.25
                )
                for i in range(2)
            ]
            results = [claim.result(timeout=60) for claim in claims]
        event.remove(store.engine, "after_cursor_execute", hold_after_the_first_lock)
        taken = [due.ages_s for result in results for due in result]
        assert taken in ([], [(HOUR, 6 * HOUR)])  # never split: the video read once, by one of them
        if not taken:  # each held an age when the other looked: the next claim takes it whole
            [whole] = claim_due(store, 1, now=T0 + 7 * HOUR, worker=WORKER, lease_s=60, late_fraction=0.25)
            assert whole.ages_s == (HOUR, 6 * HOUR)


@pytest.mark.postgres
def test_a_video_one_of_whose_ages_another_claim_holds_is_left_for_a_claim_of_it_whole(pg_url):
    """Two claims at once could each lock one age of a video (their candidates) and claim the rest around
    the other's: the video was read twice at the same moment (31 of 400 videos in a two-process run)."""
    with migrated_store(pg_url) as store:
        add_videos(store, {"1": 0})
        schedule_targets(store, AGES, now=T0, late_fraction=0.25)
        claim = {"now": T0 + 7 * HOUR, "worker": WORKER, "lease_s": 60, "late_fraction": 0.25}
        with store.engine.connect() as another_claim:
            held = select(TrackTarget.age_s).where(TrackTarget.video_id == "1", TrackTarget.age_s == 6 * HOUR)
            another_claim.execute(held.with_for_update())
            assert claim_due(store, 1, **claim) == []
            another_claim.rollback()
        [whole] = claim_due(store, 1, **claim)
        assert whole.ages_s == (HOUR, 6 * HOUR)
