"""The ``crawl_runs`` bookkeeping: one row per ``corpus crawl`` invocation, its parameters and final counts."""

from __future__ import annotations

import socket
from typing import Any, cast

from sqlalchemy import CursorResult, select, update

from .db import Store
from .models import CrawlRun, utcnow
from .workers import dead_workers, worker_name

# A crawl run that ended so may never have reached its site: a typo'd --base-url, a dead port.
NEVER_REACHED_THE_SITE = ("failed", "unreachable")


def start_run(store: Store, params: dict[str, Any]) -> int:
    """A ``crawl_runs`` row for this invocation, ``running`` until :func:`end_run`; returns its id."""
    worker = worker_name(store)  # before the transaction: a first use records the worker
    with store.transaction() as session:
        run = CrawlRun(params=params, host=socket.gethostname(), worker=worker, status="running")
        session.add(run)
        session.flush()
        return run.id


def end_run(store: Store, run_id: int, status: str, counts: dict[str, Any]) -> None:
    with store.transaction() as session:
        session.execute(
            update(CrawlRun).where(CrawlRun.id == run_id).values(status=status, finished_at=utcnow(), counts=counts)
        )


def close_killed_runs(store: Store) -> int:
    """Mark ``killed`` the runs still ``running`` whose worker is known gone (``kill -9``, a crash, a killed
    container: :func:`.dead_workers`): no one else will close them. Returns how many."""
    with store.sessions() as session:
        running = session.scalars(
            select(CrawlRun.worker).where(CrawlRun.status == "running", CrawlRun.worker.is_not(None))
        ).all()
    dead = dead_workers(store, (worker for worker in running if worker))
    if not dead:
        return 0
    with store.transaction() as session:
        result = session.execute(
            update(CrawlRun)
            .where(CrawlRun.status == "running", CrawlRun.worker.in_(dead))
            .values(status="killed", finished_at=utcnow())
        )
        return cast(CursorResult, result).rowcount or 0


def last_crawl_base_url(store: Store) -> str | None:
    """The site the latest crawl run that reached it went to (the ``base_url`` of its parameters; a run
    that failed or got no answer may have named a wrong one); None when no such run recorded one."""
    base_url = CrawlRun.params["base_url"].as_string()
    reached = CrawlRun.status.not_in(NEVER_REACHED_THE_SITE)
    with store.sessions() as session:
        query = select(base_url).where(base_url.is_not(None), reached).order_by(CrawlRun.id.desc()).limit(1)
        return session.scalar(query)
