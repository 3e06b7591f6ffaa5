"""The rows an export takes: exportable videos with their latest stats (or their counts at a fixed
age), typed, and their hashtags.

An export taken at a moment reads the author's profile counts from the author's snapshots, never from
the profile as last seen: followers and the badge grow after a video's success, so a later count would
carry the label into the features. ``--as-of`` reads them as of its cutoff, like the counts; ``--at-age``
as of each row's posting, since whatever the author gained during the row's first ``A`` may be the
row's own hit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from ..config import PAPER_MIN_FRAMES
from ..durations import format_duration
from ..store.db import Reader
from ..store.exports import (
    PROBED_WHOLE,
    PROFILE_AT_MOMENT,
    exportable_author_snapshots,
    exportable_hashtags,
    exportable_rows,
    exportable_snapshots,
    tracked_gone,
)
from .at_age import (
    COUNTS,
    EXCLUSION_REASONS,
    METHOD,
    counts_at_age,
    early_growth,
    rows_by_basis,
    tolerance_at_age,
)
from .format import EARLY_AGES_S, PLACEMENT_COLUMNS


def load_dataset(
    reader: Reader,
    *,
    min_frames: int = PAPER_MIN_FRAMES,
    as_of: datetime | None = None,
    at_age_s: int | None = None,
    age_tolerance_s: int | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Exportable videos joined with their latest stats snapshot (at/before ``as_of``), author, media;
    with ``at_age_s``, their counts at that age instead (:mod:`.at_age`), within ``age_tolerance_s``
    (None: the age's default, :func:`.at_age.tolerance_at_age`).

    One set-based query (more with ``as_of`` or ``at_age_s``), all through ``reader`` (one
    :meth:`~tiktok_corpus.store.db.Store.consistent_read`, so that they agree). Returns ``(rows,
    selection)``: ``rows`` sorted by ``video_id`` with a ``media_path`` column (relative to the data
    dir), ``selection`` the filter and exclusion counts, and ``data_cutoff``: ``as_of``, else the newest
    snapshot read (the same export of a corpus cut there gives the same counts; a plain export's author
    profiles are as last seen, not as of the cutoff).
    """
    rows = exportable_rows(reader, min_frames=min_frames, as_of=as_of)
    if at_age_s is not None:
        return _at_age(reader, rows, min_frames=min_frames, at_age_s=at_age_s, tolerance_s=age_tolerance_s, as_of=as_of)
    has_stats = rows["stats_captured_at"].notna()
    rows = rows[has_stats].reset_index(drop=True)
    gone = tracked_gone(reader, min_frames=min_frames, as_of=as_of)
    rows["stats_captured_at"] = pd.to_datetime(rows["stats_captured_at"], utc=True)
    selection = {
        **_filters(min_frames),
        "as_of": as_of.isoformat() if as_of else None,
        "stats": "latest snapshot per video" + (" at or before as_of" if as_of else ""),
        "excluded_no_stats": int((~has_stats).sum()),
        "found_gone": found_gone(rows, gone.index),
        "data_cutoff": as_of.isoformat() if as_of else _newest(pd.concat([rows["stats_captured_at"], gone])),
    }
    if as_of is not None:
        authors = exportable_author_snapshots(reader, min_frames=min_frames)
        stats_moment = rows["stats_captured_at"]
        selection["author_counts"] = _profiles_at(rows, authors, stats_moment, moment="the stats moment")
    _type_columns(rows, counts=COUNTS)
    return rows, selection


def _filters(min_frames: int) -> dict:
    """The selection's filters, as ``store.exports.exportable_rows`` applies them."""
    return {
        "item_kind": "video",
        "download_status": "downloaded",
        "probe_status": list(PROBED_WHOLE),
        "min_frames": min_frames,
        "frames_rule": (
            f"probed {' or '.join(PROBED_WHOLE)} (a probe that found nothing wrong but the frame count), and at "
            f"least {min_frames} frames: this export's threshold, whatever `corpus validate --min-frames` said"
        ),
    }


def _at_age(
    reader: Reader,
    rows: pd.DataFrame,
    *,
    min_frames: int,
    at_age_s: int,
    tolerance_s: int | None,
    as_of: datetime | None,
) -> tuple[pd.DataFrame, dict]:
    """``rows`` with their counts and ``stats_captured_at`` replaced by those at ``at_age_s``, how each was
    placed (:data:`.at_age.PLACEMENT_COLUMNS`) and the growth features after them; the videos that
    cannot be placed at that age are left out and counted by reason. With ``as_of``, only what was
    known by then (snapshots, author snapshots, videos found gone): the same export of the corpus, made
    again after more tracking."""
    given = tolerance_s is not None
    tolerance_s = tolerance_s if tolerance_s is not None else tolerance_at_age(at_age_s)
    snapshots = exportable_snapshots(reader, min_frames=min_frames, as_of=as_of)
    gone = tracked_gone(reader, min_frames=min_frames, as_of=as_of)
    at_age = counts_at_age(rows, snapshots, at_age_s=at_age_s, tolerance_s=tolerance_s, gone=gone)
    growth = early_growth(rows, snapshots, at_age_s=at_age_s, tolerance_s=tolerance_s)
    captured_type = pd.to_datetime(rows["stats_captured_at"], utc=True).dtype
    for column in (*COUNTS, *PLACEMENT_COLUMNS):
        rows[column] = at_age[column]
    rows["stats_captured_at"] = at_age["stats_captured_at"].astype(captured_type)
    rows = rows.join(growth)
    kept = at_age["age_basis"].notna()
    rows = rows[kept].reset_index(drop=True)
    authors = exportable_author_snapshots(reader, min_frames=min_frames, as_of=as_of)
    posted = pd.to_datetime(rows["create_time"], unit="s", utc=True)
    first_look_s = min(min(EARLY_AGES_S.values()), at_age_s)  # never later than the row's own counts
    author_counts = _profiles_at(rows, authors, posted, moment="the row's posting", first_look_s=first_look_s)
    _type_columns(rows, counts=())
    excluded = at_age["excluded"].value_counts().reindex(list(EXCLUSION_REASONS), fill_value=0)
    selection = {
        **_filters(min_frames),
        "as_of": as_of.isoformat() if as_of else None,
        "stats": (
            f"counts at age {format_duration(at_age_s)} after posting, {METHOD}; a lone snapshot within "
            f"{format_duration(tolerance_s)} of that age where none bracket it"
        ),
        "age_tolerance_s": tolerance_s,
        "age_tolerance_rule": "given (--age-tolerance)" if given else "default: a quarter of the age, at most 1d",
        "excluded_no_stats": int(excluded["no_snapshots"]),
        "excluded_by_reason": {reason: int(n) for reason, n in excluded.items()},
        "rows_by_age_basis": rows_by_basis(at_age["age_basis"]),
        "found_gone": found_gone(rows, gone.index),
        "author_counts": author_counts,
        "data_cutoff": as_of.isoformat()
        if as_of
        else _newest(pd.concat([snapshots.captured_at, authors.captured_at, gone])),
    }
    return rows, selection


def found_gone(rows: pd.DataFrame, gone: Iterable[str]) -> list[str]:
    """The ids of the rows that the tracker found deleted or private after their download (``gone``, as
    :func:`~tiktok_corpus.store.exports.tracked_gone` indexes them): they stay in (dropping them would leave a sample
    of survivors), and the card names how many, for whoever must honour their removal."""
    return sorted(set(rows["video_id"]) & set(gone))


def _newest(times: pd.Series) -> str | None:
    """The latest of ``times`` in ISO 8601 (None when there are none)."""
    newest = pd.to_datetime(times, utc=True).max()
    return None if pd.isna(newest) else newest.isoformat()


def _profiles_at(
    rows: pd.DataFrame, snapshots: pd.DataFrame, moments: pd.Series, *, moment: str, first_look_s: int = 0
) -> dict:
    """Replace, in place, each row's :data:`PROFILE_AT_MOMENT` (the counts and the badge) by its
    author's at the row's entry of ``moments`` (``moment`` names it for the manifest).

    The author's latest snapshot at or before that moment, else (``first_look_s``) their first one at most
    that long after it: an author first seen with a new video is first seen a little after its posting (the
    tracker's first look); unknown (null) when neither exists, never a later value (a badge, like followers,
    may follow a hit). Snapshots taken before the badge was kept leave ``verified`` unknown. Returns the
    rows placed and left unknown, and the rule, for the manifest.
    """
    # One type for each key on both sides (an empty read has object columns, a full one strings).
    wanted = pd.DataFrame(
        {"author_id": rows["author_id"].astype(object), "moment": moments.astype("datetime64[ns, UTC]")}
    )
    wanted = wanted.dropna().sort_values("moment")
    taken = snapshots.assign(
        author_id=snapshots["author_id"].astype(object),
        captured_at=pd.to_datetime(snapshots["captured_at"], utc=True).astype("datetime64[ns, UTC]"),
        verified=snapshots["verified"].map({True: 1.0, False: 0.0}).astype("float64"),  # unknown: NaN
    ).sort_values("captured_at", kind="stable")
    found = pd.DataFrame(index=rows.index, columns=list(PROFILE_AT_MOMENT), dtype="float64")
    # backward last: a snapshot at or before the moment wins over one after it
    rules: tuple[tuple[Literal["forward", "backward"], pd.Timedelta | None], ...] = (
        ("forward", pd.Timedelta(seconds=first_look_s)),
        ("backward", None),
    )
    for direction, tolerance in rules:
        placed = pd.merge_asof(
            wanted.reset_index(),
            taken,
            left_on="moment",
            right_on="captured_at",
            by="author_id",
            direction=direction,
            tolerance=tolerance,
        ).set_index("index")
        hit = placed["captured_at"].notna()
        found.loc[placed.index[hit]] = placed.loc[hit, list(PROFILE_AT_MOMENT)].to_numpy(dtype="float64")
    known = found.notna().any(axis=1)
    for column in PROFILE_AT_MOMENT:
        rows[column] = found[column]
    rows["verified"] = found["verified"].map({1.0: True, 0.0: False})
    after = (
        f", else their first one at most {format_duration(first_look_s)} after it (the first look at a new video)"
        if first_look_s
        else ""
    )
    return {
        "rule": f"the author's latest snapshot at or before {moment}{after}; unknown otherwise",
        "placed": int(known.sum()),
        "unknown": int((~known).sum()),
        "verified_unknown": int(found.loc[known, "verified"].isna().sum()),
    }


def _type_columns(rows: pd.DataFrame, *, counts: tuple[str, ...]) -> None:
    """Nullable integer columns (``counts`` among them), the booleans ``has_audio``, ``verified`` and
    ``music_original``, and the string ``music_title``, in place."""
    integers = ("follower_count", "following_count", "heart_count", "video_count")
    for column in (*counts, *integers, "create_time", "frame_count", "width", "height"):
        rows[column] = rows[column].astype("Int64")
    for column in ("has_audio", "verified", "music_original"):
        rows[column] = rows[column].astype("boolean")
    rows["music_title"] = rows["music_title"].astype("string")


def hashtag_lists(reader: Reader, video_ids: pd.Series, *, min_frames: int) -> pa.ListArray:
    """Each video's hashtag names (sorted), aligned with ``video_ids``; videos without tags get []."""
    tags = exportable_hashtags(reader, min_frames=min_frames)
    tags["row"] = pd.Index(video_ids).get_indexer(tags["video_id"])
    tags = tags[tags["row"] >= 0].sort_values(["row", "name"], kind="stable")
    lengths = np.bincount(tags["row"].to_numpy(), minlength=len(video_ids))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(tags["name"].to_numpy(), type=pa.string()))
