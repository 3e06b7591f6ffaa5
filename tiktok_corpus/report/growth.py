"""Plays by age since posting, from the stats snapshots (issue #15): per age bin, how many videos have
a snapshot there, how many were first sighted there, and the quartiles of their plays.

A snapshot's age is ``captured_at - create_time`` (a clock a little behind TikTok's makes it slightly
negative: it counts as age 0). A video counts once per bin, with its latest snapshot in that bin, so a
video re-observed often in one bin does not outweigh the others. A video is re-observed, and has a
growth curve, when it has snapshots in two bins or more: a crawl sights a video in many related lists
within minutes, which says nothing of its growth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

HOUR, DAY = 3_600, 86_400
# Each bin's lower edge in seconds; a bin runs up to the next one's edge (the last is open).
AGE_BINS = {
    "0-1h": 0,
    "1-6h": HOUR,
    "6h-1d": 6 * HOUR,
    "1-3d": DAY,
    "3-7d": 3 * DAY,
    "7-14d": 7 * DAY,
    "14-30d": 14 * DAY,
    ">30d": 30 * DAY,
}
ALL_VIDEOS = "all videos"
COVERAGE = "videos with a snapshot"
FIRST_SIGHTED = "first sighted"
QUARTILES = {"25%": 0.25, "median": 0.5, "75%": 0.75}


def plays_column(quartile: str, group: str) -> str:
    """The table column holding one quartile of plays (``25%``, ``median``, ``75%``) for one group."""
    return f"{quartile} plays ({group})"


@dataclass(frozen=True)
class GrowthByAge:
    """What the report's growth section shows.

    ``table`` is indexed by :data:`AGE_BINS` (in order): :data:`COVERAGE`, :data:`FIRST_SIGHTED`, then
    for each of ``groups`` the :data:`QUARTILES` of plays (:func:`plays_column`; NaN where the bin is
    empty). ``groups`` are ``is_viral = 0`` / ``is_viral = 1`` when labels were given, else
    :data:`ALL_VIDEOS`.
    """

    table: pd.DataFrame
    groups: list[str]
    videos: int
    re_observed: int  # videos with snapshots in two age bins or more
    snapshots: int  # of distinct moments: a video sighted twice at one moment (a list and a page) counts once


def growth_by_age(snapshots: pd.DataFrame, labels: pd.Series | None = None) -> GrowthByAge:
    """Summarise ``snapshots`` (:func:`tiktok_corpus.store.reports.play_snapshots`) by age bin.

    With ``labels`` (``is_viral`` indexed by video id, e.g. an export's), only the labelled videos count
    and the plays are split by class.
    """
    aged = _aged(snapshots)
    if labels is None:
        aged["group"] = ALL_VIDEOS
        groups = [ALL_VIDEOS]
    else:
        classes = pd.Series(labels.to_numpy(), index=labels.index.astype(str))
        aged = aged[aged["video_id"].isin(classes.index)].copy()
        aged["group"] = "is_viral = " + classes.reindex(aged["video_id"]).astype(int).astype(str).to_numpy()
        groups = [f"is_viral = {value}" for value in sorted(classes.astype(int).unique())]
    bins = list(AGE_BINS)
    latest_in_bin = aged.drop_duplicates(["video_id", "age_bin"], keep="last")
    first_sighting = aged.drop_duplicates("video_id", keep="first")
    table = pd.DataFrame(
        {
            COVERAGE: latest_in_bin["age_bin"].value_counts().reindex(bins, fill_value=0),
            FIRST_SIGHTED: first_sighting["age_bin"].value_counts().reindex(bins, fill_value=0),
        }
    )
    table.index = pd.Index(bins, name="age since posting")
    counted = latest_in_bin.dropna(subset=["play_count"])
    for group in groups:
        plays = counted[counted["group"] == group].groupby("age_bin", observed=False)["play_count"]
        for name, q in QUARTILES.items():
            table[plays_column(name, group)] = plays.quantile(q).reindex(bins).astype("float64")
    bins_seen = latest_in_bin.groupby("video_id").size()
    return GrowthByAge(
        table=table,
        groups=groups,
        videos=len(bins_seen),
        re_observed=int((bins_seen > 1).sum()),
        snapshots=len(aged.drop_duplicates(["video_id", "age_s"])),
    )


def _aged(snapshots: pd.DataFrame) -> pd.DataFrame:
    """``video_id, play_count, age_s, age_bin`` per snapshot, in the order given (video, then time)."""
    captured = pd.to_datetime(snapshots["captured_at"], utc=True)
    captured_s = (captured - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    age_s = (captured_s - pd.to_numeric(snapshots["create_time"])).clip(lower=0)
    edges = [*AGE_BINS.values(), np.inf]
    return pd.DataFrame(
        {
            "video_id": snapshots["video_id"].astype(str),
            "play_count": pd.to_numeric(snapshots["play_count"]).astype("float64"),
            "age_s": age_s,
            "age_bin": pd.cut(age_s, edges, right=False, labels=list(AGE_BINS)),
        }
    )
