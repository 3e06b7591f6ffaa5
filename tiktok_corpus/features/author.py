"""``author``: the author's profile (followers, following, videos, verified) and how popular their
OTHER train-split videos are.

No leakage: a row's popularity statistics come from train rows of the same author other than itself,
so neither its own counts and label nor any val/test row ever reach them. :func:`leaked_rows` checks
that from the outside, by perturbing exactly those values and watching the features. The profile's
total likes (``heart_count``) are left out: they include the video's own likes, a metric of its label.

An export split in time (``--split-order time``) is judged as the model would be used, on later posts
from what came before: there every row's statistics come from its author's train videos posted
*before* it, so a train row does not learn from its author's later success either (a hit brings
followers, and the posts after it more views).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import numpy as np
import pandas as pd

from .columns import named, numeric, text

VERSION = 3  # 2: no log_likes; 3: earlier videos only in exports split in time
# A row's own outcome: what the author statistics must never see of the row itself or of val/test rows.
OUTCOME_COLUMNS = (
    "play_count",
    "like_count",
    "comment_count",
    "share_count",
    "collect_count",
    "virality_score",
    "is_viral",
)


def settings(options) -> dict:
    return {"version": VERSION}


def median_of_others(values: pd.Series, authors: pd.Series, contributes: pd.Series) -> pd.Series:
    """Per row, the median of ``values`` over the contributing rows of its author other than itself
    (NaN when there are none): leave-one-out from each author's sorted values."""
    pool = contributes & values.notna() & authors.notna()
    grouped = values[pool].groupby(authors[pool])
    result = authors.where(~pool).map(grouped.median())  # rows outside the pool: all of the author's values
    for _, members in grouped:
        if len(members) > 1:
            result[members.index] = _median_without_each(members.to_numpy())
    return result.astype("float64")


def _median_without_each(values: np.ndarray) -> np.ndarray:
    """For each value, the median of the others: from the sorted values, without a loop per value."""
    ordered = np.sort(values)
    rank = np.searchsorted(ordered, values)  # where each value sits (ties: equal values, same answer)
    others = len(ordered) - 1

    def kth_of_others(k: int) -> np.ndarray:
        return np.where(k < rank, ordered[k], ordered[k + 1])

    if others % 2:
        return kth_of_others(others // 2)
    return (kth_of_others(others // 2 - 1) + kth_of_others(others // 2)) / 2


def mean_of_others(values: pd.Series, authors: pd.Series, contributes: pd.Series) -> pd.Series:
    """Per row, the mean of ``values`` over the contributing rows of its author other than itself."""
    pool = contributes & values.notna() & authors.notna()
    own, counted = values.where(pool, 0.0), pool.astype("float64")
    total = own.groupby(authors).transform("sum")
    count = counted.groupby(authors).transform("sum")
    return ((total - own) / (count - counted)).where(count - counted > 0)


def over_earlier(values: pd.Series, authors: pd.Series, contributes: pd.Series, times: pd.Series) -> pd.DataFrame:
    """Per row, the ``count``, ``median`` and ``mean`` of the ``values`` of its author's contributing rows
    posted strictly before it (count 0 and NaN where there are none; all NaN where the row's author or
    time is unknown). One pass over the rows sorted by author and time, each author's earlier values
    kept sorted."""
    count, median, mean = (np.full(len(values), np.nan) for _ in range(3))
    codes = pd.factorize(authors)[0]
    moments = pd.to_numeric(times, errors="coerce").to_numpy(dtype="float64")
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    counted = contributes.to_numpy(dtype=bool) & ~np.isnan(numbers)
    known = np.flatnonzero((codes >= 0) & ~np.isnan(moments))
    seen: list[float] = []
    landing: list[float] = []  # values of the moment in hand, seen only by later moments
    total, author, moment = 0.0, -1, np.nan
    for row in known[np.lexsort((moments[known], codes[known]))]:
        if codes[row] != author:
            seen, landing, total, author, moment = [], [], 0.0, codes[row], np.nan
        if moments[row] != moment:
            for value in landing:
                bisect.insort(seen, value)
                total += value
            landing, moment = [], moments[row]
        count[row] = len(seen)
        if seen:
            middle = len(seen) // 2
            median[row] = seen[middle] if len(seen) % 2 else (seen[middle - 1] + seen[middle]) / 2
            mean[row] = total / len(seen)
        if counted[row]:
            landing.append(float(numbers[row]))
    return pd.DataFrame({"count": count, "median": median, "mean": mean}, index=values.index)


def author_features(table: pd.DataFrame, *, earlier_only: bool = False) -> pd.DataFrame:
    """Profile counts (log1p) and badge, and the median popularity of the author's other train videos
    (with ``earlier_only``, those posted before the row).

    A pure function of ``table``: the statistics use rows with ``split == "train"`` only.
    """
    authors = text(table, "author_id").replace("", np.nan)
    in_train = table["split"] == "train"
    plays = np.log1p(numeric(table, "play_count").clip(lower=0))
    virality, viral = numeric(table, "virality_score"), numeric(table, "is_viral")
    if earlier_only:
        times = numeric(table, "create_time")
        train_videos = over_earlier(in_train.astype(float), authors, in_train, times)["count"]
        statistics = {
            "others_train_videos": train_videos,
            "others_median_log_plays": over_earlier(plays, authors, in_train, times)["median"],
            "others_median_virality": over_earlier(virality, authors, in_train, times)["median"],
            "others_viral_rate": over_earlier(viral, authors, in_train, times)["mean"],
        }
    else:
        others_in_train = in_train.astype(float).groupby(authors).transform("sum") - in_train.astype(float)
        statistics = {
            "others_train_videos": others_in_train.where(authors.notna()),
            "others_median_log_plays": median_of_others(plays, authors, in_train),
            "others_median_virality": median_of_others(virality, authors, in_train),
            "others_viral_rate": mean_of_others(viral, authors, in_train),
        }
    return named(
        pd.DataFrame(
            {
                "log_followers": np.log1p(numeric(table, "follower_count").clip(lower=0)),
                "log_following": np.log1p(numeric(table, "following_count").clip(lower=0)),
                "log_videos": np.log1p(numeric(table, "video_count").clip(lower=0)),
                "verified": numeric(table, "verified"),
                **statistics,
            }
        ),
        "author",
    )


def split_in_time(manifest: dict) -> bool:
    """Whether an export's splits were ordered by posting time (``--split-order time``)."""
    return manifest.get("split", {}).get("order") == "time"


def _perturbed(table: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``table`` with the outcome of ``rows`` (a boolean mask) changed beyond recognition."""
    changed = table.copy()
    for column in OUTCOME_COLUMNS:
        if column in changed:
            values = pd.to_numeric(changed[column], errors="coerce").astype("float64")
            changed[column] = values.where(
                ~rows, 1 - values if column in ("virality_score", "is_viral") else values * 7 + 13
            )
    return changed


def leaked_rows(table: pd.DataFrame, features: Callable[[pd.DataFrame], pd.DataFrame] = author_features) -> list[str]:
    """Video ids whose ``features`` move when their own outcome changes, or when every val/test row's does.

    Either is leakage (the row's own label, or held-out rows, reaching its features). One call of
    ``features`` per row: meant for tests and small tables.
    """
    ids = table["video_id"].astype(str).to_numpy()
    before = features(table).to_numpy()

    def moved(after: pd.DataFrame) -> np.ndarray:
        values = after.to_numpy()
        same = np.isclose(before, values, equal_nan=True) | (np.isnan(before) & np.isnan(values))
        return ~same.all(axis=1)

    held_out = (table["split"] != "train").to_numpy()
    leaked = set(ids[moved(features(_perturbed(table, held_out)))])
    for row in range(len(table)):
        own = np.arange(len(table)) == row
        if moved(features(_perturbed(table, own)))[row]:
            leaked.add(ids[row])
    return sorted(leaked)


def compute(export, options, advance: Callable[[int], None]) -> pd.DataFrame:
    frame = author_features(export.table, earlier_only=split_in_time(export.manifest))
    advance(len(frame))
    return frame
