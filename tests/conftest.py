"""Shared fixtures: settings on a temporary data dir, SQLite and Postgres stores.

Postgres tests need ``CORPUS_TEST_PG_URL`` (``.ci/run`` sets it); each gets its own schema, so
parallel or repeated runs never collide. Without the variable they are skipped with that reason.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import open_store

# Two test processes share two cores (`make test`): OpenMP threads that spin while they wait for work
# (libgomp's default) take the cores from the other process's threads, and two CPU-bound tests side by
# side took 2.7x as long as one alone (1.4x when waiting threads sleep). Each test process of n also
# keeps to its share of the cores: two torch trainings side by side, each on both cores, took 1.45x as
# long as each on one (20 s against 14 s). Set before any test imports torch; the commands the tests
# start inherit it. No test may depend on the thread count (sums over threads differ in the last bits).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if (_test_processes := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))) > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _test_processes)))

PG_URL = os.environ.get("CORPUS_TEST_PG_URL")
needs_pg = pytest.mark.skipif(not PG_URL, reason="CORPUS_TEST_PG_URL is not set (no PostgreSQL to test on)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The costliest modules first, by their ``slow(seconds)`` mark: under ``make test`` (``-n 2 --dist
    loadfile``) the long ones then start at once, not last on one worker while the other idles. The sort
    is stable, so a module's tests keep their order."""
    items.sort(key=lambda item: -_module_seconds(item))


def _module_seconds(item: pytest.Item) -> float:
    mark = item.get_closest_marker("slow")
    return float(mark.args[0]) if mark else 0.0


@pytest.fixture(autouse=True)
def _isolated_settings_env(monkeypatch):
    """A developer's exported CORPUS_* settings must never point tests at their own corpus."""
    for name in ("CORPUS_DB_URL", "CORPUS_DATA_DIR", "CORPUS_BASE_URL", "CORPUS_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings on a fresh data dir with its default SQLite database."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def store(settings):
    """An open, migrated SQLite store."""
    opened = open_store(settings)
    yield opened
    opened.dispose()


@pytest.fixture
def pg_url():
    """A Postgres URL whose search_path is a fresh schema, dropped afterwards."""
    if not PG_URL:
        pytest.skip("CORPUS_TEST_PG_URL is not set (no PostgreSQL to test on)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_url(request, tmp_path):
    """Run a test once on SQLite and once on Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'any.db'}"
    return request.getfixturevalue("pg_url")


# --- replica fixtures (issue #3) ------------------------------------------------------------------
# The local TikTok replica (tiktok_corpus.replica). Media files are cached in $CORPUS_REPLICA_CACHE or
# ~/.cache/tiktok-corpus/replica-media, so only the very first run pays for generating them.


@pytest.fixture(scope="session")
def replica_session():
    """The default 300-video replica (seed 0, signal 0), started once per test session."""
    from tiktok_corpus.replica import Replica, ReplicaConfig

    with Replica(ReplicaConfig()) as rep:
        yield rep


@pytest.fixture
def replica(replica_session):
    """The shared default replica with every fault off and signing ``none`` before and after the test."""
    replica_session.set_faults({})
    replica_session.set_signing("none")
    yield replica_session
    replica_session.set_faults({})
    replica_session.set_signing("none")


@pytest.fixture
def make_replica():
    """Factory for a replica of your own (``make_replica(videos=40, faults={...})``), stopped afterwards."""
    from tiktok_corpus.replica import Replica, ReplicaConfig

    started = []

    def make(clock=None, **config):
        rep = Replica(ReplicaConfig(**config), **({"clock": clock} if clock else {}))
        started.append(rep.start())
        return rep

    yield make
    for rep in started:
        rep.stop()


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(size)``: a real filesystem of its own, ``size`` big (``"700k"``), to fill and to grow
    (``mount -o remount,size=...``): a tmpfs (needs root, else the test is skipped)."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)], capture_output=True)
        if made.returncode:
            pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {made.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=True)
