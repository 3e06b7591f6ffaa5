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

VERSION = 3  # 2: no age at observation; 3: original sound by the site's flag
# Where the site's flag is unknown (a corpus crawled before it was stored): TikTok's English title of a
# sound recorded on TikTok, "original sound - <author>"; localised or retitled ones escape it.
ORIGINAL_SOUND = "original sound"


def settings(options) -> dict:
    return {"version": VERSION}


def time_features(table: pd.DataFrame) -> pd.DataFrame:
    """Posting hour and weekday (UTC), duration, fps, resolution, original sound."""
    created = numeric(table, "create_time")
    posted = pd.to_datetime(created, unit="s", utc=True, errors="coerce")  # one no calendar holds: unknown
    hour = posted.dt.hour + posted.dt.minute / 60
    width, height = numeric(table, "width"), numeric(table, "height")
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
                "original_music": original_sound(table),
            }
        ),
        "time",
    )


def original_sound(table: pd.DataFrame) -> pd.Series:
    """1 where the sound is an "original sound" recorded on TikTok (by this author or reused from
    another), 0 where it is licensed music, NaN where unknown: the site's ``music_original`` flag, else
    (corpora and exports older than it) the English title's prefix."""
    music = text(table, "music_title")
    by_title = music.str.strip().str.lower().str.startswith(ORIGINAL_SOUND).astype("float64")
    by_title = by_title.where(("music_title" in table) & (music != ""), np.nan)
    flag = numeric(table, "music_original")
    return flag.where(flag.notna(), by_title)


def compute(export, options, advance: Callable[[int], None]) -> pd.DataFrame:
    frame = time_features(export.table)
    advance(len(frame))
    return frame
