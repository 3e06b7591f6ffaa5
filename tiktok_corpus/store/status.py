"""Counts per stage and status: what `corpus status` shows."""

from __future__ import annotations

from sqlalchemy import case, func, select

from .db import Store
from .models import STAGES, MediaFile, RelatedEdge, StatsSnapshot, TrackTarget, Video, utcnow
from .workers import worker_states


def stage_counts(store: Store) -> dict:
    """``{"videos": n, "stages": {stage: {status: n}}, "item_kinds": {...}, "expand_methods": {...}, ...}``
    in one read (one moment on Postgres too); ``expand_methods`` splits the expansions by the method that
    got their related list."""
    with store.consistent_read() as session:
        stages = {}
        for stage in STAGES:
            status = getattr(Video, f"{stage}_status")
            rows = session.execute(select(status, func.count()).group_by(status)).all()
            stages[stage] = {name: count for name, count in sorted(rows)}
        kinds = dict(session.execute(select(Video.item_kind, func.count()).group_by(Video.item_kind)).all())
        methods = session.execute(
            select(Video.expand_method, func.count())
            .where(Video.expand_method.is_not(None))
            .group_by(Video.expand_method)
        ).all()
        return {
            "videos": session.scalar(select(func.count()).select_from(Video)) or 0,
            "item_kinds": kinds,
            "expand_methods": {method: count for method, count in sorted(methods)},
            "stages": stages,
            "edges": session.scalar(select(func.count()).select_from(RelatedEdge)) or 0,
            "stats_snapshots": session.scalar(select(func.count()).select_from(StatsSnapshot)) or 0,
            "media_files": session.scalar(select(func.count()).select_from(MediaFile)) or 0,
        }


def claim_holders(store: Store) -> list[dict]:
    """Who holds the claimed rows of each queue (``track``: videos' target ages) and whether that worker
    runs (:func:`.worker_states`): ``gone``, its rows taken back by the stage's next run; ``unknown``, left
    to their lease; ``lapsed``, unknown with every lease over (the next claim takes the rows).
    ``[{"stage", "worker", "rows", "state"}]``, by stage and worker."""
    held: list[tuple[str, str, int, int]] = []
    now = utcnow()
    with store.sessions() as session:
        queues = [
            (
                stage,
                getattr(Video, f"{stage}_worker"),
                getattr(Video, f"{stage}_status"),
                getattr(Video, f"{stage}_lease_until"),
            )
            for stage in STAGES
        ]
        queues.append(("track", TrackTarget.worker, TrackTarget.status, TrackTarget.lease_until))
        for stage, worker, status, lease_until in queues:
            found = session.execute(
                select(worker, func.count(), func.count(case((lease_until > now, 1))))
                .where(status == "claimed")
                .group_by(worker)
            )
            held += [(stage, name, count, leased) for name, count, leased in found if name]
    states = worker_states(store, {name for _, name, _, _ in held})
    return [
        {
            "stage": stage,
            "worker": name,
            "rows": count,
            "state": "lapsed" if states[name] == "unknown" and not leased else states[name],
        }
        for stage, name, count, leased in sorted(held)
    ]
