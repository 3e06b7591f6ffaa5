"""Engagement at a fixed age since posting (``corpus export --at-age``), pure and vectorised.

A snapshot's age is ``captured_at - create_time``. For a target age ``A`` and each video:

* ``exact``: a snapshot sits at age ``A``: its counts, as they are (the last one stored, if several).
* ``interpolated``: the nearest snapshot before ``A`` (age ``a0``, count ``c0``) and the nearest after
  (``a1``, ``c1``) bracket it: each count is ``expm1(log1p(c0) + (A - a0) / (a1 - a0) *
  (log1p(c1) - log1p(c0)))``, linear in age on the ``log1p`` scale.
* ``within_tolerance``: the snapshots do not bracket ``A``, but the nearest one (the last, when all are
  younger; the first, when all are older) is at most ``tolerance`` away: its counts, as they are.
* otherwise the video is left out, with a reason: ``no_snapshots``, ``no_create_time``, ``too_young``
  (every snapshot before ``A``, the last more than ``tolerance`` before) or ``too_old_at_first_sighting``
  (first seen more than ``tolerance`` after ``A``).

A count missing (null) in a snapshot used stays missing; the labels take it as 0, as for the latest
snapshot.

:func:`early_growth` gives the growth features of such an export: plays at the early ages
(:data:`~.format.EARLY_AGES_S` below the label's age, by the same rule with the tolerance capped at a
quarter of the early age) and the log growth per day between consecutive ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .format import EARLY_AGES_S

COUNTS = ("play_count", "like_count", "comment_count", "share_count", "collect_count")
METHOD = "log-linear between bracketing snapshots"
BASES = ("exact", "interpolated", "within_tolerance")
EXCLUSION_REASONS = ("no_snapshots", "no_create_time", "too_young", "too_old_at_first_sighting")


def counts_at_age(videos: pd.DataFrame, snapshots: pd.DataFrame, *, at_age_s: int, tolerance_s: int) -> pd.DataFrame:
    """Each video's counts at ``at_age_s`` seconds after posting.

    ``videos`` has one row per video (``video_id``, ``create_time`` in epoch seconds, nullable);
    ``snapshots`` has ``video_id``, ``captured_at`` and the :data:`COUNTS`, ordered by video, capture
    time and insertion (:func:`tiktok_corpus.store.exports.exportable_snapshots`). Returns a frame on
    ``videos``' index with the five counts (``Float64``), ``stats_captured_at`` (the moment they
    describe: ``create_time + at_age_s``, UTC), ``age_basis`` (one of :data:`BASES`) and ``excluded``
    (one of :data:`EXCLUSION_REASONS`); a row has either a basis or a reason, never both.
    """
    target = float(at_age_s)
    ids = pd.Index(videos["video_id"])
    created = pd.to_numeric(videos["create_time"], errors="coerce").astype("float64").to_numpy()
    snaps = snapshots[snapshots["video_id"].isin(ids)]
    seen = ids.isin(snaps["video_id"].unique())

    row = ids.get_indexer(snaps["video_id"])
    age = _epoch_seconds(snaps["captured_at"]) - created[row]
    snaps = snaps.assign(age=age)[~np.isnan(age)]
    # Stable sort: snapshots of one age keep their stored order, so "last" and "first" are well defined.
    snaps = snaps.sort_values(["video_id", "age"], kind="stable")
    before = snaps[snaps["age"] <= target].groupby("video_id", sort=False).tail(1).set_index("video_id")
    after = snaps[snaps["age"] >= target].groupby("video_id", sort=False).head(1).set_index("video_id")
    before, after = before.reindex(ids), after.reindex(ids)

    age0, age1 = before["age"].to_numpy(dtype=np.float64), after["age"].to_numpy(dtype=np.float64)
    has0, has1 = ~np.isnan(age0), ~np.isnan(age1)
    exact = has0 & (age0 == target)
    interpolated = has0 & has1 & ~exact
    young_ok = has0 & ~has1 & (target - age0 <= tolerance_s)
    old_ok = ~has0 & has1 & (age1 - target <= tolerance_s)

    c0 = before[list(COUNTS)].to_numpy(dtype=np.float64, na_value=np.nan)
    c1 = after[list(COUNTS)].to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = ((target - age0) / (age1 - age0))[:, None]
        between = np.expm1(np.log1p(c0) + weight * (np.log1p(c1) - np.log1p(c0)))
    values = np.where(interpolated[:, None], between, np.where(old_ok[:, None], c1, c0))

    basis = np.select([exact, interpolated, young_ok | old_ok], list(BASES), default="")
    reason = np.select(
        [~seen, np.isnan(created), has0 & ~has1, ~has0 & has1],
        list(EXCLUSION_REASONS),
        default="",
    )
    reason = np.where(basis == "", reason, "")
    values[basis == ""] = np.nan

    out = pd.DataFrame(values, columns=list(COUNTS), index=videos.index).astype("Float64")
    out["stats_captured_at"] = pd.Series(pd.to_datetime(created + target, unit="s", utc=True), index=videos.index)
    out["age_basis"] = pd.Series(basis, index=videos.index).mask(basis == "")
    out["excluded"] = pd.Series(reason, index=videos.index).mask(reason == "")
    return out


def early_growth(videos: pd.DataFrame, snapshots: pd.DataFrame, *, at_age_s: int, tolerance_s: int) -> pd.DataFrame:
    """Growth features on ``videos``' index (the arguments of :func:`counts_at_age`).

    For each early age ``e`` in :data:`~.format.EARLY_AGES_S` below ``at_age_s``: ``play_count_at_<e>``,
    the plays at ``e`` by :func:`counts_at_age` with the tolerance ``min(tolerance_s, e / 4)`` (so a 1h
    count is never read off a sighting at 1d); and for consecutive early ages ``a < b``:
    ``play_growth_<a>_<b> = (log1p(plays at b) - log1p(plays at a)) / (b - a in days)``. Null where a
    video cannot be placed at an age.
    """
    early = {name: age for name, age in EARLY_AGES_S.items() if age < at_age_s}
    out = pd.DataFrame(index=videos.index)
    for name, age in early.items():  # one vectorised pass per early age
        placed = counts_at_age(videos, snapshots, at_age_s=age, tolerance_s=min(tolerance_s, age // 4))
        out[f"play_count_at_{name}"] = placed["play_count"]
    names = list(early)
    for a, b in zip(names, names[1:]):
        days = (early[b] - early[a]) / 86_400
        earlier, later = (out[f"play_count_at_{n}"].to_numpy(dtype=np.float64, na_value=np.nan) for n in (a, b))
        growth = (np.log1p(later) - np.log1p(earlier)) / days
        out[f"play_growth_{a}_{b}"] = pd.Series(growth, index=out.index).astype("Float64")
    return out


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(times, utc=True)
    return np.asarray((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=np.float64)
