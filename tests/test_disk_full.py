"""A full disk is one clear line wherever it strikes: the kernel's ENOSPC on a file, SQLite's SQLITE_FULL
through SQLAlchemy, PostgreSQL's disk_full; anything else keeps its traceback."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from tiktok_corpus.errors import DiskFull, disk_full
from tiktok_corpus.store.db import reporting_connection_errors


def test_the_kernels_enospc():
    with pytest.raises(OSError) as raised, open("/dev/full", "wb", buffering=0) as full:
        full.write(b"x")  # /dev/full answers every write with ENOSPC
    error = disk_full(raised.value)
    assert isinstance(error, DiskFull) and error.expected and error.kind == "disk_full"
    assert "no space left" in error.message and "run the same command again" in error.message
    named = disk_full(OSError(28, "No space left on device", "/data/export.parquet"))
    assert named is not None and "writing /data/export.parquet" in named.message


def sqlite_full(tmp_path) -> OperationalError:
    """A real SQLITE_FULL through SQLAlchemy: the pages the database may grow to run out."""
    engine = create_engine(f"sqlite:///{tmp_path / 'small.db'}")

    @event.listens_for(engine, "connect")
    def _cap(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA max_page_count = 8")

    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (body TEXT)"))
    with pytest.raises(OperationalError) as raised, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:body)"), [{"body": "x" * 4000}] * 20)
    engine.dispose()
    return raised.value


def test_sqlites_full_database_through_sqlalchemy(tmp_path):
    error = disk_full(sqlite_full(tmp_path))
    assert error is not None and "SQLite database's disk is full" in error.message


def test_a_full_disk_met_opening_or_committing_is_a_full_disk_not_a_database_that_cannot_open(tmp_path):
    """SQLITE_FULL at a commit (no statement) and the -shm file that cannot grow ("disk I/O error", at every
    open) were said as "cannot open database", the advice of a full disk lost."""
    shm = sqlite3.OperationalError("disk I/O error")
    shm.sqlite_errorcode = sqlite3.SQLITE_IOERR_SHMSIZE  # as the driver sets it; a full tmpfs is no test's to make
    for driver_error in (sqlite_full(tmp_path).orig, shm):
        with pytest.raises(DiskFull, match="disk is full"), reporting_connection_errors(f"sqlite:///{tmp_path}/x.db"):
            raise OperationalError(None, None, driver_error) from driver_error  # SQLAlchemy's, at a commit or an open


def test_postgres_disk_full_as_sqlalchemy_raises_it():
    cause = psycopg.errors.DiskFull("could not extend file")  # SQLSTATE 53100: no disk to fill here
    with pytest.raises(OperationalError) as raised:
        raise OperationalError("INSERT ...", {}, cause) from cause
    error = disk_full(raised.value)
    assert error is not None and "PostgreSQL's disk is full" in error.message


def test_other_errors_are_not_softened():
    assert disk_full(OSError(13, "Permission denied", "/x")) is None
    assert disk_full(OperationalError("SELECT 1", {}, psycopg.errors.SerializationFailure())) is None
    assert disk_full(RuntimeError("disk full")) is None  # a message alone is not the condition
