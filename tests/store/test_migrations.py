"""The one migration tree: it builds exactly the ORM schema, on SQLite and Postgres, and ships in the wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text, update

from tests.waiting import wait_for
from tiktok_corpus.config import Settings, redact_url
from tiktok_corpus.errors import ConfigError, StaleSchemaError
from tiktok_corpus.store import lock_waits
from tiktok_corpus.store.db import (
    MIGRATION_LOCK_KEY,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    open_store,
    upgrade,
    upgrade_database,
)
from tiktok_corpus.store.models import Base, StatsSnapshot, TrackTarget, Video

ROOT = Path(__file__).resolve().parents[2]


def schema_drift(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


@pytest.fixture
def engine(any_db_url):
    created = make_engine(any_db_url)
    yield created
    created.dispose()


def test_migrations_from_empty_equal_the_models(engine):
    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert schema_drift(engine) == []


def test_downgrade_to_base_and_upgrade_again(engine):
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(Video).values(id="7000000000000000001"))

    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert schema_drift(engine) == []


def test_a_downgrade_that_rebuilds_a_table_keeps_the_rows_that_refer_to_it(engine):
    """SQLite drops a column by copying the table: with foreign keys enforced, dropping the old `videos`
    deleted every snapshot, edge and tracking target of the corpus (no error), one revision back."""
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(Video).values(id="7000000000000000001"))
        conn.execute(insert(StatsSnapshot).values(video_id="7000000000000000001", play_count=5))
    downgrade(engine, "0010")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stats_snapshots")).scalar() == 1
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stats_snapshots")).scalar() == 1
        if engine.dialect.name == "sqlite":  # enforcement is on again for the store's connections
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_targets_found_gone_before_0012_get_the_age_their_update_time_says(engine):
    """An export dates a gone video by the age it was found gone at; rows from before the age was kept
    get the one their update time gives (this machine's clock, the best there is for them)."""
    upgrade(engine, "0011")
    found = datetime(2026, 12, 1, 12, tzinfo=UTC)
    created = int(found.timestamp()) - 3 * 86_400
    with engine.begin() as conn:
        conn.execute(insert(Video).values(id="1", create_time=created))
        for age, status in ((3_600, "observed"), (86_400, "gone"), (7 * 86_400, "gone")):
            conn.execute(
                insert(TrackTarget).values(
                    video_id="1", age_s=age, due_at=created + age, status=status, updated_at=found
                )
            )
    upgrade(engine)
    with engine.connect() as conn:
        ages = dict(conn.execute(select(TrackTarget.age_s, TrackTarget.observed_age_s)).all())
    assert ages == {3_600: None, 86_400: 3 * 86_400, 7 * 86_400: 3 * 86_400}
    with engine.begin() as conn:  # as record_gone writes it now: the site's clock
        conn.execute(update(TrackTarget).where(TrackTarget.age_s == 86_400).values(observed_age_s=50.0))
    downgrade(engine, "0011")
    upgrade(engine)  # a round trip keeps what was recorded
    with engine.connect() as conn:
        ages = dict(conn.execute(select(TrackTarget.age_s, TrackTarget.observed_age_s)).all())
    assert ages == {3_600: None, 86_400: 50.0, 7 * 86_400: 3 * 86_400}


@pytest.mark.postgres
def test_migrations_started_together_on_postgres_take_turns(pg_url):
    """Machines started at once against an empty Postgres: each `corpus db upgrade` waits for the one
    before, and the later ones find the schema current (without the lock the losers crashed on a
    duplicate table)."""
    name = f"migrate-{uuid.uuid4().hex[:8]}"
    holder = make_engine(pg_url)

    def waiting_migrations() -> int:
        with holder.connect() as conn:
            return conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
                    "WHERE locktype = 'advisory' AND NOT granted AND application_name = :name"
                ),
                {"name": name},
            ).scalar_one()

    corpus = str(Path(sys.executable).with_name("corpus"))
    environment = {**os.environ, "CORPUS_DB_URL": f"{pg_url}&application_name={name}"}
    migrations: list[subprocess.Popen] = []
    try:
        with holder.connect() as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            for _ in range(3):
                migrations.append(
                    subprocess.Popen([corpus, "db", "upgrade"], env=environment, stderr=subprocess.PIPE, text=True)
                )
            try:
                wait_for(
                    lambda: waiting_migrations() == len(migrations), "every migration waiting its turn", *migrations
                )
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            errors = [migration.communicate(timeout=120)[1] for migration in migrations]
        assert [migration.returncode for migration in migrations] == [0, 0, 0], errors
        assert current_revision(holder) == head_revision()
        assert schema_drift(holder) == []
    finally:
        for migration in migrations:
            if migration.poll() is None:
                migration.kill()
        holder.dispose()


@pytest.mark.postgres
def test_an_upgrade_waiting_for_another_sessions_lock_names_that_session(pg_url, monkeypatch):
    """A session left in a transaction holding what a migration needs (here the migrations' own lock):
    `corpus db upgrade` waited without a word."""
    monkeypatch.setattr(lock_waits, "LOCK_WAIT_CHECK_S", 0.1)
    holder = make_engine(pg_url)
    heard: list[str] = []
    failed: list[BaseException] = []

    def upgrading() -> None:
        try:
            upgrade_database(Settings(db_url=pg_url), on_lock_wait=heard.append)
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)

    try:
        with holder.connect() as lock:
            holder_pid = lock.execute(text("SELECT pg_backend_pid()")).scalar_one()
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            upgrade_thread = threading.Thread(target=upgrading)
            upgrade_thread.start()
            try:
                wait_for(lambda: any(f"pid {holder_pid} (" in line for line in heard), "the lock's holder named")
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                lock.commit()
            upgrade_thread.join(timeout=120)
        assert not upgrade_thread.is_alive() and not failed, failed
        assert current_revision(holder) == head_revision()
    finally:
        holder.dispose()
    [line] = [line for line in heard if f"pid {holder_pid} (" in line]
    assert line.startswith("waiting for a lock that another session holds:") and "idle in transaction" in line
    assert f"pg_terminate_backend(pid) for {holder_pid}" in line


def test_a_new_sqlite_database_is_created_at_head(settings):
    store = open_store(settings)
    try:
        assert current_revision(store.engine) == head_revision()
        assert (settings.data_dir / "corpus.db").exists()
    finally:
        store.dispose()


def test_a_database_behind_head_is_refused_with_the_command_to_run(any_db_url):
    engine = make_engine(any_db_url)
    if engine.dialect.name == "sqlite":  # an empty SQLite file would be migrated; make it one the tool left behind
        upgrade(engine)
        downgrade(engine, "base")
    engine.dispose()

    with pytest.raises(StaleSchemaError) as raised:
        open_store(Settings(db_url=any_db_url))

    assert "corpus db upgrade" in raised.value.message
    assert raised.value.expected


def test_a_database_from_a_newer_version_is_refused(settings):
    open_store(settings).dispose()
    engine = make_engine(settings.db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_the_future'"))
    engine.dispose()

    with pytest.raises(StaleSchemaError, match="newer"):
        open_store(settings)


def test_the_wheel_ships_the_migration_tree(tmp_path):
    """A non-editable install can migrate only if env.py, the versions and the template are in the wheel."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("tiktok_corpus", "migrations"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))

    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            str(source),
            "-w",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
    )

    (wheel,) = (tmp_path / "dist").glob("tiktok_corpus-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "tiktok_corpus/migrations/env.py" in names
    assert "tiktok_corpus/migrations/script.py.mako" in names
    assert any(n.startswith("tiktok_corpus/migrations/versions/0001_") and n.endswith(".py") for n in names)


def test_a_postgres_url_in_libpq_spelling_is_accepted(pg_url):
    """``postgres://`` (libpq's, and many hosts' spelling) is a Postgres URL, not an unsupported one."""
    engine = make_engine(pg_url.replace("postgresql+psycopg://", "postgres://", 1))
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("select 1")) == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("foo", "unsupported database URL: it has no scheme://"),
        ("mysql://root:s3cret@db/corpus", "unsupported database URL of scheme 'mysql'"),
        # SQLAlchemy cannot use these: a traceback (and no --json document) before
        ("postgresql+psycopg://u:s3cret@127.0.0.1:notaport/x", "it cannot be read (is the port a number"),
        ("postgresql://alice:Sup3r@s3cret:99@host/db", "it cannot be read"),  # SQLAlchemy quoted "s3cret:99@host"
        # SQLAlchemy reads it (password "p", host "s3cret@127.0.0.1"): the driver's error printed the rest
        (
            "postgresql+psycopg://u:p@s3cret@127.0.0.1/x",
            "it has an '@' in its password; write each '@' of the password as %40",
        ),
        ("postgresql+psycopg2://u:s3cret@127.0.0.1:1/x", "its driver psycopg2 is not installed"),
        ("postgresql+bogus://u:s3cret@127.0.0.1:1/x", "SQLAlchemy has no driver 'postgresql+bogus'"),
    ],
)
def test_a_database_url_that_cannot_be_used_names_what_is_wrong_and_never_its_password(url, said):
    with pytest.raises(ConfigError) as refused:
        make_engine(url)
    message = refused.value.message
    assert said in message and "postgresql+psycopg://" in message and "s3cret" not in message


def test_an_at_in_the_user_name_is_the_users():
    """Cloud SQL's IAM users are ``svc@project.iam``: only an '@' that leaves one in the host is refused."""
    url = "postgresql+psycopg://svc@proj.iam:tok@db.example.com:5432/corpus"
    engine = make_engine(url)
    try:
        assert (engine.url.username, engine.url.host) == ("svc@proj.iam", "db.example.com")
    finally:
        engine.dispose()
    assert redact_url(url) == "postgresql+psycopg://svc%40proj.iam:***@db.example.com:5432/corpus"


def test_libpqs_own_connect_timeout_wins_over_the_default(monkeypatch):
    """PGCONNECT_TIMEOUT or the URL's connect_timeout is the operator's: the default 10 s is for neither."""
    from tiktok_corpus.store import db

    made: list[dict] = []
    real = db.create_engine
    monkeypatch.setattr(
        db, "create_engine", lambda url, **kwargs: made.append(kwargs["connect_args"]) or real(url, **kwargs)
    )
    url = "postgresql+psycopg://u@127.0.0.1:1/x"
    make_engine(url).dispose()
    make_engine(url + "?connect_timeout=3").dispose()
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "60")
    make_engine(url).dispose()
    assert [args.get("connect_timeout") for args in made] == [10, None, None]
