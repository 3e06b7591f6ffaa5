"""The ``crawl_runs`` bookkeeping: one row per ``corpus crawl`` invocation, its parameters and final counts."""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy import update

from .db import Store
from .models import CrawlRun, utcnow


def start_run(store: Store, params: dict[str, Any]) -> int:
    """A ``crawl_runs`` row for this invocation, ``running`` until :func:`end_run`; returns its id."""
    with store.transaction() as session:
        run = CrawlRun(params=params, host=socket.gethostname(), status="running")
        session.add(run)
        session.flush()
        return run.id


def end_run(store: Store, run_id: int, status: str, counts: dict[str, Any]) -> None:
    with store.transaction() as session:
        session.execute(
            update(CrawlRun).where(CrawlRun.id == run_id).values(status=status, finished_at=utcnow(), counts=counts)
        )
