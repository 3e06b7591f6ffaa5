"""``time``: when the video was posted, and what its file is like.

The hour and weekday are UTC (``create_time`` is unix seconds; the poster's time zone is unknown).
The age at which the counts were observed is left out: it is when the label was measured, not a property
of the video (an older video has simply had longer to gather plays), and in a plain export it alone
"beat every baseline" with no content signal at all; an ``--at-age`` export has it constant.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .columns import named, numeric, text

VERSION = 2  # 2: no age at observation
# TikTok titles a sound the author recorded "original sound - <author>"; any other title is reused music.
ORIGINAL_SOUND = "original sound"


def settings(options) -> dict:
    return {"version": VERSION}


def time_features(table: pd.DataFrame) -> pd.DataFrame:
    """Posting hour and weekday (UTC), duration, fps, resolution, original sound."""
    created = numeric(table, "create_time")
    posted = pd.to_datetime(created, unit="s", utc=True)
    hour = posted.dt.hour + posted.dt.minute / 60
    width, height = numeric(table, "width"), numeric(table, "height")
    music = text(table, "music_title")
    original = music.str.strip().str.lower().str.startswith(ORIGINAL_SOUND).astype("float64")
    has_music_column = "music_title" in table
    return named(
        pd.DataFrame(
            {
                "hour": hour,
                "hour_sin": np.sin(2 * np.pi * hour / 24),
                "hour_cos": np.cos(2 * np.pi * hour / 24),
                "weekday": posted.dt.day_of_week,
                "duration_s": numeric(table, "duration_s"),
                "fps": numeric(table, "fps"),
                "width": width,
                "height": height,
                "aspect": width / height,
                "original_music": original.where(has_music_column & (music != ""), np.nan),
            }
        ),
        "time",
    )


def compute(export, options, advance: Callable[[int], None]) -> pd.DataFrame:
    frame = time_features(export.table)
    advance(len(frame))
    return frame
