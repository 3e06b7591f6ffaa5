"""The statements of ``corpus browse``: every video with its latest counts (the grid), the videos of a
hashtag, and one video's details (snapshots over time, related videos both ways, probe, download
attempts). Reads only.

The grid is read whole, once per refresh, into a frame the web app sorts and pages in memory (numpy
over 100,000 rows takes milliseconds), because its sort keys mix database columns with an export's
labels and a run's scores that live in files, not tables. The latest snapshot per video is found
through the ``stats_snapshots.video_id`` index (the largest id per video), one pass.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from .db import Store
from .exports import PROFILE_COUNTS
from .frames import read_frame
from .models import (
    Author,
    AuthorSnapshot,
    DownloadAttempt,
    Hashtag,
    MediaFile,
    RelatedEdge,
    StatsSnapshot,
    Video,
    VideoHashtag,
)

COUNTS = ("play_count", "like_count", "comment_count", "share_count")


def grid_rows(store: Store) -> pd.DataFrame:
    """One row per video item: ``video_id, author, desc, create_time, download_status, probe_status``,
    the latest :data:`COUNTS` (null without a snapshot), ``media_path`` (relative to the data dir) and
    ``sha256`` (null without a file); ordered by id."""
    latest = (  # the latest with counts: a list item sighted without its stats leaves a snapshot of none
        select(StatsSnapshot.video_id, func.max(StatsSnapshot.id).label("snapshot_id"))
        .where(StatsSnapshot.play_count.is_not(None))
        .group_by(StatsSnapshot.video_id)
        .subquery()
    )
    query = (
        select(
            Video.id.label("video_id"),
            Author.unique_id.label("author"),
            Video.desc,
            Video.create_time,
            Video.download_status,
            Video.probe_status,
            *(getattr(StatsSnapshot, c) for c in COUNTS),
            MediaFile.path.label("media_path"),
            MediaFile.sha256,
        )
        .outerjoin(Author, Author.id == Video.author_id)
        .outerjoin(latest, latest.c.video_id == Video.id)
        .outerjoin(StatsSnapshot, StatsSnapshot.id == latest.c.snapshot_id)
        .outerjoin(MediaFile, MediaFile.video_id == Video.id)
        .where(Video.item_kind == "video")
        .order_by(Video.id)
    )
    rows = read_frame(store.engine, query)
    for column in COUNTS:
        rows[column] = rows[column].astype("Int64")
    return rows


def hashtag_video_ids(store: Store, name: str) -> set[str]:
    """Ids of the videos tagged ``name`` (without its ``#``, any case). The hashtag's id first (a pass
    over the hashtags: ``lower(name)`` has no index), then its videos through ``ix_video_hashtags_hashtag``;
    as a join, SQLite would scan every video's hashtag links instead."""
    tag = select(Hashtag.id).where(func.lower(Hashtag.name) == name.lower().lstrip("#"))
    query = select(VideoHashtag.video_id).where(VideoHashtag.hashtag_id.in_(tag))
    with store.engine.connect() as conn:
        return set(conn.scalars(query))


def video_detail(store: Store, video_id: str) -> dict | None:
    """A video's row with its author, file and probe columns as one dict, or None when unknown."""
    query = (
        select(
            Video.id.label("video_id"),
            Video.desc,
            Video.create_time,
            Video.item_kind,
            Video.source,
            Video.depth,
            Video.first_seen_at,
            Video.last_seen_at,
            Video.download_status,
            Video.download_error,
            Video.probe_status,
            Video.probe_error,
            Author.unique_id.label("author"),
            Author.follower_count,
            *(c.label(c.key) for c in MediaFile.__table__.columns if c.key != "video_id"),
        )
        .outerjoin(Author, Author.id == Video.author_id)
        .outerjoin(MediaFile, MediaFile.video_id == Video.id)
        .where(Video.id == video_id)
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def video_snapshots(store: Store, video_id: str) -> pd.DataFrame:
    """Every stats snapshot of a video, oldest first: ``captured_at``, the counts, ``source``, ``age_s``
    and ``clock`` (whose clock ``captured_at`` is on: ``site`` or ``local``)."""
    columns = [*COUNTS, "collect_count", "source", "age_s", "clock"]
    return _over_time(store, StatsSnapshot, StatsSnapshot.video_id == video_id, columns)


def author_snapshots(store: Store, video_id: str) -> pd.DataFrame:
    """Every snapshot of the video's author (any of their videos' sightings), oldest first:
    ``captured_at`` and the author's :data:`~.exports.PROFILE_COUNTS`."""
    author = select(Video.author_id).where(Video.id == video_id).scalar_subquery()
    return _over_time(store, AuthorSnapshot, AuthorSnapshot.author_id == author, PROFILE_COUNTS)


def _over_time(store: Store, model, where, columns) -> pd.DataFrame:
    """``captured_at`` and ``columns`` of a snapshot table's rows matching ``where``, oldest first (rows of
    one moment in the order they were stored)."""
    query = (
        select(model.captured_at, *(getattr(model, c) for c in columns))
        .where(where)
        .order_by(model.captured_at, model.id)
    )
    with store.engine.connect() as conn:
        return pd.read_sql(query, conn)


def related_videos(store: Store, video_id: str) -> dict[str, list[tuple[str, int]]]:
    """The crawl's edges at a video, both ways: ``{"parents": [(id, rank)], "children": [(id, rank)]}``
    (parents listed it in their related list; children are in its own), by rank. Two lookups, each
    through an index (the primary key's ``parent_id``, ``ix_related_edges_child``): one ``OR`` of both
    columns would scan every edge."""

    def linked(conn, this, other) -> list[tuple[str, int]]:
        query = select(other, RelatedEdge.rank).where(this == video_id).order_by(RelatedEdge.rank, other)
        return [(linked_id, rank) for linked_id, rank in conn.execute(query)]

    with store.engine.connect() as conn:
        return {
            "parents": linked(conn, RelatedEdge.child_id, RelatedEdge.parent_id),
            "children": linked(conn, RelatedEdge.parent_id, RelatedEdge.child_id),
        }


def media_path(store: Store, video_id: str) -> str | None:
    """Where a video's downloaded file is, relative to the data dir; None without one."""
    with store.engine.connect() as conn:
        return conn.scalar(select(MediaFile.path).where(MediaFile.video_id == video_id))


def download_attempts(store: Store, video_id: str) -> pd.DataFrame:
    """A video's download attempts, oldest first."""
    query = (
        select(
            DownloadAttempt.started_at,
            DownloadAttempt.method,
            DownloadAttempt.url_kind,
            DownloadAttempt.http_status,
            DownloadAttempt.bytes,
            DownloadAttempt.duration_s,
            DownloadAttempt.outcome,
            DownloadAttempt.message,
        )
        .where(DownloadAttempt.video_id == video_id)
        .order_by(DownloadAttempt.started_at, DownloadAttempt.id)
    )
    with store.engine.connect() as conn:
        return pd.read_sql(query, conn)
