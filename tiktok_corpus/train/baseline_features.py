"""The tabular baselines' inputs: what a model sees without pixels (metadata) and the early views' growth.

Every model report compares against these baselines (see :mod:`.metrics`); LightGBM and the network
read them from here so both reports rest on the same columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..export import GROWTH_COLUMNS
from ..features.columns import hashtag_names
from .export_table import Export


def metadata_features(table: pd.DataFrame) -> np.ndarray:
    """log1p(followers), duration, caption length, hashtag count: what a model sees without pixels.

    Unknown followers (an export at a moment where the author had no count by then, or a table without
    the column) and unknown durations stay NaN: the baseline imputes them from the train split (a
    duration of 0 was a value, and a short one).
    """

    def column(name):
        return pd.to_numeric(table[name], errors="coerce") if name in table else pd.Series(np.nan, index=table.index)

    desc = table["desc"].fillna("").astype(str) if "desc" in table else pd.Series("", index=table.index)
    hashtags = table["hashtags"] if "hashtags" in table else pd.Series([None] * len(table), index=table.index)
    return np.column_stack(
        [
            np.log1p(column("follower_count").clip(lower=0)),
            column("duration_s"),
            desc.str.len(),
            [len(hashtag_names(v)) for v in hashtags],
        ]
    ).astype(np.float64)


def growth_features(export: Export) -> dict[str, pd.DataFrame] | None:
    """Per split, the early-views baseline's inputs: log1p(plays at each early age) and the growth rates.

    ``None`` when the export has no ``play_count_at_*`` column (made without ``--at-age``). Missing
    values stay NaN: the baseline imputes them from the train split.
    """
    table = export.table
    present = [name for name in GROWTH_COLUMNS if name in table]
    early_counts = [name for name in present if name.startswith("play_count_at_")]
    if not early_counts:
        return None
    values = table[present].apply(pd.to_numeric, errors="coerce").astype("float64")
    values[early_counts] = np.log1p(values[early_counts].clip(lower=0))
    return {name: values[table["split"] == name].reset_index(drop=True) for name in ("train", "val", "test")}
