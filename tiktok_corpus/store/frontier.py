"""The crawl's frontier: the videos whose related lists are still to be read, claimed a batch per
transaction (``random``: the paper's "random not-yet-expanded video"; ``bfs``), and each parent's outcome
when its list could not be had (failed, or back with a backoff).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, CursorResult, and_, func, or_, select, update

from . import queue
from .db import Store
from .models import Video, table_of, utcnow

_VIDEOS = table_of(Video)
# The frontier policies, by name: the order ``claim_parents`` lists pending rows in (``random`` then draws
# from the whole list: its seeded key only walks the (status, key) index).
FRONTIER_ORDERS = {"random": (Video.expand_order,), "bfs": (Video.depth, Video.first_seen_at)}


def _expandable(now: datetime) -> list:
    """What makes a frontier row claimable besides its status: a video, past any retry backoff."""
    return [Video.item_kind == "video", or_(Video.expand_not_before.is_(None), Video.expand_not_before <= now)]


def claim_parents(
    store: Store,
    strategy: str,
    worker: str,
    limit: int = 1,
    *,
    draw: random.Random | None = None,
    now: datetime | None = None,
) -> list[str]:
    """The next ``limit`` frontier rows, claimed in one transaction: ``random`` draws them uniformly from
    the claimable ones with ``draw`` (the paper's "random not-yet-expanded video"), ``bfs`` takes them by
    depth, then discovery time."""
    if strategy == "random" and draw is None:
        raise ValueError("the random frontier needs a random.Random to draw its parents with")
    now = now or utcnow()
    return queue.claim(
        store,
        "expand",
        limit,
        order_by=FRONTIER_ORDERS[strategy],
        draw=draw if strategy == "random" else None,
        where=_expandable(now),
        worker=worker,
        now=now,
    )


def held_parents(connection: Connection, parent_ids: Sequence[str], worker: str) -> set[str]:
    """Those of ``parent_ids`` that ``worker`` still claims, locked until the transaction ends (Postgres)."""
    query = select(_VIDEOS.c.id).where(
        _VIDEOS.c.id.in_(list(parent_ids)), _VIDEOS.c.expand_status == "claimed", _VIDEOS.c.expand_worker == worker
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return set(connection.scalars(query))


def fail_parent(store: Store, parent_id: str, error_kind: str, error: str, *, worker: str | None = None) -> bool:
    """A parent whose related list cannot be had (deleted, private, unparseable): ``expand`` failed. With
    ``worker``, only while it still claims the parent; returns whether it did."""
    with store.transaction() as session:
        if worker is not None and not held_parents(session.connection(), [parent_id], worker):
            return False
        queue.finish(session, "expand", parent_id, "failed", error_kind=error_kind, error=error)
        return True


def retry_parent(
    store: Store,
    parent_id: str,
    error_kind: str,
    error: str,
    *,
    max_attempts: int,
    retry_after_s: Callable[[int], float],
    worker: str | None = None,
) -> bool:
    """A parent whose related list failed in a way a later try can fix: back to the frontier with the
    error noted, not claimable for ``retry_after_s(attempts)`` seconds (so a failure that lasts - an
    outage, a block - does not use up its claims in minutes), or ``failed`` once its claims reach
    ``max_attempts``. Returns True when it goes back. With ``worker``, nothing is written unless it still
    claims the parent (False)."""
    with store.transaction() as session:
        if worker is not None and not held_parents(session.connection(), [parent_id], worker):
            return False
        attempts = session.scalar(select(Video.expand_attempts).where(Video.id == parent_id)) or 0
        if attempts < max_attempts:
            backoff = timedelta(seconds=retry_after_s(attempts))
            queue.finish(
                session,
                "expand",
                parent_id,
                "pending",
                error_kind=error_kind,
                error=error,
                expand_not_before=utcnow() + backoff,
            )
            return True
        queue.finish(session, "expand", parent_id, "failed", error_kind=error_kind, error=error)
        return False


def retry_failed_parents(store: Store) -> int:
    """``corpus crawl --retry-failed``: every failed parent back to the frontier, its claims counted
    afresh and claimable at once. Returns how many."""
    with store.transaction() as session:
        result = session.execute(
            update(Video)
            .where(Video.expand_status == "failed", Video.item_kind == "video")
            .values(expand_status="pending", expand_attempts=0, expand_not_before=None, expand_updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult, result).rowcount or 0


def restore_parents(store: Store, parent_ids: Sequence[str]) -> int:
    """Parents failed as deleted or private whose answers then proved a block's (a region or IP block
    answers 10204 too): back to the frontier. Returns how many."""
    with store.transaction() as session:
        result = session.execute(
            update(Video)
            .where(Video.id.in_(list(parent_ids)), Video.expand_status == "failed")
            .values(expand_status="pending", expand_error_kind="unavailable_run", expand_updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult, result).rowcount or 0


def frontier_state(store: Store) -> tuple[int, int]:
    """(claimable, waiting) frontier rows across every process: those :func:`claim_parents` could take
    now, and those it may take later (claimed and still leased, or pending in a retry backoff). A crawl
    whose frontier has neither is over; rows no claim can take (a post that turned private) count in
    neither, so they never keep it waiting."""
    now = utcnow()
    claimable = queue.count_claimable(store, "expand", where=_expandable(now))
    with store.sessions() as session:
        waiting = session.scalar(
            select(func.count())
            .select_from(Video)
            .where(
                or_(
                    and_(Video.expand_status == "claimed", Video.expand_lease_until >= now),
                    and_(Video.expand_status == "pending", Video.item_kind == "video", Video.expand_not_before > now),
                )
            )
        )
    return claimable, waiting or 0
