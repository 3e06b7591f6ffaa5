"""Who holds a claim, and whether that worker still runs: on this host or on any other.

A worker's name (``host:pid[:suffix]``) tells a person who holds a claim, and lets this host see that one
of its processes is gone. Under ``docker compose run --rm`` every run has a new host name, and on several
machines the host is another one: there the name says nothing, and a killed worker's claims waited out
their lease while a rerun said it was done (an export then silently lacked their rows). So a store that
claims work first makes its worker present: a ``workers`` row, and a lock the system lets go when the
process dies however it dies. On Postgres that is a session advisory lock on a connection held open; on
SQLite, a ``flock`` on a file beside the database (``corpus.db-workers/``), which every process sharing
the database file shares. A worker whose row is there and whose lock is free is gone, wherever it ran.

A Postgres session can end under a live worker (a server restart, a connection cut): the worker takes its
lock again at its next claim or lease renewal (:func:`confirm_presence`), and until then another worker
(a rerun, a running tracker looking for dead peers) may take its claims; never the worker itself. Every
write checks its claim, so the work is then done twice, never written twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, delete, select, text
from sqlalchemy.exc import DBAPIError

from .._files import is_file_at
from .._processes import dead_local_workers
from .models import STAGES, CrawlRun, TrackTarget, Video, Worker, utcnow

if TYPE_CHECKING:  # queue.py, and through it the CLI's options, load this module: no Alembic for it
    from .db import Store

log = logging.getLogger(__name__)

# The advisory lock space of workers' presence (``pg_advisory_lock(int4, int4)``; migrations take one
# 64-bit key, which no pair of these meets).
WORKER_LOCK_CLASS = 0x7469_6B74  # "tikt"


def worker_name(store: Store, suffix: str = "") -> str:
    """``host:pid[:suffix]``, the name a claim carries: this store's worker, made present at its first use
    (``host:pid.TOKEN`` where another store of this process, or a live or killed process of the same
    host name and pid, went by ``host:pid``). Call it outside a transaction: the first use writes a row."""
    base = _presence(store).name
    return f"{base}:{suffix}" if suffix else base


def confirm_presence(store: Store) -> None:
    """Take the worker's lock again where it was lost with its connection (a Postgres restart): each claim
    and lease renewal calls this, so a live worker's claims stay its own."""
    if store.presence is not None:
        store.presence.confirm()


def dead_workers(store: Store, names: Iterable[str]) -> list[str]:
    """The names among ``names`` whose worker is gone (:func:`worker_states`); the others are left to their
    leases."""
    return sorted(name for name, state in worker_states(store, names).items() if state == "gone")


def worker_states(store: Store, names: Iterable[str]) -> dict[str, str]:
    """Each name's worker: ``gone`` (a process of this host that no longer exists, or a worker that was
    present and whose lock is free), ``running`` (its lock held, or a live process of this host), or
    ``unknown`` (another host's, of a version that made no presence: its claims wait for their lease)."""
    names = set(names)
    # This store's own worker runs, whatever its lock says: a cut session frees the lock under a live
    # worker, which takes it again at its next claim (a tracker looks for dead peers between claims).
    own = store.presence.name if store.presence is not None else None
    states = {name: "running" for name in names if own is not None and _base(name) == own}
    states |= dict.fromkeys(dead_local_workers(names - set(states)), "gone")
    bases = {_base(name) for name in names - set(states)}
    if bases:
        with store.sessions() as session:
            present = set(session.scalars(select(Worker.name).where(Worker.name.in_(sorted(bases)))))
        held = {base: _held(store, base) for base in present}
        host = socket.gethostname()
        for name in names - set(states):
            if _base(name) in held:
                states[name] = "running" if held[_base(name)] else "gone"
            else:  # a live process of this host (dead ones are gone already), or nothing says
                local = name.partition(":")[0] == host and _base(name).partition(":")[2].isdigit()
                states[name] = "running" if local else "unknown"
    return states


def _base(name: str) -> str:
    """The worker of a claim's name: ``host:pid`` without the suffix naming its loop."""
    return ":".join(name.split(":", 2)[:2])


def _host_pid(name: str) -> str:
    """The process a worker's name stands for: ``host:pid`` without its token or suffix."""
    host, _, pid = _base(name).partition(":")
    return f"{host}:{pid.partition('.')[0]}"


class Presence:
    """This store's worker: its name, and the lock that says it runs (None where none can be held)."""

    def __init__(self, store: Store, name: str, lock: _AdvisoryLock | _LockFile | None = None) -> None:
        self.store, self.name, self._lock, self._pid = store, name, lock, os.getpid()

    def confirm(self) -> None:
        if self._lock is not None and os.getpid() == self._pid:
            self._lock.confirm()

    def end(self) -> None:
        """Withdraw the worker (the store is disposed), in the process that made it present: a forked child
        disposing the store it inherited would unlock its parent's lock. A database gone by then (its
        server stopped) keeps the row: the lock, gone with the connection, already says the worker is."""
        lock, self._lock = self._lock, None
        if lock is None or os.getpid() != self._pid:
            return
        try:
            with self.store.transaction() as session:
                session.execute(delete(Worker).where(Worker.name == self.name))
        except DBAPIError as exc:
            log.warning("worker %s: its row could not be removed (%s)", self.name, exc.orig or exc)
        lock.release()


def _presence(store: Store) -> Presence:
    with store.presence_lock:
        if store.presence is None:
            _forget_gone_workers(store)
            store.presence = _make_present(store)
        return store.presence


def _forget_gone_workers(store: Store) -> None:
    """Remove the rows (and lock files) of gone workers whose claims and crawl runs were all taken back:
    every killed run (each ``docker compose run --rm`` has a new name) left one, and they piled up for
    ever. Each is removed under its own lock, so a process taking the same name meanwhile finds either the
    row or neither row nor lock file.

    Rows of this process's own ``host:pid`` stay: a Postgres worker whose lock session ended (a server
    restart) reads as gone until its next claim takes the lock again and writes its row back; a process of
    the same name starting in between (a fixed host name, the same pid in another container) must find
    that row and take another name, not share this one."""
    lock_class = _lock_class(store)
    if lock_class is None:
        return
    own = f"{socket.gethostname()}:{os.getpid()}"
    with store.sessions() as session:
        names = {name for name in session.scalars(select(Worker.name)) if _host_pid(name) != own}
        if names:
            names -= _claimants(session)
    for name in sorted(names):
        lock = lock_class(store, name)
        try:
            if not lock.take():
                continue  # running
        except OSError:  # another user's lock file: its row stays, as it harms nothing
            continue
        try:
            with store.transaction() as session:
                session.execute(delete(Worker).where(Worker.name == name))
        except DBAPIError as exc:  # housekeeping: never a reason for a stage not to start
            log.warning("gone workers' rows left for a later run (%s)", exc.orig or exc)
            return
        finally:
            lock.release()


def _claimants(session) -> set[str]:
    """The workers named by a claimed row of any queue or a running crawl run."""
    claims = [
        select(getattr(Video, f"{stage}_worker")).where(getattr(Video, f"{stage}_status") == "claimed")
        for stage in STAGES
    ]
    claims += [
        select(TrackTarget.worker).where(TrackTarget.status == "claimed"),
        select(CrawlRun.worker).where(CrawlRun.status == "running"),
    ]
    return {_base(name) for claim in claims for name in session.scalars(claim.distinct()) if name}


def _make_present(store: Store) -> Presence:
    """Take the first name whose lock is free and that no killed process left a row for (its claims are to
    be taken back, not inherited), then record it. A store whose presence cannot be held (in-memory SQLite,
    a folder that takes no file) goes by ``host:pid`` alone, its claims left to their leases as before."""
    host_pid = f"{socket.gethostname()}:{os.getpid()}"
    lock_class = _lock_class(store)
    if lock_class is None:
        return Presence(store, host_pid)
    for name in (host_pid, *(f"{host_pid}.{secrets.token_hex(3)}" for _ in range(3))):
        lock = lock_class(store, name)
        try:
            if not lock.take():
                continue  # another live worker goes by that name (a fixed host name, a second store)
        except OSError as exc:
            log.warning(
                "no presence for this worker beside the database (%s): should it be killed, its claims wait "
                "for their lease",
                exc,
            )
            return Presence(store, host_pid)
        with store.sessions() as session:
            left_by_the_killed = session.get(Worker, name) is not None
        if left_by_the_killed:
            lock.release()
            continue
        _record(store, name)
        return Presence(store, name, lock)
    raise RuntimeError(f"no free worker name for {host_pid}")


def _record(store: Store, name: str) -> None:
    """The worker's row, where it has none (a second record of a name is the same record)."""
    from .db import table_insert

    with store.transaction() as session:
        session.execute(
            table_insert(store.dialect, Worker).values(name=name, started_at=utcnow()).on_conflict_do_nothing()
        )


def _lock_class(store: Store) -> type[_AdvisoryLock | _LockFile] | None:
    """How this database's workers hold their presence; None where none can be held (in-memory SQLite)."""
    if store.dialect == "postgresql":
        return _AdvisoryLock
    return _LockFile if _lock_path(store, "") is not None else None


def _held(store: Store, name: str) -> bool:
    """Whether a live process holds ``name``'s lock (this one's other stores included)."""
    if store.dialect == "postgresql":
        with store.engine.connect() as conn, conn.begin():
            free = conn.scalar(text("SELECT pg_try_advisory_xact_lock(:cls, :key)"), _advisory_key(conn, name))
        return not free
    path = _lock_path(store, name)
    if path is None:
        return True  # no file to lock: nothing says it is gone
    try:
        fd = os.open(path, os.O_RDONLY)  # flock needs no write access: another user's file is read
    except FileNotFoundError:
        return False
    except OSError:  # a folder this user may not read: nothing says it is gone
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing lets go of the lock just taken
    return False


def _advisory_key(conn: Connection, name: str) -> dict[str, int]:
    """The advisory lock of ``name`` in this schema (a Postgres database's corpora are schemas: each has
    its own workers)."""
    schema = conn.scalar(text("SELECT current_schema()")) or ""
    digest = hashlib.blake2b(f"{schema}\0{name}".encode(), digest_size=4).digest()
    return {"cls": WORKER_LOCK_CLASS, "key": int.from_bytes(digest, "big", signed=True)}


class _AdvisoryLock:
    """A session advisory lock on a connection of its own, out of the pool until released, and taken
    again on a new connection where that one was lost."""

    def __init__(self, store: Store, name: str) -> None:
        self.store, self.name = store, name
        self._conn: Connection | None = None
        self._guard = threading.Lock()  # claims confirm from the stages' database threads

    def take(self) -> bool:
        conn = self.store.engine.connect()
        taken = conn.scalar(text("SELECT pg_try_advisory_lock(:cls, :key)"), _advisory_key(conn, self.name))
        conn.commit()
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def confirm(self) -> None:
        with self._guard:
            if self._conn is not None and not self._alive(self._conn):
                self._conn = None
                try:
                    retaken = self.take()
                except DBAPIError as exc:  # the database still away: the next claim tries again
                    log.warning("worker %s: its lock could not be taken again (%s)", self.name, exc.orig or exc)
                    return
                if not retaken:
                    log.warning("worker %s: its lock is held by another process", self.name)
                    return
                _record(self.store, self.name)  # a store starting meanwhile saw it gone and removed its row

    @staticmethod
    def _alive(conn: Connection) -> bool:
        try:
            conn.execute(text("SELECT 1"))
            conn.commit()
        except DBAPIError:
            conn.invalidate()
            return False
        return True

    def release(self) -> None:
        with self._guard:
            conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock_all()"))  # a pooled session would keep it
            conn.commit()
            conn.close()
        except DBAPIError:
            conn.invalidate()  # the session, and its lock, are gone already


def _lock_path(store: Store, name: str) -> Path | None:
    """The lock file of ``name`` beside a SQLite database file (the URL's query, if any, is no part of it)."""
    from .db import sqlite_file

    database = store.engine.url.database or sqlite_file(store.safe_url)  # an immutable one's engine has none
    if not database or str(database) == ":memory:":
        return None
    path = Path(database).resolve()
    return path.with_name(f"{path.name}-workers") / f"{re.sub(r'[^A-Za-z0-9.-]', '-', name)}.lock"


class _LockFile:
    """A ``flock`` on the worker's file, held by an open descriptor until released (the system lets it go
    with the process, however it ends)."""

    def __init__(self, store: Store, name: str) -> None:
        path = _lock_path(store, name)
        assert path is not None, "a SQLite file: checked before"
        self.path, self._fd = path, -1

    def take(self) -> bool:
        self.path.parent.mkdir(exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            if is_file_at(self.path, fd):
                self._fd = fd
                return True
            os.close(fd)  # a file its holder removed as it let go (checkers look at the path): again

    def confirm(self) -> None:
        """Nothing to do: a descriptor's lock lasts as long as the process."""

    def release(self) -> None:
        if self._fd >= 0:
            self.path.unlink(missing_ok=True)  # while still held: a checker finds no file, or a free lock
            os.close(self._fd)
            self._fd = -1
