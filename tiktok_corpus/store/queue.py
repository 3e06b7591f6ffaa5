"""The work queue: stages claim video rows by status, with leases that expire.

``claim`` takes up to N rows of a stage in one of the given statuses (or whose lease has run out),
marks them ``claimed`` with a lease and a worker name, counts the attempt, and returns their ids.
On Postgres the selection uses ``FOR UPDATE SKIP LOCKED`` so concurrent processes never take the same
row; on SQLite the transaction begins IMMEDIATE (see :mod:`.db`), which serialises claimers.
``finish`` records the outcome in the caller's transaction, so the outcome lands with the work's
own last write (a file's row, an expansion's edges) or not at all.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, CursorResult, and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from .models import STAGES, Video, table_of, utcnow
from .workers import confirm_presence, dead_workers, worker_name

if TYPE_CHECKING:  # DEFAULT_LEASE_S is read by the CLI's options: no migrations loaded for it
    from .db import Store

DEFAULT_LEASE_S = 600.0


def _col(stage: str, name: str):
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    return getattr(Video, f"{stage}_{name}")


def _claimable_kinds(stage: str, statuses: Iterable[str], now: datetime) -> tuple:
    """The two kinds of claimable row, in the order ``claim`` takes them: a claim whose lease ran
    out, then a row in one of the input statuses."""
    status, lease = _col(stage, "status"), _col(stage, "lease_until")
    return and_(status == "claimed", lease < now), status.in_(list(statuses))


def count_claimable(store: Store, stage: str, *, statuses: Iterable[str] = ("pending",), where: Sequence = ()) -> int:
    """How many rows ``claim`` could hand out now (progress-bar totals)."""
    with store.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Video).where(or_(*_claimable_kinds(stage, statuses, utcnow())), *where)
            )
            or 0
        )


def claim(
    store: Store,
    stage: str,
    limit: int,
    *,
    statuses: Iterable[str] = ("pending",),
    where: Sequence = (),
    order_by: Sequence = (),
    draw: random.Random | None = None,
    worker: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    now: datetime | None = None,
) -> list[str]:
    """Claim up to ``limit`` rows for ``stage``; returns their ids (possibly empty).

    Claims whose lease ran out are taken first, then rows in ``statuses`` in ``order_by`` order, or with
    ``draw`` a uniformly random sample of them (:func:`_drawn`). One select per kind rather than one with
    their OR: each walks the stage's (status, order) index and stops at ``limit``, where the OR made the
    database sort every pending row on every claim.
    """
    now = now or utcnow()
    worker = worker or worker_name(store)  # before the transaction: a first use records the worker
    confirm_presence(store)
    order = [*order_by, Video.id]
    locking = store.dialect == "postgresql"
    with store.transaction() as session:
        connection = session.connection()  # Core: the ORM's handling of these statements cost more than the SQL
        ids: list[str] = []
        expired, waiting = _claimable_kinds(stage, statuses, now)
        for condition in (expired, waiting):
            if len(ids) >= limit:
                continue
            query = select(Video.id).where(condition, *where).order_by(*order)
            if draw is not None and condition is waiting:
                ids.extend(_drawn(connection, query, draw, limit - len(ids), locking=locking))
                continue
            query = query.limit(limit - len(ids))
            ids.extend(connection.scalars(query.with_for_update(skip_locked=True) if locking else query))
        if ids:
            connection.execute(
                _claim_statement(stage),
                {
                    "ids": ids,
                    "claim_lease_until": now + timedelta(seconds=lease_s),
                    "claim_worker": worker,
                    "claim_now": now,
                },
            )
    return ids


def _drawn(connection: Connection, listed, draw: random.Random, count: int, *, locking: bool) -> list[str]:
    """``count`` of the rows ``listed`` selects, drawn uniformly at random by ``draw`` from the whole list
    (read unlocked), then locked where another process has not taken them meanwhile (Postgres), in the
    order drawn. A key fixed on each row when it was inserted, its smallest taken first, is no such draw
    in a growing frontier: rows left waiting are those whose keys lost, and each new row beats them."""
    rows = list(connection.scalars(listed))
    picked = draw.sample(rows, min(count, len(rows)))
    if locking and picked:
        kept = select(Video.id).where(Video.id.in_(picked), listed.whereclause)  # still claimable
        held = set(connection.scalars(kept.with_for_update(skip_locked=True)))
        picked = [video_id for video_id in picked if video_id in held]
    return picked


@functools.cache
def _claim_statement(stage: str):
    """Mark rows claimed by a worker with a lease, counting the attempt; built once per stage."""
    videos = table_of(Video)
    return (
        update(videos)
        .where(videos.c.id.in_(bindparam("ids", expanding=True)))
        .values(
            {
                f"{stage}_status": "claimed",
                f"{stage}_lease_until": bindparam("claim_lease_until", type_=videos.c[f"{stage}_lease_until"].type),
                f"{stage}_worker": bindparam("claim_worker", type_=videos.c[f"{stage}_worker"].type),
                f"{stage}_attempts": videos.c[f"{stage}_attempts"] + 1,
                f"{stage}_updated_at": bindparam("claim_now", type_=videos.c[f"{stage}_updated_at"].type),
            }
        )
    )


def finish(
    session: Session,
    stage: str,
    video_id: str,
    status: str,
    *,
    error_kind: str | None = None,
    error: str | None = None,
    **also: Any,
) -> None:
    """Record a stage's outcome for one row inside the caller's transaction; ``also`` sets further columns."""
    finish_many(session.connection(), stage, [video_id], status, error_kind=error_kind, error=error, **also)


def finish_many(
    connection: Connection,
    stage: str,
    video_ids: Sequence[str],
    status: str,
    *,
    error_kind: str | None = None,
    error: str | None = None,
    **also,
) -> None:
    """Record one outcome for several rows in one statement, in the connection's transaction; ``also``
    sets further columns of theirs.

    Every expansion and every landed file runs this, so the statement is built once per shape (Core,
    bound parameters): the ORM's handling of an UPDATE cost more than the SQL."""
    values = {
        f"{stage}_status": status,
        f"{stage}_lease_until": None,
        f"{stage}_error_kind": error_kind,
        f"{stage}_error": (error or "")[:2000] or None,
        f"{stage}_updated_at": utcnow(),
        **also,
    }
    connection.execute(
        _outcome_statement(tuple(values)),
        {"ids": list(video_ids)} | {f"v_{name}": value for name, value in values.items()},
    )


@functools.cache
def _outcome_statement(columns: tuple[str, ...]):
    videos = table_of(Video)
    return (
        update(videos)
        .where(videos.c.id.in_(bindparam("ids", expanding=True)))
        .values({name: bindparam(f"v_{name}", type_=videos.c[name].type) for name in columns})
    )


def release(
    store: Store, stage: str, ids: Iterable[str], status: str = "pending", *, worker: str | None = None
) -> None:
    """Give claimed rows back untouched (a worker shutting down cleanly, a block): the claim's attempt
    is given back too, as nothing was tried, so stops and restarts never use up a row's attempts.
    With ``worker``, only the rows it still claims (one whose lease lapsed is another worker's now)."""
    ids = list(ids)
    if ids:
        which = Video.id.in_(ids) if worker is None else and_(Video.id.in_(ids), _col(stage, "worker") == worker)
        _unclaim(store, stage, which, status, untried=True)


def renew(store: Store, stage: str, ids: Iterable[str], *, worker: str, lease_s: float = DEFAULT_LEASE_S) -> int:
    """Extend by ``lease_s`` from now the claims ``worker`` still holds among ``ids`` (work that outlasts a
    lease stays this worker's); returns how many."""
    ids = list(ids)
    if not ids:
        return 0
    confirm_presence(store)
    with store.transaction() as session:
        result = session.execute(
            update(Video)
            .where(Video.id.in_(ids), _col(stage, "status") == "claimed", _col(stage, "worker") == worker)
            .values({f"{stage}_lease_until": utcnow() + timedelta(seconds=lease_s)})
            .execution_options(synchronize_session=False)
        )
        return cast(CursorResult, result).rowcount or 0


def _unclaim(store: Store, stage: str, which, status: str = "pending", *, untried: bool = False) -> int:
    """Put the claimed rows matching ``which`` back into ``status`` (``untried``: their attempt given
    back); returns how many."""
    with store.transaction() as session:
        result = session.execute(_unclaiming(stage, which, status, untried=untried))
        return cast(CursorResult, result).rowcount or 0


def give_back_in(connection: Connection, stage: str, ids: Sequence[str]) -> None:
    """:func:`release` in the caller's transaction: the rows go back with the write that decided so."""
    connection.execute(_unclaiming(stage, Video.id.in_(list(ids)), "pending", untried=True))


def _unclaiming(stage: str, which, status: str, *, untried: bool):
    values: dict[str, Any] = {f"{stage}_status": status, f"{stage}_lease_until": None, f"{stage}_updated_at": utcnow()}
    if untried:
        attempts = _col(stage, "attempts")
        values[f"{stage}_attempts"] = case((attempts > 0, attempts - 1), else_=0)
    return (
        update(Video)
        .where(_col(stage, "status") == "claimed", which)
        .values(values)
        .execution_options(synchronize_session=False)
    )


def reclaim_dead(store: Store, stage: str) -> int:
    """Release the claims of workers known gone (kill -9, out of memory, a container killed: see
    :func:`.dead_workers`), on this host or another. Without this a rerun would wait out their lease, and
    meanwhile finish saying it was done. Returns how many rows went back to ``pending``.
    """
    worker = _col(stage, "worker")
    with store.sessions() as session:
        holders = session.scalars(select(worker).where(_col(stage, "status") == "claimed").distinct()).all()
    dead = dead_workers(store, (holder for holder in holders if holder))
    return _unclaim(store, stage, worker.in_(dead)) if dead else 0
