"""Reading export columns that an older export may lack, and naming feature columns."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd


def numeric(table: pd.DataFrame, name: str) -> pd.Series:
    """``table[name]`` as float (NaN where missing); all NaN when an older export lacks the column."""
    if name not in table:
        return pd.Series(np.nan, index=table.index, dtype="float64")
    column = table[name]
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(column):
        since_epoch = pd.to_datetime(column, utc=True) - pd.Timestamp(0, tz="UTC")
        return since_epoch.dt.total_seconds()  # unix seconds, as create_time is
    return pd.to_numeric(column, errors="coerce").astype("float64")


def text(table: pd.DataFrame, name: str) -> pd.Series:
    """``table[name]`` as str, empty where missing or absent."""
    if name not in table:
        return pd.Series("", index=table.index, dtype="object")
    return table[name].astype("object").where(table[name].notna(), "").astype(str)


def hashtag_names(value: object) -> list[str]:
    """A row's hashtags: a list in Parquet, a space-joined string in CSV (a JSON list in hand-made tables).

    A CSV cell of names that only looks like JSON is read as names: one that does not parse, that is not
    a list, or whose brackets nest past Python's recursion limit (tags of 256 ``[`` each)."""
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("["):
            try:
                parsed = json.loads(stripped)
            except (ValueError, RecursionError):
                parsed = None
            if isinstance(parsed, list):
                return [str(tag) for tag in parsed]
        return [tag for tag in re.split(r"[\s,#]+", stripped) if tag]
    if isinstance(value, list | tuple | np.ndarray):
        return [str(tag) for tag in value]
    return []


def named(frame: pd.DataFrame, modality: str) -> pd.DataFrame:
    """Columns ``<modality>.<feature>``, all float64, positional index (the caller sets video_id)."""
    frame = frame.astype("float64").reset_index(drop=True)
    frame.columns = [f"{modality}.{column}" for column in frame.columns]
    return frame
