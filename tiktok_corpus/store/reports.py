"""The report's statements: the crawl's own history, the most used hashtags and every video's stats
snapshots (plays by age), as pandas frames; and where the report lives, which ``corpus report`` writes
and ``corpus browse`` serves (neither stage may import the other)."""

from __future__ import annotations

from pathlib import PurePath, PurePosixPath
from typing import TypeVar

import pandas as pd
from sqlalchemy import func, select

from .db import Store
from .frames import read_frame
from .models import Hashtag, MediaFile, StatsSnapshot, Video, VideoHashtag

# The report's page under the data dir, unless ``corpus report --out`` names another.
REPORT_PAGE = PurePosixPath("report/report.html")

P = TypeVar("P", bound=PurePath)


def report_figures_dir(page: P) -> P:
    """The folder of a report page's PNGs: beside it, named after it (``report_figures``)."""
    return page.with_name(f"{page.stem}_figures")


def crawl_history(store: Store) -> pd.DataFrame:
    """One row per discovered video (item kind ``video``: no photo post, ad or private entry):
    ``id, first_seen_at, depth, source, downloaded_at`` (null: no file)."""
    query = (
        select(Video.id, Video.first_seen_at, Video.depth, Video.source, MediaFile.downloaded_at)
        .outerjoin(MediaFile, MediaFile.video_id == Video.id)
        .where(Video.item_kind == "video")
    )
    return read_frame(store.engine, query)


def top_hashtags(store: Store, limit: int) -> pd.DataFrame:
    """``name, videos``: the ``limit`` hashtags on the most videos (item kind ``video``), most first (ties
    by name)."""
    count = func.count(VideoHashtag.video_id)
    query = (
        select(Hashtag.name, count.label("videos"))
        .join(VideoHashtag, VideoHashtag.hashtag_id == Hashtag.id)
        .join(Video, Video.id == VideoHashtag.video_id)
        .where(Video.item_kind == "video")
        .group_by(Hashtag.name)
        .order_by(count.desc(), Hashtag.name)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return pd.read_sql(query, conn)


def play_snapshots(store: Store) -> pd.DataFrame:
    """``video_id, create_time, captured_at, play_count``: every stats snapshot with a play count of a
    video (item kind ``video``) whose posting time is known, so its age at the snapshot is ``captured_at -
    create_time``; ordered by video, capture time and id."""
    query = (
        select(StatsSnapshot.video_id, Video.create_time, StatsSnapshot.captured_at, StatsSnapshot.play_count)
        .join(Video, Video.id == StatsSnapshot.video_id)
        .where(Video.item_kind == "video", Video.create_time.is_not(None), StatsSnapshot.play_count.is_not(None))
        .order_by(StatsSnapshot.video_id, StatsSnapshot.captured_at, StatsSnapshot.id)
    )
    return read_frame(store.engine, query)
