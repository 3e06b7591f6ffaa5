"""Reading an export directory back: kept apart from export.py so the trainer imports no database code."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .errors import ConfigError


def read_export(root: Path) -> tuple[dict, pd.DataFrame]:
    """An export directory's manifest and video table (the one reader for report, train and demo)."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError(f"{root} is not an export directory: no manifest.json")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    data_path = root / manifest.get("data_file", "videos.parquet")
    if not data_path.is_file():
        raise ConfigError(f"{root}: the video table {data_path.name} named by manifest.json is missing")
    if data_path.suffix == ".parquet":
        return manifest, pd.read_parquet(data_path)
    return manifest, pd.read_csv(data_path, dtype={"video_id": str, "author_id": str})
