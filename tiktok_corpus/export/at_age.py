"""Engagement at a fixed age since posting (``corpus export --at-age``), pure and vectorised.

A snapshot's age is ``captured_at - create_time``. For a target age ``A`` and each video:

* ``exact``: a snapshot sits at age ``A``, or on time for it (:func:`on_time_at_age`: 1% of ``A``, at
  least a minute, at most the tolerance: a tracker observes a due age seconds to minutes late, never to
  the float): the
  nearest one's counts, as they are (the last one stored, if several of one moment; the one before
  ``A`` where two are as near).
* ``interpolated``: the nearest snapshot before ``A`` (age ``a0``, count ``c0``) and the nearest after
  (``a1``, ``c1``) bracket it: each count is ``expm1(log1p(c0) + (A - a0) / (a1 - a0) *
  (log1p(c1) - log1p(c0)))``, linear in age on the ``log1p`` scale.
* ``within_tolerance``: the snapshots do not bracket ``A``, but the nearest one (the last, when all are
  younger; the first, when all are older) is at most ``tolerance`` away: its counts, as they are. The
  tolerance, unless given, is :func:`tolerance_at_age`: a quarter of ``A``, at most a day.
* otherwise the video is left out, with a reason: ``no_snapshots``, ``no_create_time``, ``too_young``
  (every snapshot before ``A``, the last more than ``tolerance`` before), ``too_old_at_first_sighting``
  (first seen more than ``tolerance`` after ``A``) or ``gone_before_age`` (too young, and found deleted
  or private by the tracker by ``A`` plus the tolerance: it never reached an age its count could be read
  at, and deletions may follow the outcome, so they are counted apart; one found gone later was only not
  seen in time, ``too_young``).

A count missing (null) in a snapshot used stays missing; the labels take it as 0, as for the latest
snapshot.

:func:`early_growth` gives the growth features of such an export: plays at the early ages
(:data:`~.format.EARLY_AGES_S` below the label's age, by the same rule with the tolerance capped at a
quarter of the early age, from the sightings within that tolerance after the early age at most) and the
log growth per day between consecutive ones.

Each row also says how it was placed (:data:`~.format.PLACEMENT_COLUMNS`): its basis and the ages of the
snapshots its counts came from, so a user can keep only the rows counted close enough to ``A``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..config import AGE_TOLERANCE_CAP_S
from .format import EARLY_AGES_S

COUNTS = ("play_count", "like_count", "comment_count", "share_count", "collect_count")
METHOD = "log-linear between bracketing snapshots"
BASES = ("exact", "interpolated", "within_tolerance")
# Why a video's snapshots cannot place it, in the order checked; then what its tracking says of it.
PLACEMENT_REASONS = ("no_snapshots", "no_create_time", "too_young", "too_old_at_first_sighting")
EXCLUSION_REASONS = (*PLACEMENT_REASONS, "gone_before_age")
# A snapshot this close to the age, or 1% of it where that is more, is read as taken at it.
MIN_ON_TIME_S = 60


def rows_by_basis(basis: pd.Series) -> dict[str, int]:
    """How many rows were placed each way (the manifest's ``selection.rows_by_age_basis``)."""
    counts = basis.value_counts().reindex(list(BASES), fill_value=0)
    return {name: int(counts[name]) for name in BASES}


def on_time_at_age(age_s: int, tolerance_s: int) -> int:
    """How far from ``age_s`` a snapshot still counts as taken at it (``exact``): 1% of the age, at least
    :data:`MIN_ON_TIME_S` (14 min 24 s at 1d, 100 min 48 s at 7d), never past the tolerance in force (a
    tolerance of 0 asks for the age to the second)."""
    return min(max(MIN_ON_TIME_S, age_s // 100), tolerance_s)


def tolerance_at_age(age_s: int, cap_s: int = AGE_TOLERANCE_CAP_S) -> int:
    """How far from ``age_s`` a lone snapshot may lie and still place a count there: a quarter of the age,
    at most ``cap_s``, so a count at 1h is never read off a sighting hours later."""
    return min(cap_s, age_s // 4)


def counts_at_age(
    videos: pd.DataFrame,
    snapshots: pd.DataFrame,
    *,
    at_age_s: int,
    tolerance_s: int,
    gone: pd.Series | None = None,
) -> pd.DataFrame:
    """Each video's counts at ``at_age_s`` seconds after posting.

    ``videos`` has one row per video (``video_id``, ``create_time`` in epoch seconds, nullable);
    ``snapshots`` has ``video_id``, ``captured_at`` and the :data:`COUNTS`, snapshots of one moment in
    the order they were stored (:func:`tiktok_corpus.store.exports.exportable_snapshots`). Returns a
    frame on ``videos``' index with the five counts (``Float64``), ``stats_captured_at`` (the moment
    they describe: ``create_time + at_age_s``, UTC), the :data:`~.format.PLACEMENT_COLUMNS` (``age_basis``,
    one of :data:`BASES`; the ages of the snapshots used, ``snapshot_age_before_s`` and
    ``snapshot_age_after_s``, null where that side was not used) and ``excluded`` (one of
    :data:`EXCLUSION_REASONS`); a row has either a basis or a reason, never both. ``gone``: when each video found
    deleted or private was found so (a time), indexed by its id.
    """
    timeline = _Timeline(videos, snapshots)
    placed = timeline.place(at_age_s, tolerance_s)
    found_at = pd.Series(_epoch_seconds(gone), index=gone.index) if gone is not None else pd.Series(dtype="float64")
    found_gone = videos["video_id"].map(found_at).to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        gone_in_time = found_gone - timeline.created <= at_age_s + tolerance_s
    never_older = (placed.reason == "too_young") & gone_in_time
    placed = replace(placed, reason=np.where(never_older, "gone_before_age", placed.reason))
    index = videos.index
    out = pd.DataFrame(placed.values, columns=list(COUNTS), index=index).astype("Float64")
    out["stats_captured_at"] = pd.Series(pd.to_datetime(timeline.created + at_age_s, unit="s", utc=True), index=index)
    out["age_basis"] = pd.Series(placed.basis, index=index).mask(placed.basis == "").astype("string")
    out["snapshot_age_before_s"] = pd.Series(placed.age_before, index=index, dtype="Float64")
    out["snapshot_age_after_s"] = pd.Series(placed.age_after, index=index, dtype="Float64")
    out["excluded"] = pd.Series(placed.reason, index=index).mask(placed.reason == "")
    return out


def counts_known_at(rows: pd.DataFrame) -> pd.Series:
    """When each export row's counts were known (unix seconds): its ``stats_captured_at``, except in an
    ``--at-age`` export, whose counts describe ``create_time + A`` but were read off the snapshots around
    that moment, the later one up to the bracket's width after it: they were known at the latest snapshot
    used (a count interpolated towards a sighting at day 30 was not known at day 7)."""

    def seconds(name: str) -> pd.Series:
        if name not in rows:  # an export of an older version, or a plain one
            return pd.Series(np.nan, index=rows.index, dtype="float64")
        column = rows[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            return pd.Series(_epoch_seconds(column), index=rows.index)
        return pd.to_numeric(column, errors="coerce").astype("float64")

    used_ages = pd.concat([seconds("snapshot_age_before_s"), seconds("snapshot_age_after_s")], axis=1).max(axis=1)
    return (seconds("create_time") + used_ages).where(used_ages.notna(), seconds("stats_captured_at"))


def early_growth(videos: pd.DataFrame, snapshots: pd.DataFrame, *, at_age_s: int, tolerance_s: int) -> pd.DataFrame:
    """Growth features on ``videos``' index (the arguments of :func:`counts_at_age`).

    For each early age ``e`` in :data:`~.format.EARLY_AGES_S` below ``at_age_s``: ``play_count_at_<e>``,
    the plays at ``e`` by :func:`counts_at_age`'s rule with the tolerance :func:`tolerance_at_age` of
    ``e`` capped at ``tolerance_s`` (so a 1h count is never read off a sighting at 1d), from the sightings
    at or before ``e`` plus that tolerance only, and before ``at_age_s`` (before the label's own sighting,
    where the label was read off a younger one): a later one lies in the future of what a count at ``e``
    may know, and interpolating towards it would carry the label in. For consecutive early ages ``a < b``:
    ``play_growth_<a>_<b> = (log1p(plays at b) - log1p(plays at a)) / (b - a in days)``. Null where a
    video cannot be placed at an age.
    """
    plays = COUNTS.index("play_count")
    early = {name: age for name, age in EARLY_AGES_S.items() if age < at_age_s}
    label_seen_at = _label_sighting_age(videos, snapshots, at_age_s=at_age_s, tolerance_s=tolerance_s)
    placed = {}
    for name, age in early.items():
        tolerance = tolerance_at_age(age, tolerance_s)
        known_by = np.minimum(age + tolerance, np.nextafter(label_seen_at, 0.0))  # strictly before the label's
        placed[name] = _Timeline(videos, snapshots, seen_by_age_s=known_by).place(age, tolerance).values[:, plays]
    out = pd.DataFrame({f"play_count_at_{name}": values for name, values in placed.items()}, index=videos.index)
    names = list(early)
    for a, b in zip(names, names[1:]):
        days = (early[b] - early[a]) / 86_400
        out[f"play_growth_{a}_{b}"] = (np.log1p(placed[b]) - np.log1p(placed[a])) / days
    return out.astype("Float64")


def _label_sighting_age(
    videos: pd.DataFrame, snapshots: pd.DataFrame, *, at_age_s: int, tolerance_s: int
) -> np.ndarray:
    """Per video, the age from which the early counts may not read a sighting: the label's age, or the age
    of the sighting the label was read off where that lies before it (``within_tolerance`` of a video last
    seen younger: with a wide ``--age-tolerance``, a 1d label off a sighting at 7h, which a 6h count would
    otherwise interpolate towards, handing the label to the early-views baseline; or an ``exact`` label off
    a sighting on time but before the age)."""
    label = _Timeline(videos, snapshots).place(at_age_s, tolerance_s)
    with np.errstate(invalid="ignore"):
        read_off_younger = np.isnan(label.age_after) & (label.age_before < at_age_s)  # also "exact", on time
    return np.where(read_off_younger, label.age_before, float(at_age_s))


class _Timeline:
    """Every video's snapshots as ages, sorted by (video, age), ready to be placed at any age.

    Video ``i``'s snapshots are positions ``start[i]`` to ``start[i] + size[i] - 1`` of ``ages`` and
    ``counts``; a stable sort (none when the snapshots come in the store's order, by video and time)
    keeps snapshots of one moment in their stored order.
    """

    def __init__(
        self, videos: pd.DataFrame, snapshots: pd.DataFrame, *, seen_by_age_s: float | np.ndarray = np.inf
    ) -> None:
        ids = pd.Index(videos["video_id"])
        self.created = pd.to_numeric(videos["create_time"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        row = ids.get_indexer(snapshots["video_id"])
        known = row >= 0
        row = row[known]
        self.seen = np.bincount(row, minlength=len(ids)) > 0
        age = _epoch_seconds(snapshots["captured_at"])[known] - self.created[row]
        dated = ~np.isnan(age) & (age <= np.broadcast_to(seen_by_age_s, len(ids))[row])  # one limit, or one a video
        row, age = row[dated], age[dated]
        counts = snapshots[list(COUNTS)].to_numpy(dtype=np.float64, na_value=np.nan)[known][dated]
        step_row, step_age = np.diff(row), np.diff(age)
        if not ((step_row > 0) | ((step_row == 0) & (step_age >= 0))).all():  # the store's order needs no sort
            order = np.lexsort((age, row))
            row, age, counts = row[order], age[order], counts[order]
        self.row, self.ages, self.counts = row, age, counts
        self.size = np.bincount(self.row, minlength=len(ids))
        self.start = np.concatenate([[0], np.cumsum(self.size)[:-1]]).astype(np.int64)

    def place(self, age: int, tolerance_s: int) -> _Placement:
        """Every video's counts at ``age`` (:class:`_Placement`)."""
        target = float(age)
        upto = self._upto(np.full(len(self.size), target))  # snapshots at or before
        has0, has1 = upto > 0, upto < self.size
        lo = np.where(has0, self.start + upto - 1, 0)
        if len(self.ages) == 0:  # nothing to index: every video is left out below
            age0 = age1 = np.full(len(self.size), np.nan)
            c0 = c1 = np.full((len(self.size), len(COUNTS)), np.nan)
        else:
            age0 = np.where(has0, self.ages[lo], np.nan)
            age1 = np.where(has1, self.ages[np.where(has1, self.start + upto, 0)], np.nan)
            # the after side's moment, like the before side's, by its last snapshot stored
            hi = np.where(has1, self.start + self._upto(age1) - 1, 0)
            c0, c1 = self.counts[lo], self.counts[hi]
        on_time = on_time_at_age(age, tolerance_s)
        with np.errstate(invalid="ignore"):
            early_by, late_by = target - age0, age1 - target
            on_time_after = has1 & (late_by <= on_time) & ~(has0 & (early_by <= late_by))
            exact = (has0 & (early_by <= on_time)) | on_time_after
        interpolated = has0 & has1 & ~exact
        young_ok = has0 & ~has1 & ~exact & (early_by <= tolerance_s)
        old_ok = ~has0 & has1 & ~exact & (late_by <= tolerance_s)
        before, after = (exact & ~on_time_after) | interpolated | young_ok, on_time_after | interpolated | old_ok
        with np.errstate(invalid="ignore", divide="ignore"):
            weight = ((target - age0) / (age1 - age0))[:, None]
            between = np.expm1(np.log1p(c0) + weight * (np.log1p(c1) - np.log1p(c0)))
        values = np.where(interpolated[:, None], between, np.where((after & ~before)[:, None], c1, c0))
        basis = np.select([exact, interpolated, young_ok | old_ok], list(BASES), default="")
        reason = np.select(
            [~self.seen, np.isnan(self.created), has0 & ~has1, ~has0 & has1], list(PLACEMENT_REASONS), default=""
        )
        left_out = basis == ""
        values[left_out] = np.nan
        return _Placement(
            values=values,
            basis=basis,
            reason=np.where(left_out, reason, ""),
            age_before=np.where(before, age0, np.nan),
            age_after=np.where(after, age1, np.nan),
        )

    def _upto(self, ages: np.ndarray) -> np.ndarray:
        """Per video, how many of its snapshots are at or before its age in ``ages`` (NaN: none)."""
        with np.errstate(invalid="ignore"):
            return np.bincount(self.row[self.ages <= ages[self.row]], minlength=len(self.size))


@dataclass(frozen=True)
class _Placement:
    """Counts placed at one age: ``values`` a (videos x 5) float matrix (NaN where left out); per video
    its basis or its exclusion reason ("" where the other applies), and the ages of the snapshots at or
    before and after the age that gave its counts (NaN where that side was not used)."""

    values: np.ndarray
    basis: np.ndarray
    reason: np.ndarray
    age_before: np.ndarray
    age_after: np.ndarray


def _epoch_seconds(times: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(times, utc=True)
    return np.asarray((stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=np.float64)
