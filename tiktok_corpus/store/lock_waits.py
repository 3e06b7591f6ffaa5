"""Who a Postgres schema change waits for: a migration needs locks that another session may hold for as
long as its transaction stays open (a ``psql`` left in ``BEGIN``, another ``corpus db upgrade``), and
``corpus db upgrade`` then waited without a word. :func:`watching_lock_waits` names the holders."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, event, text

log = logging.getLogger(__name__)

LOCK_WAIT_CHECK_S = 5.0  # how long a wait goes unsaid: a migration's locks are usually granted at once

# The sessions holding what any of ``pids`` waits for (a table's lock, the migrations' advisory lock).
_HOLDERS = text(
    "SELECT pid, usename, application_name, state, xact_start FROM pg_stat_activity WHERE pid IN "
    "(SELECT unnest(pg_blocking_pids(waiting)) FROM unnest(CAST(:pids AS integer[])) AS waiting) ORDER BY pid"
)


@contextmanager
def watching_lock_waits(engine: Engine, watcher: Engine, on_wait: Callable[[str], None]) -> Iterator[None]:
    """While the block runs, call ``on_wait`` with a line naming the sessions that the connections
    ``engine`` opens in it wait for, whenever that set changes: looked at every :data:`LOCK_WAIT_CHECK_S`
    through ``watcher``, an engine of the same database whose connections are not among those watched.
    Nothing on SQLite, whose writers wait out a busy timeout instead."""
    if engine.dialect.name != "postgresql":
        yield
        return
    waiting: set[int] = set()

    def note_pid(dbapi_connection, _record) -> None:
        # libpq has it (psycopg 3 and 2 say so): no query on the new connection. Another driver: unwatched.
        pid = getattr(getattr(dbapi_connection, "info", None), "backend_pid", None)
        if isinstance(pid, int):
            waiting.add(pid)

    event.listen(engine, "connect", note_pid)
    done = threading.Event()
    thread = threading.Thread(target=_watch, args=(watcher, waiting, on_wait, done), name="lock-waits", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        event.remove(engine, "connect", note_pid)
        thread.join()


def _watch(engine: Engine, waiting: set[int], on_wait: Callable[[str], None], done: threading.Event) -> None:
    said: list[int] = []
    while not done.wait(LOCK_WAIT_CHECK_S):
        try:
            with engine.connect() as connection:
                holders = connection.execute(_HOLDERS, {"pids": sorted(waiting)}).all()
        except Exception as exc:  # the watcher must never stop the migration it watches
            log.debug("cannot look for lock holders: %s", exc)
            return
        if [row.pid for row in holders] != said:
            said = [row.pid for row in holders]
            if holders:
                on_wait(_holders_line(holders))


def _holders_line(holders) -> str:
    sessions = "; ".join(
        f"pid {row.pid} ({row.usename or '?'}, {row.application_name or 'no application name'}, {row.state or '?'}"
        + (f", its transaction begun {row.xact_start:%Y-%m-%d %H:%M:%S %Z}" if row.xact_start else "")
        + ")"
        for row in holders
    )
    pids = ", ".join(str(row.pid) for row in holders)
    return (
        f"waiting for a lock that another session holds: {sessions}. The upgrade goes on once its "
        f"transaction ends (commit or roll it back, or end it: SELECT pg_terminate_backend(pid) for {pids})"
    )
