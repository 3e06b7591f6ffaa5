"""Claims: every row to exactly one worker across processes, and a dead worker's rows come back."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import make_engine, open_store, upgrade
from tiktok_corpus.store.models import Video, utcnow
from tiktok_corpus.store.queue import claim, finish, release
from tiktok_corpus.store.workers import worker_name

WORKER = Path(__file__).with_name("claim_worker.py")


def migrated_store(url: str):
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return open_store(Settings(db_url=url))


def seed_videos(store, count: int, **columns) -> list[str]:
    ids = [str(7_100_000_000_000_000_000 + n) for n in range(count)]
    with store.transaction() as session:
        session.execute(insert(Video), [{"id": video_id, **columns} for video_id in ids])
    return ids


def download_rows(store) -> dict[str, tuple[str, int]]:
    with store.sessions() as session:
        rows = session.execute(select(Video.id, Video.download_status, Video.download_attempts)).all()
    return {video_id: (status, attempts) for video_id, status, attempts in rows}


def run_workers(url: str, count: int, *, batch: int, mode: str = "drain", lease_s: float = 600) -> list[list[str]]:
    """Start ``count`` worker processes, return each one's claimed ids.

    Two barriers: all start claiming together, and none goes past its first batch until every one has
    claimed, so the workers compete by construction, not because one happened to be slow.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, str(batch), str(lease_s), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]

    def all_say(line: str) -> None:
        for proc in procs:
            assert proc.stdout.readline().strip() == line, proc.stderr.read()

    def release_all() -> None:
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()

    try:
        all_say("ready")
        release_all()
        all_say("claimed")
        release_all()
        outputs = [proc.communicate(timeout=300) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (_, stderr) in zip(procs, outputs):
        assert proc.returncode == 0, stderr
    return [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]


def assert_each_row_claimed_once(store, ids: list[str], claimed: list[list[str]]) -> None:
    every_claim = [video_id for worker_ids in claimed for video_id in worker_ids]
    assert len(every_claim) == len(set(every_claim)), "a row was claimed by two workers"
    assert set(every_claim) == set(ids)
    assert sum(1 for worker_ids in claimed if worker_ids) >= 2, "workers never competed: nothing was shown"
    assert set(download_rows(store).values()) == {("downloaded", 1)}


@pytest.mark.postgres
def test_four_processes_claim_each_of_1000_rows_exactly_once_on_postgres(pg_url):
    store = migrated_store(pg_url)
    try:
        ids = seed_videos(store, 1000)
        claimed = run_workers(pg_url, 4, batch=10)
        assert_each_row_claimed_once(store, ids, claimed)
    finally:
        store.dispose()


def test_two_processes_claim_each_row_exactly_once_on_sqlite(store):
    ids = seed_videos(store, 200)
    claimed = run_workers(store.engine.url.render_as_string(), 2, batch=10)
    assert_each_row_claimed_once(store, ids, claimed)


@pytest.fixture
def any_store(any_db_url):
    opened = migrated_store(any_db_url)
    yield opened
    opened.dispose()


def test_a_dead_workers_claims_come_back_after_the_lease(any_store, any_db_url):
    ids = seed_videos(any_store, 5)
    (taken,) = run_workers(any_db_url, 1, batch=5, mode="die", lease_s=60)
    assert sorted(taken) == ids

    with any_store.sessions() as session:  # SQLite gives them back naive: UTC
        leases = [
            until if until.tzinfo else until.replace(tzinfo=UTC)
            for until in session.scalars(select(Video.download_lease_until))
        ]
    assert len(leases) == len(ids)
    assert claim(any_store, "download", 10, now=min(leases) - timedelta(seconds=1)) == []
    reclaimed = claim(any_store, "download", 10, worker="rescuer", now=max(leases) + timedelta(seconds=1))

    assert sorted(reclaimed) == ids
    assert set(download_rows(any_store).values()) == {("claimed", 2)}
    with any_store.sessions() as session:
        assert set(session.scalars(select(Video.download_worker))) == {"rescuer"}


def test_claim_takes_only_the_asked_statuses_and_stage(store):
    pending = seed_videos(store, 3)
    with store.transaction() as session:
        finish(session, "download", pending[0], "failed", error_kind="http_404", error="gone")

    assert claim(store, "download", 10, statuses=("failed",)) == [pending[0]]
    assert claim(store, "download", 10) == pending[1:]
    assert claim(store, "probe", 1) == [pending[0]]  # stages queue independently
    with pytest.raises(ValueError, match="unknown stage"):
        claim(store, "upload", 1)


def test_expired_claims_come_first_then_pending_rows_up_to_the_limit(store):
    ids = seed_videos(store, 6)
    later = utcnow() + timedelta(seconds=120)
    first = claim(store, "download", 2, lease_s=60)  # expires before ``later``
    live = claim(store, "download", 1, lease_s=3600)  # still held then
    assert (first, live) == (ids[:2], [ids[2]])

    taken = claim(store, "download", 3, worker="rescuer", now=later)
    assert taken == ids[:2] + [ids[3]], "the lapsed claims, then pending rows in order; never a live claim"
    assert claim(store, "download", 10, now=later) == ids[4:]


def test_finish_records_the_outcome_and_frees_the_lease(store):
    (video_id,) = seed_videos(store, 1)
    claim(store, "download", 1)
    with store.transaction() as session:
        finish(session, "download", video_id, "failed", error_kind="truncated", error="x" * 5000)

    with store.sessions() as session:
        row = session.get(Video, video_id)
    assert (row.download_status, row.download_error_kind) == ("failed", "truncated")
    assert len(row.download_error) == 2000
    assert row.download_lease_until is None


def test_release_gives_claimed_rows_back_untouched(store):
    ids = seed_videos(store, 2)
    claimed = claim(store, "download", 2, worker=worker_name(store, "w1"))
    release(store, "download", claimed)

    # Nothing was tried: the attempt goes back too, so stops and restarts never use a row's attempts up.
    assert set(download_rows(store).values()) == {("pending", 0)}
    assert claim(store, "download", 5) == ids
