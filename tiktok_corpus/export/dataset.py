"""The rows an export takes: exportable videos with their latest stats, typed, and their hashtags."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import PAPER_MIN_FRAMES
from ..store.db import Store
from ..store.exports import exportable_hashtags, exportable_rows


def load_dataset(
    store: Store, *, min_frames: int = PAPER_MIN_FRAMES, as_of: datetime | None = None
) -> tuple[pd.DataFrame, dict]:
    """Exportable videos joined with their latest stats snapshot (at/before ``as_of``), author, media.

    One set-based query. Returns ``(rows, selection)``: ``rows`` sorted by ``video_id`` with a
    ``media_path`` column (relative to the data dir), ``selection`` the filter and exclusion counts.
    """
    rows = exportable_rows(store, min_frames=min_frames, as_of=as_of)
    has_stats = rows["stats_captured_at"].notna()
    rows = rows[has_stats].reset_index(drop=True)
    rows["stats_captured_at"] = pd.to_datetime(rows["stats_captured_at"], utc=True)
    for column in (
        "play_count",
        "like_count",
        "comment_count",
        "share_count",
        "collect_count",
        "follower_count",
        "create_time",
        "frame_count",
        "width",
        "height",
    ):
        rows[column] = rows[column].astype("Int64")
    rows["has_audio"] = rows["has_audio"].astype("boolean")
    selection = {
        "item_kind": "video",
        "download_status": "downloaded",
        "probe_status": "valid",
        "min_frames": min_frames,
        "as_of": as_of.isoformat() if as_of else None,
        "stats": "latest snapshot per video" + (" at or before as_of" if as_of else ""),
        "excluded_no_stats": int((~has_stats).sum()),
    }
    return rows, selection


def hashtag_lists(store: Store, video_ids: pd.Series, *, min_frames: int) -> pa.ListArray:
    """Each video's hashtag names (sorted), aligned with ``video_ids``; videos without tags get []."""
    tags = exportable_hashtags(store, min_frames=min_frames)
    tags["row"] = pd.Index(video_ids).get_indexer(tags["video_id"])
    tags = tags[tags["row"] >= 0].sort_values(["row", "name"], kind="stable")
    lengths = np.bincount(tags["row"].to_numpy(), minlength=len(video_ids))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(tags["name"].to_numpy(), type=pa.string()))
