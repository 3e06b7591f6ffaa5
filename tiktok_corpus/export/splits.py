"""Deterministic train/val/test splits: seeded or in posting order, by video or by author, optionally
stratified; a file posted more than once (byte-identical: the same sha256) never spans two splits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from ..durations import format_duration
from .label_names import LABEL_COLUMNS
from .options import SPLIT_ORDERS

SPLITS = ("train", "val", "test")
# The units of a time-ordered split with a label read after (or too little before) a later split's first
# post: left out, as "gap:<the split they were cut from>".
GAP = "gap:"
# Continuous labels are stratified on this many equal-count score bins.
SCORE_STRATA = 5


def assign_splits(
    rows: pd.DataFrame,
    *,
    fractions: Sequence[float],
    seed: int,
    group_by: str = "none",
    stratify_on: str | None = None,
    order: str = "random",
    label_known_at: np.ndarray | None = None,
    gap_s: float = 0.0,
) -> np.ndarray:
    """train/val/test (or :data:`GAP` and a split) per row, deterministic from ``seed`` and the ids.

    Units (videos, or authors with ``group_by="author"``; a video without an author is its own unit)
    are ordered by a seeded hash of their id - or, with ``order="time"``, by their first ``create_time``
    (the hash breaks ties; a unit with no known time counts as the oldest: it cannot be placed in the
    future; by their first post, so that no unit of a later split began before one of an earlier
    split) - and cut at the cumulative fractions (counted in videos).
    Units holding the same file (a repost of the same bytes: a pixel model would be tested on what it
    was trained on) are joined into one (:func:`split_units`). With ``stratify_on`` the cut is made
    within each label stratum (the binary label, or :data:`SCORE_STRATA` score bins), so each split
    gets about the same label balance. An author's stratum is its videos' mean label.

    ``label_known_at`` (``order="time"``; unix seconds per row, when its label was read, by default its
    posting): a train or val unit one of whose labels was read after the first post of a later split, or
    less than ``gap_s`` before it, is left out: ``gap:train`` or ``gap:val``. A label read days after
    posting describes those days: so no train label was read after a test post appeared, as for a model
    put to work at that moment (a trend - a sound, a hashtag - peaking in test's weeks cannot reach train).
    """
    if order not in SPLIT_ORDERS:
        raise ValueError(f"order must be one of {SPLIT_ORDERS}, got {order!r}")
    units = pd.DataFrame({"unit": split_units(rows, group_by)})
    units["label"] = rows[stratify_on].astype("float64").to_numpy() if stratify_on else 0.0
    units["time"] = (
        pd.to_numeric(rows["create_time"], errors="coerce").to_numpy(dtype="float64") if order == "time" else 0.0
    )
    units["known"] = np.asarray(label_known_at, dtype="float64") if label_known_at is not None else units["time"]
    per_unit = units.groupby("unit", sort=True).agg(
        size=("label", "size"),
        label=("label", "mean"),
        first_post=("time", "min"),
        last_known=("known", "max"),
    )
    per_unit["time"] = per_unit["first_post"]
    per_unit["stratum"] = _strata(per_unit["label"], stratify_on)
    per_unit["time"] = per_unit["time"].fillna(-np.inf)
    hash_key = hashlib.sha256(f"split-seed:{seed}".encode()).hexdigest()[:16]
    per_unit["key"] = pd.util.hash_array(per_unit.index.to_numpy(dtype=object), hash_key=hash_key, categorize=False)
    per_unit = per_unit.sort_values(["stratum", "time", "key"], kind="stable")
    by_stratum = per_unit.groupby("stratum", sort=False)["size"]
    start = by_stratum.cumsum() - per_unit["size"]
    position = (start / by_stratum.transform("sum")).to_numpy()
    cuts = np.cumsum(np.asarray(fractions, dtype=np.float64))[:2]
    per_unit["split"] = np.asarray(SPLITS)[np.searchsorted(cuts, position, side="right")]
    if order == "time":
        per_unit["split"] = _left_out_in_gaps(per_unit, gap_s)
    return per_unit["split"].reindex(units["unit"]).to_numpy()


def gap_margin(gap_s: int) -> str:
    """``--split-gap`` in the words of the manifest's card and of the export's errors ("" when none)."""
    return f" or less than {format_duration(gap_s)} before it" if gap_s else ""


def _left_out_in_gaps(per_unit: pd.DataFrame, gap_s: float) -> pd.Series:
    """The units' ``split``, each train or val unit whose ``last_known`` label is later than ``gap_s``
    before the ``first_post`` of any unit of a later split set to :data:`GAP` and its split (an author's
    posts spread in time: their first is when they, and a split, begin)."""
    split = per_unit["split"]
    out = split.copy()
    for position, name in enumerate(SPLITS[:-1]):
        begins = per_unit.loc[split.isin(SPLITS[position + 1 :]), "first_post"].min()
        if pd.notna(begins):
            out[(split == name) & (per_unit["last_known"] + gap_s > begins)] = GAP + name
    return out


def split_units(rows: pd.DataFrame, group_by: str = "none") -> np.ndarray:
    """Each row's unit of the split: its video id, or ``author:<id>`` with ``group_by="author"``, where
    units sharing a ``sha256`` are joined into one named after its smallest member (so a corpus without
    duplicates keeps the units, and the splits, it always had)."""
    unit = rows["video_id"].astype(str)
    if group_by == "author":
        unit = ("author:" + rows["author_id"].astype("string")).fillna("video:" + unit).astype(str)
    if "sha256" not in rows:
        return unit.to_numpy(dtype=object)
    names, node = np.unique(unit.to_numpy(dtype=str), return_inverse=True)
    digests = rows["sha256"].astype(object)
    files = pd.Series(node).groupby(digests.where(digests.ne("")).to_numpy(), dropna=True)  # "" is no file
    # every unit of a file linked to the file's first unit; a row without a file to itself
    first = files.transform("first").fillna(pd.Series(node)).to_numpy(dtype=np.int64)
    graph = coo_array((np.ones(len(node)), (node, first)), shape=(len(names), len(names)))
    _, component = connected_components(graph, directed=False)
    # names is sorted, so a component's smallest node is its smallest name
    smallest = pd.Series(np.arange(len(names))).groupby(component).transform("min").to_numpy()
    return names[smallest[node]].astype(object)


def _strata(label: pd.Series, stratify_on: str | None) -> np.ndarray:
    if stratify_on is None:
        return np.zeros(len(label), dtype=np.int64)
    if stratify_on == LABEL_COLUMNS["binary"]:
        return (label.to_numpy() >= 0.5).astype(np.int64)
    rank = label.rank(method="first").to_numpy() - 1
    return np.minimum((rank * SCORE_STRATA // len(label)).astype(np.int64), SCORE_STRATA - 1)
