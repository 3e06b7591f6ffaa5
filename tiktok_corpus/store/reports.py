"""The report's statements: the crawl's own history and the most used hashtags, as pandas frames."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select

from .db import Store
from .models import Hashtag, MediaFile, Video, VideoHashtag


def crawl_history(store: Store) -> pd.DataFrame:
    """One row per discovered item: ``id, first_seen_at, depth, source, downloaded_at`` (null: no file)."""
    query = select(Video.id, Video.first_seen_at, Video.depth, Video.source, MediaFile.downloaded_at).outerjoin(
        MediaFile, MediaFile.video_id == Video.id
    )
    with store.engine.connect() as conn:
        return pd.read_sql(query, conn)


def top_hashtags(store: Store, limit: int) -> pd.DataFrame:
    """``name, videos``: the ``limit`` hashtags on the most videos, most first (ties by name)."""
    count = func.count(VideoHashtag.video_id)
    query = (
        select(Hashtag.name, count.label("videos"))
        .join(VideoHashtag, VideoHashtag.hashtag_id == Hashtag.id)
        .group_by(Hashtag.name)
        .order_by(count.desc(), Hashtag.name)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return pd.read_sql(query, conn)
