"""The fusion model's side inputs: the other modalities' feature vectors, scaled on the train split.

Each column is centred and scaled by its train-split mean and spread (a column constant on train
carries nothing and is dropped); a missing value becomes the train mean (0 after scaling), so a video
without audio or an author row still gets a vector. Nothing of val or test shapes the scaling.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .config import FUSION_WITHOUT_SIDE
from .export_table import Export


@dataclass(frozen=True)
class SideInputs:
    vectors: dict[str, np.ndarray]  # per split, rows in the split's order
    columns: list[str]
    modalities: list[str]
    provenance: dict

    @property
    def width(self) -> int:
        return len(self.columns)


def side_inputs(export: Export, table: pd.DataFrame, provenance: dict) -> SideInputs:
    """Per split, the scaled side vectors of ``table`` (indexed like ``export.table``)."""
    if table.shape[1] == 0:
        raise ConfigError(FUSION_WITHOUT_SIDE)
    values = table.apply(pd.to_numeric, errors="coerce").astype("float64").to_numpy()
    split = export.table["split"].to_numpy()
    train = values[split == "train"]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():  # an all-NaN column: "mean of empty slice"
        warnings.simplefilter("ignore", RuntimeWarning)
        centre, spread = np.nanmean(train, axis=0), np.nanstd(train, axis=0)
    kept = np.isfinite(centre) & (spread > 0)
    if not kept.any():  # the network alone, recorded as fusion
        raise ConfigError(
            f"--model fusion: no column of {', '.join(sorted({c.split('.', 1)[0] for c in table.columns}))} varies "
            "on the train split (no audio tracks, say), so there is nothing to fuse; choose other --modalities"
        )
    scaled = np.nan_to_num((values[:, kept] - centre[kept]) / spread[kept], nan=0.0).astype(np.float32)
    columns = [c for c, keep in zip(table.columns, kept) if keep]
    return SideInputs(
        vectors={name: scaled[split == name] for name in ("train", "val", "test")},
        columns=columns,
        modalities=sorted({c.split(".", 1)[0] for c in columns}),
        provenance=provenance,
    )
