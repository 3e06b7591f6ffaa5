"""Workers' presence: a killed worker's claims come back at once on any host, a live one's never."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from typer.testing import CliRunner

from tiktok_corpus.cli import app
from tiktok_corpus.config import Settings
from tiktok_corpus.store.crawl_runs import close_killed_runs
from tiktok_corpus.store.db import make_engine, open_store, sqlite_file, upgrade
from tiktok_corpus.store.models import CrawlRun, TrackTarget, Video, Worker, utcnow
from tiktok_corpus.store.queue import claim, reclaim_dead
from tiktok_corpus.store.status import claim_holders
from tiktok_corpus.store.tracking import claim_due, reclaim_dead_targets, schedule_targets
from tiktok_corpus.store.workers import WORKER_LOCK_CLASS, _advisory_key, dead_workers, worker_name

from ..waiting import wait_for

PRESENT_WORKER = Path(__file__).with_name("present_worker.py")


@pytest.fixture
def any_store(any_db_url):
    engine = make_engine(any_db_url)
    upgrade(engine)
    engine.dispose()
    opened = open_store(Settings(db_url=any_db_url))
    yield opened
    opened.dispose()


def workers(store) -> set[str]:
    with store.sessions() as session:
        return set(session.scalars(select(Worker.name)))


def test_a_killed_worker_of_another_host_gives_back_its_claims_and_its_run_at_once(any_store, any_db_url):
    """Under ``docker compose run --rm`` every run has a new host name: a rerun after a kill -9 left the
    killed one's claims to their 10-minute lease, said it was done, and its export lacked their rows."""
    with any_store.transaction() as session:
        session.execute(insert(Video), [{"id": video_id, "create_time": 0} for video_id in ("1", "2", "3")])
    schedule_targets(any_store, (3_600,), now=0, late_fraction=0.25)
    holder = subprocess.Popen(
        [sys.executable, str(PRESENT_WORKER), any_db_url, "container-a"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held", holder.stderr.read()
        named = f"container-a:{holder.pid}"
        assert claim_holders(any_store) == [
            {"stage": "download", "worker": named, "rows": 2, "state": "running"},
            {"stage": "track", "worker": f"{named}:t0", "rows": 1, "state": "running"},
        ]
        # Alive on its host, which this one cannot look into: nothing of it is taken.
        assert (reclaim_dead(any_store, "download"), reclaim_dead_targets(any_store), close_killed_runs(any_store)) == (
            0,
            0,
            0,
        )
        holder.send_signal(signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()

    wait_for(lambda: {held["state"] for held in claim_holders(any_store)} == {"gone"}, "the killed worker's lock free")
    shown = CliRunner().invoke(app, ["--db", any_db_url, "status", "--json"])
    assert shown.exit_code == 0, shown.output
    assert {(held["worker"], held["state"]) for held in json.loads(shown.stdout)["claims"]} == {
        (named, "gone"),
        (f"{named}:t0", "gone"),
    }
    taken = {"downloads": 0, "targets": 0, "runs": 0}

    def all_taken_back() -> bool:  # Postgres ends the killed session's locks a moment after the kill
        taken["downloads"] += reclaim_dead(any_store, "download")
        taken["targets"] += reclaim_dead_targets(any_store)
        taken["runs"] += close_killed_runs(any_store)
        return taken == {"downloads": 2, "targets": 1, "runs": 1}

    wait_for(all_taken_back, f"the killed worker's claims taken back (so far {taken})", timeout_s=30)
    with any_store.sessions() as session:
        assert set(session.scalars(select(Video.download_status))) == {"pending"}
        assert set(session.scalars(select(TrackTarget.status))) == {"pending"}
        assert session.scalars(select(CrawlRun.status)).all() == ["killed"]


def test_status_tells_a_lapsed_claim_of_another_host_from_one_still_leased(any_store, any_db_url):
    """A claim of a host this one cannot look into, whose lease is over, is taken by the next claim: `corpus
    status` said it would come back "when its lease ends", long after it had."""
    now = utcnow()
    leases = {"1": now - timedelta(hours=1), "2": now + timedelta(hours=1)}
    with any_store.transaction() as session:
        session.execute(
            insert(Video),
            [
                {
                    "id": video_id,
                    "create_time": 0,
                    "download_status": "claimed",
                    "download_worker": f"other-host-{video_id}:1",
                    "download_lease_until": lease,
                }
                for video_id, lease in leases.items()
            ],
        )
    assert [(held["worker"], held["state"]) for held in claim_holders(any_store)] == [
        ("other-host-1:1", "lapsed"),
        ("other-host-2:1", "unknown"),
    ]
    shown = CliRunner().invoke(app, ["--db", any_db_url, "status"])
    said = "".join(shown.stdout.replace("│", " ").split())  # rich's table wraps the row where it likes
    assert shown.exit_code == 0 and "thenextclaimtakesthem" in said, shown.output
    as_json = CliRunner().invoke(app, ["--db", any_db_url, "status", "--json"])
    assert {(held["worker"], held["state"]) for held in json.loads(as_json.stdout)["claims"]} == {
        ("other-host-1:1", "lapsed"),
        ("other-host-2:1", "unknown"),
    }


def test_each_store_of_a_process_is_a_worker_of_its_own_withdrawn_when_disposed(any_store, any_db_url):
    """Two stores of one process on one database each hold a lock: each is a worker (the second's name
    carries a token), both alive; a disposed one leaves no row and no lock file."""
    second = open_store(Settings(db_url=any_db_url))
    try:
        first_name, second_name = worker_name(any_store, "crawl"), worker_name(second)
        host_pid = f"{socket.gethostname()}:{os.getpid()}"
        assert first_name == f"{host_pid}:crawl" and second_name.startswith(f"{host_pid}.")
        assert workers(any_store) == {host_pid, second_name}
        assert dead_workers(any_store, [first_name, second_name]) == []
    finally:
        second.dispose()
    assert workers(any_store) == {host_pid}
    database = sqlite_file(any_db_url)
    if database is not None:
        assert [path.name for path in database.with_name(f"{database.name}-workers").iterdir()] == [
            f"{host_pid.replace(':', '-')}.lock"
        ]


def test_a_folder_that_takes_no_lock_file_leaves_claims_to_their_leases(tmp_path, caplog):
    """Where no lock file can be made beside a SQLite database, claims still work, by ``host:pid`` as
    before, and the warning says what is lost."""
    (tmp_path / "corpus.db-workers").write_text("a file where the folder would go")
    with open_store(Settings(db_url=f"sqlite:///{tmp_path / 'corpus.db'}")) as store:
        with store.transaction() as session:
            session.execute(insert(Video), [{"id": "1"}])
        assert claim(store, "download", 5) == ["1"]
        with store.sessions() as session:
            assert session.scalar(select(Video.download_worker)) == f"{socket.gethostname()}:{os.getpid()}"
        assert workers(store) == set()
    assert "its claims wait for their lease" in caplog.text


def test_a_rerun_going_by_the_killed_ones_name_takes_its_claims_back(any_store):
    """``docker restart``, or a fixed host name, gives a rerun the name of the process killed before it (the
    same host name, the same pid under an init). It took that name's free lock and its row, and the killed
    one's claims looked like its own: live, left to their lease."""
    host_pid = f"{socket.gethostname()}:{os.getpid()}"
    with any_store.transaction() as session:
        session.execute(insert(Worker), [{"name": host_pid, "started_at": utcnow()}])  # the killed one's
        session.execute(insert(Video), [{"id": "1"}, {"id": "2"}])
    assert claim(any_store, "download", 1, worker=f"{host_pid}:download") == ["1"]

    assert worker_name(any_store, "download").startswith(f"{host_pid}.")
    assert reclaim_dead(any_store, "download") == 1


def test_a_gone_workers_row_and_lock_file_go_once_nothing_it_held_is_left(any_store, any_db_url):
    """Every killed run left its row and lock file behind for ever (each ``docker compose run --rm`` goes by
    a new name). A store's first worker removes those of gone workers that hold nothing any more; a gone
    worker's claims and running crawl run keep its row until they are taken back, a live one keeps its own."""
    with any_store.transaction() as session:
        session.execute(insert(Worker), [{"name": f"gone:{pid}", "started_at": utcnow()} for pid in (1, 2, 3, 4)])
        session.execute(insert(Video), [{"id": "1", "create_time": 0}, {"id": "2", "create_time": 0}])
        session.execute(insert(CrawlRun), [{"status": "running", "worker": "gone:2"}])
    assert claim(any_store, "download", 1, worker="gone:1:download") == ["1"]
    schedule_targets(any_store, (3_600,), now=0, late_fraction=0.25)
    assert claim_due(any_store, 1, now=10**10, worker="gone:3:track.0", lease_s=600, late_fraction=0.25)
    database = sqlite_file(any_db_url)
    lock_files = database.with_name(f"{database.name}-workers") if database is not None else None
    if lock_files is not None:  # as a killed worker leaves it: a file no process holds
        lock_files.mkdir()
        (lock_files / "gone-4.lock").touch()
    live = open_store(Settings(db_url=any_db_url))
    try:
        live_name, first_name = worker_name(live), worker_name(any_store)
        assert workers(any_store) == {"gone:1", "gone:2", "gone:3", live_name, first_name}
        if lock_files is not None:
            assert not (lock_files / "gone-4.lock").exists()

        assert (reclaim_dead(any_store, "download"), reclaim_dead_targets(any_store), close_killed_runs(any_store)) == (
            1,
            1,
            1,
        )
        with open_store(Settings(db_url=any_db_url)) as third:
            third_name = worker_name(third)
            assert workers(third) == {live_name, first_name, third_name}
    finally:
        live.dispose()
    if lock_files is not None:
        assert sorted(path.name for path in lock_files.iterdir()) == sorted(
            f"{name.replace(':', '-')}.lock" for name in workers(any_store)
        )


def test_two_spellings_of_one_sqlite_database_see_each_others_workers(tmp_path):
    """A URL with a query (``?timeout=60``) put its lock files in ``corpus.db?timeout=60-workers/``, where a
    plain URL's worker never looked: each took the other's live claims back."""
    database = tmp_path / "corpus.db"
    with open_store(Settings(db_url=f"sqlite:///{database}?timeout=60")) as queried:
        name = worker_name(queried)
        with open_store(Settings(db_url=f"sqlite:///{database}")) as plain:
            assert dead_workers(plain, [name]) == []
    assert [path.name for path in tmp_path.iterdir() if path.name.endswith("-workers")] == ["corpus.db-workers"]


def end_the_session_holding(store, name: str) -> None:
    """What a Postgres restart or a cut connection does to the session holding ``name``'s lock."""
    with store.engine.connect() as admin:
        key = _advisory_key(admin, name)["key"] & 0xFFFFFFFF  # pg_locks shows the int4 as an oid
        admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND classid = :cls AND objid = :key"
            ),
            {"cls": WORKER_LOCK_CLASS, "key": key},
        )


@pytest.mark.postgres
def test_a_worker_whose_postgres_session_ended_takes_its_lock_again_at_its_next_claim(pg_url):
    """A server restart (or a connection cut) ends the session holding a live worker's lock: a rerun took its
    claims while it ran on. Its next claim takes the lock again, and disposing it no longer raises."""
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    store, other = (open_store(Settings(db_url=pg_url)) for _ in range(2))
    try:
        with store.transaction() as session:
            session.execute(insert(Video), [{"id": "1"}, {"id": "2"}])
        name = worker_name(store)
        assert claim(store, "download", 1) == ["1"]
        end_the_session_holding(other, name)
        wait_for(lambda: dead_workers(other, [name]) == [name], "the ended session's lock free")
        # The worker itself never takes its lock's absence for its death: a running tracker reclaiming
        # dead peers' claims gave back its own loops' (their reads then lost).
        assert dead_workers(store, [name, f"{name}:t0"]) == []

        assert claim(store, "download", 1) == ["2"]  # confirms the presence first
        assert dead_workers(other, [name]) == [] and reclaim_dead(other, "download") == 0
        end_the_session_holding(other, name)
    finally:
        store.dispose()  # its session gone again: withdrawn as far as it can be, without raising
        other.dispose()


@pytest.mark.postgres
def test_a_live_worker_seen_gone_while_its_session_was_away_writes_its_row_back(pg_url, monkeypatch):
    """A store starting while a live worker's lock session is away (a server restart) sees that worker gone
    and, as it holds nothing, removes its row: the worker's next claim writes it back with its lock, and a
    store of the same host and pid starting meanwhile leaves the row and takes another name."""
    engine = make_engine(pg_url)
    upgrade(engine)
    engine.dispose()
    live, same_pid, elsewhere = (open_store(Settings(db_url=pg_url)) for _ in range(3))
    try:
        with live.transaction() as session:
            session.execute(insert(Video), [{"id": "1"}])
        name = worker_name(live)
        end_the_session_holding(elsewhere, name)
        wait_for(lambda: dead_workers(elsewhere, [name]) == [name], "the ended session's lock free")

        assert worker_name(same_pid).startswith(f"{name}.") and name in workers(live)
        with monkeypatch.context() as patch:
            patch.setattr(socket, "gethostname", lambda: "elsewhere")
            assert worker_name(elsewhere).startswith("elsewhere:")
        assert name not in workers(live)

        assert claim(live, "download", 1) == ["1"]  # confirms the presence first
        assert name in workers(live) and dead_workers(elsewhere, [name]) == []
    finally:
        for store in (live, same_pid, elsewhere):
            store.dispose()


def test_a_lock_file_let_go_while_being_taken_is_taken_afresh(store, monkeypatch):
    """Its holder removes the file as it lets go: a taker that opened the file just before got the lock of a
    file no checker finds, and every checker then took that live worker for gone."""
    import fcntl

    from tiktok_corpus.store.workers import _held, _LockFile

    name = "elsewhere:1"
    holder, taker = _LockFile(store, name), _LockFile(store, name)
    assert holder.take()
    real_flock, calls = fcntl.flock, []

    def letting_go_first(fd, operation):
        if not calls:  # the taker's first try: its file is open, and the holder lets go now
            holder.release()
        calls.append(operation)
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", letting_go_first)
    assert taker.take()
    monkeypatch.undo()
    assert len(calls) == 2 and _held(store, name)  # taken again on the file checkers look at
    taker.release()


def test_worker_states_of_odd_names_and_of_a_read_only_database(store, settings):
    """A name of this host without a pid was "running" for ever; a database read as immutable (a read-only
    medium) called a killed worker "running", finding no lock file to look at."""
    from sqlalchemy.orm import sessionmaker

    from tiktok_corpus.config import redact_url
    from tiktok_corpus.store.db import Store
    from tiktok_corpus.store.workers import worker_states

    host = socket.gethostname()
    with store.transaction() as session:
        session.execute(insert(Worker), [{"name": "gone-host:7", "started_at": utcnow()}])  # killed: no lock
    odd = [f"{host}:abc", f"{host}:", "nocolon", "gone-host:7:download"]
    assert worker_states(store, odd) == {
        f"{host}:abc": "unknown",
        f"{host}:": "unknown",
        "nocolon": "unknown",
        "gone-host:7:download": "gone",
    }
    url = settings.db_url or ""
    database = sqlite3.connect(sqlite_file(url) or "")
    database.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # what an immutable read sees: the file alone
    database.close()
    immutable = make_engine(url, immutable=True)
    try:
        read_only = Store(immutable, sessionmaker(immutable), redact_url(url))
        assert worker_states(read_only, ["gone-host:7:download"]) == {"gone-host:7:download": "gone"}
    finally:
        immutable.dispose()
