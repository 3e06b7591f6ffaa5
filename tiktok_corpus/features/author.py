"""``author``: the author's profile (followers, following, videos, verified) and how popular their
OTHER train-split videos were, as far as it could be known when the row was posted.

No leakage: a row's popularity statistics come from train rows of the same author other than itself,
so neither its own counts and label nor any val/test row ever reach them; and only from those whose
counts were observed (:func:`counts_known_at`) at or before the row's ``create_time``, so a feature
is computable at the row's posting: a later video's success, or an earlier video's counts read after the
row's own hit sent viewers through the back catalogue, never reaches it. :func:`leaked_rows` checks all
of it from the outside, by perturbing exactly those values and watching the features. The profile's
total likes (``heart_count``) are left out: they include the video's own likes, a metric of its label.

In a plain export every count is the one last seen, after most rows were posted, so most rows have no
statistics (NaN; ``others_train_videos`` 0): the honest result. An ``--at-age A`` export observes each
video at ``create_time + A``, so an author's earlier videos are known to their later ones.
:func:`describe` says how many rows got statistics; the feature table's metadata records it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..export.at_age import counts_known_at
from .columns import named, numeric, text

# 2: no log_likes; 3: earlier videos only in exports split in time; 4: always, and only those whose
# counts were observed by the row's posting; 5: an --at-age row's counts known when their last snapshot was;
# 6: none in an export split by author.
VERSION = 6
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


def over_known_before(
    values: pd.Series, authors: pd.Series, contributes: pd.Series, known_at: pd.Series, asked_at: pd.Series
) -> pd.DataFrame:
    """Per row, the ``count``, ``median`` and ``mean`` of the ``values`` of its author's OTHER contributing
    rows known at or before the row's ``asked_at`` (a row's value is known from its ``known_at``; count 0
    and NaN where there are none; all NaN where the row's author or ``asked_at`` is unknown).

    One pass over the values' arrivals and the rows' questions, sorted by author and moment (an arrival
    before a question of the same moment), each author's arrived values kept sorted: O(n log n) but for
    the insertions' memory moves.
    """
    count, median, mean = (np.full(len(values), np.nan) for _ in range(3))
    codes = pd.factorize(authors)[0]
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    known = pd.to_numeric(known_at, errors="coerce").to_numpy(dtype="float64")
    asked = pd.to_numeric(asked_at, errors="coerce").to_numpy(dtype="float64")
    arrivals = np.flatnonzero(contributes.to_numpy(dtype=bool) & ~np.isnan(numbers) & (codes >= 0) & ~np.isnan(known))
    questions = np.flatnonzero((codes >= 0) & ~np.isnan(asked))
    rows = np.concatenate([arrivals, questions])
    is_question = np.repeat([False, True], [len(arrivals), len(questions)])
    moments = np.concatenate([known[arrivals], asked[questions]])
    arrived = np.zeros(len(values), dtype=bool)
    seen: list[float] = []
    total, author = 0.0, -1
    for event in np.lexsort((is_question, moments, codes[rows])):
        row = rows[event]
        if codes[row] != author:
            seen, total, author = [], 0.0, codes[row]
        if not is_question[event]:
            bisect.insort(seen, float(numbers[row]))
            total, arrived[row] = total + numbers[row], True
            continue
        own = float(numbers[row]) if arrived[row] else None  # its own value never counts for itself
        count[row], median[row], mean[row] = _summary_without(seen, total, own)
    return pd.DataFrame({"count": count, "median": median, "mean": mean}, index=values.index)


def _summary_without(ordered: list[float], total: float, own: float | None) -> tuple[float, float, float]:
    """Count, median and mean of the sorted values ``ordered`` (summing to ``total``), one value ``own``
    left out when given: read around its position, without copying the list."""
    skip = len(ordered) if own is None else bisect.bisect_left(ordered, own)
    size = len(ordered) - (own is not None)
    if size == 0:
        return 0.0, np.nan, np.nan

    def kth(k: int) -> float:
        return ordered[k] if k < skip else ordered[k + 1]

    middle = size // 2
    median = kth(middle) if size % 2 else (kth(middle - 1) + kth(middle)) / 2
    return float(size), median, (total - (own or 0.0)) / size


def author_features(table: pd.DataFrame, *, split_by_author: bool = False) -> pd.DataFrame:
    """Profile counts (log1p) and badge, and the popularity of the author's other train videos whose
    counts were observed by the row's posting.

    A pure function of ``table``: the statistics use rows with ``split == "train"`` only. In an export
    split by author no val or test row has an author with train videos, so no row gets them: a model fitted
    on train rows that have them would never meet them where it is evaluated.
    """
    authors = text(table, "author_id").replace("", np.nan)
    in_train = (table["split"] == "train") & (not split_by_author)
    plays = np.log1p(numeric(table, "play_count").clip(lower=0))
    virality, viral = numeric(table, "virality_score"), numeric(table, "is_viral")
    known_at, posted = counts_known_at(table), numeric(table, "create_time")

    def known_before_posting(values: pd.Series) -> pd.DataFrame:
        return over_known_before(values, authors, in_train, known_at, posted)

    return named(
        pd.DataFrame(
            {
                "log_followers": np.log1p(numeric(table, "follower_count").clip(lower=0)),
                "log_following": np.log1p(numeric(table, "following_count").clip(lower=0)),
                "log_videos": np.log1p(numeric(table, "video_count").clip(lower=0)),
                "verified": numeric(table, "verified"),
                "others_train_videos": known_before_posting(in_train.astype(float))["count"],
                "others_median_log_plays": known_before_posting(plays)["median"],
                "others_median_virality": known_before_posting(virality)["median"],
                "others_viral_rate": known_before_posting(viral)["mean"],
            }
        ),
        "author",
    )


def profile_read_at_posting(manifest: dict) -> bool:
    """Whether the export's profile counts (followers, videos, the badge) are the author's at each row's
    posting: an ``--at-age`` export places them there; a plain one reads them as last seen and an
    ``--as-of`` one at the stats moment, both after the posting, so they hold followers the video's own
    success brought (the label's echo, as the total likes left out are). An ``--at-age`` export of an
    earlier version read them as last seen: its manifest names no rule placing them at the posting."""
    placed = manifest.get("selection", {}).get("author_counts") or {}
    return isinstance(manifest.get("age_basis"), dict) and "posting" in str(placed.get("rule", ""))


def test_rows_of_train_authors(manifest: dict, table: pd.DataFrame) -> int | None:
    """How many test rows have an author with train rows, where the split lets those be posted after
    them (neither ``--group-by author`` nor ``--split-order time``); None where it does not. The profile
    counts tell an author apart, so the trees can learn each one's success from their later videos: on
    simulated authors, followers alone reached a test ROC-AUC of 0.72 against 0.78 for the true rate."""
    split = manifest.get("split", {})
    if split.get("group_by") == "author" or split.get("order") == "time":
        return None
    authors = text(table, "author_id").replace("", np.nan)
    train_authors = set(authors[table["split"] == "train"].dropna())
    return int(authors[table["split"] == "test"].isin(train_authors).sum())


def describe(frame: pd.DataFrame) -> dict:
    """How many rows got author statistics (at least one other train video known by their posting)."""
    return {"rows_with_author_statistics": int((frame["author.others_train_videos"] > 0).sum())}


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
    """Video ids whose ``features`` move when every val/test row's outcome changes, or when their own
    outcome changes together with that of every row not known at their posting (counts observed after
    its ``create_time``, which takes in every later post; every row, where its posting time is unknown).

    Each is leakage: held-out rows, the row's own label, or what nobody knew when it was posted reaching
    its features. One call of ``features`` per row: meant for tests and small tables.
    """
    ids = table["video_id"].astype(str).to_numpy()
    before = features(table).to_numpy()

    def moved(after: pd.DataFrame) -> np.ndarray:
        values = after.to_numpy()
        same = np.isclose(before, values, equal_nan=True) | (np.isnan(before) & np.isnan(values))
        return ~same.all(axis=1)

    held_out = (table["split"] != "train").to_numpy()
    leaked = set(ids[moved(features(_perturbed(table, held_out)))])
    known_at = counts_known_at(table).to_numpy()
    posted = numeric(table, "create_time").to_numpy()
    for row in range(len(table)):
        unknown_then = ~(known_at <= posted[row])  # NaN on either side: not known
        unknown_then[row] = True
        if moved(features(_perturbed(table, unknown_then)))[row]:
            leaked.add(ids[row])
    return sorted(leaked)


def compute(export, options, advance: Callable[[int], None]) -> pd.DataFrame:
    frame = author_features(export.table, split_by_author=export.manifest.get("split", {}).get("group_by") == "author")
    advance(len(frame))
    return frame
