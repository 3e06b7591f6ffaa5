"""The export as training reads it: its manifest, its video table and the task they define, checked once.

Every learner (the network, LightGBM, fusion, the ablation) and the feature extractors read an export
through :func:`load_export`, so they all see the same checks and the same row order. Reading one
imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from ..export import LABEL_COLUMNS, read_export

REQUIRED_COLUMNS = ("video_id", "file", "split")


@dataclass(frozen=True)
class Export:
    """One export directory: its manifest, its table and the training task it defines."""

    root: Path
    manifest: dict
    table: pd.DataFrame

    @property
    def task(self) -> str:
        """``binary`` (BCE on is_viral) or ``continuous`` (MSE on virality_score)."""
        return self.manifest["label"]

    @property
    def target_column(self) -> str:
        return LABEL_COLUMNS[self.task]

    def media_files(self) -> list[Path]:
        """Each row's video file, in row order. A missing one is an error (a moved or half-copied export),
        never a row of unknown features."""
        files = []
        for video_id, name in zip(self.table["video_id"], self.table["file"], strict=True):
            path = self.root / str(name)
            if not path.is_file():
                raise ConfigError(f"{self.root}: video {video_id} has no file at {name}")
            files.append(path)
        return files

    def split(self, name: str) -> pd.DataFrame:
        return self.table[self.table["split"] == name].reset_index(drop=True)

    def test_authors(self) -> pd.Series | None:
        """Each test row's author (None in a table without them): the clusters its metrics count."""
        return self.split("test").get("author_id")


def load_export(root: Path, *, label: str | None = None) -> Export:
    """Read ``manifest.json`` and ``videos.parquet`` (or ``videos.csv``), checking what training needs.

    ``label`` (``--label``): train on that label instead of the one the export was made for (an export
    carries both label columns).
    """
    root = Path(root)
    manifest, table = read_export(root)
    if label is not None:
        manifest = {**manifest, "label": label}
    if manifest.get("label") not in LABEL_COLUMNS:
        raise ConfigError(
            f"{root / 'manifest.json'}: label must be one of {sorted(LABEL_COLUMNS)}, got {manifest.get('label')!r}"
        )
    missing = [c for c in (*REQUIRED_COLUMNS, LABEL_COLUMNS[manifest["label"]]) if c not in table.columns]
    if missing:
        raise ConfigError(f"{root}: the video table lacks column(s) {', '.join(missing)}")
    table = table.copy()
    table["video_id"] = table["video_id"].astype(str)
    for name in ("train", "val", "test"):
        if not (table["split"] == name).any():
            raise ConfigError(f"{root}: the {name!r} split is empty; training needs train, val and test")
    _check_labels(root, table, manifest["label"])
    return Export(root=root, manifest=manifest, table=table)


def _check_labels(root: Path, table: pd.DataFrame, label: str) -> None:
    """Every row's label a number (binary: 0 or 1). An export made here has no other; a table edited by
    hand may, and a blank label became a LightGBM traceback, a baseline's, or a network "diverged" that
    blamed the learning rate."""
    column = LABEL_COLUMNS[label]
    values = pd.to_numeric(table[column], errors="coerce").astype("float64")
    bad = ~values.isin([0.0, 1.0]) if label == "binary" else values.isna() | values.abs().eq(float("inf"))
    if bad.any():
        named = ", ".join(table.loc[bad, "video_id"].head(5))
        wanted = "0 or 1" if label == "binary" else "a finite number"
        raise ConfigError(
            f"{root}: {int(bad.sum())} row(s) have no usable {column} ({wanted}), e.g. video(s) {named}: "
            "give them a label or leave them out of the table"
        )
