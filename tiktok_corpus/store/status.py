"""Counts per stage and status: what `corpus status` shows."""

from __future__ import annotations

from sqlalchemy import func, select

from .db import Store
from .models import STAGES, MediaFile, RelatedEdge, StatsSnapshot, Video


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
