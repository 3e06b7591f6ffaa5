"""The feature cache: ``EXPORT/features/<modality>-<key>.parquet`` and its settings beside it as JSON.

The key hashes the export's table (the sha256 of its data file) and the settings that change a
modality's output, so a re-export, another backbone or another SVD size gets its own file and a second
run with the same ones reuses it. Files are written to a ``*.part`` of their writer's own and renamed; a
file that cannot be read, or whose settings, rows or columns do not match, is recomputed, never trusted.
A table that takes hours (the video embedding of a large export) keeps its rows as they are made, in
:class:`TableParts`, so a Ctrl-C or a kill loses minutes of it, not the whole.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .._files import remove_abandoned_scratch, replacing, sha256_file, write_text_atomically

CACHE_FOLDER = "features"


@dataclass(frozen=True)
class CacheEntry:
    """Where one modality's table for one export and one set of settings lives."""

    modality: str
    settings: dict  # with the table's sha256: everything the key hashes

    @property
    def key(self) -> str:
        text = json.dumps({"modality": self.modality, **self.settings}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def table_path(self, export_dir: Path) -> Path:
        return Path(export_dir) / CACHE_FOLDER / f"{self.modality}-{self.key}.parquet"

    def settings_path(self, export_dir: Path) -> Path:
        return self.table_path(export_dir).with_suffix(".json")

    def parts_dir(self, export_dir: Path) -> Path:
        return self.table_path(export_dir).with_suffix(".parts")


class TableParts:
    """The rows of one table made so far, in order, as ``rows-<first>-<end>.npy`` files in the entry's
    ``.parts`` folder (its key: the same export table and settings). :meth:`done` gives back the rows a
    stopped run saved, :meth:`save` the next block; the whole table, once cached, removes them."""

    _NAME = re.compile(r"rows-(\d+)-(\d+)\.npy")

    def __init__(self, export_dir: Path, entry: CacheEntry) -> None:
        self.folder = entry.parts_dir(export_dir)
        self.saved = 0

    def done(self, width: int) -> np.ndarray:
        """The rows saved before, each ``width`` floats: the files that follow on from row 0 (a file that
        cannot be read, or of another width, ends them; the rows from it on are made again)."""
        spans = {}
        for path in self.folder.glob("rows-*.npy"):
            if found := self._NAME.fullmatch(path.name):
                spans[int(found[1])] = (int(found[2]), path)
        blocks = []
        while self.saved in spans and spans[self.saved][0] > self.saved:
            end, path = spans[self.saved]
            try:
                block = np.load(path, allow_pickle=False)
            except (OSError, ValueError, EOFError):  # EOFError: an empty file
                break
            if block.shape != (end - self.saved, width) or block.dtype.kind != "f":
                break
            blocks.append(block)
            self.saved = end
        return np.concatenate(blocks) if blocks else np.zeros((0, width))

    def save(self, block: np.ndarray) -> np.ndarray:
        """Keep the next rows (after those :meth:`done` and earlier saves gave); returns them. Where another
        run making the same table finished meanwhile and removed the folder, they are not kept: that run's
        whole table is cached already."""
        end = self.saved + len(block)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            remove_abandoned_scratch(self.folder)
            with replacing(self.folder / f"rows-{self.saved}-{end}.npy") as partial, open(partial, "wb") as handle:
                np.save(handle, block, allow_pickle=False)
        except FileNotFoundError:
            pass
        self.saved = end
        return block

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def table_identity(export_dir: Path, manifest: dict) -> str:
    """The sha256 of an export's table file: a re-export or an edited table gets new features. An export
    copied as its shards alone (no table file) is identified by the shards' digests its manifest lists."""
    data_file = export_dir / manifest.get("data_file", "videos.parquet")
    if data_file.is_file() or "webdataset" not in manifest:
        return sha256_file(data_file)[1]
    shards = json.dumps(manifest["webdataset"]["shards"], sort_keys=True)
    return hashlib.sha256(shards.encode()).hexdigest()


def read_cached(export_dir: Path, entry: CacheEntry, video_ids: pd.Index) -> pd.DataFrame | None:
    """The cached table if it is whole and matches ``entry`` and the export's rows; else None."""
    table_path, settings_path = entry.table_path(export_dir), entry.settings_path(export_dir)
    try:
        saved = json.loads(settings_path.read_text(encoding="utf-8"))
        frame = pd.read_parquet(table_path)
    except (OSError, ValueError, pa.ArrowException):
        return None
    if not isinstance(saved, dict) or saved.get("key") != entry.key or saved.get("settings") != entry.settings:
        return None
    whole = (
        frame.index.equals(video_ids)
        and list(frame.columns) == saved.get("columns")
        and all(dtype.kind == "f" for dtype in frame.dtypes)
    )
    return frame if whole else None


def write_cached(export_dir: Path, entry: CacheEntry, frame: pd.DataFrame, extra: dict) -> Path:
    """Write the table, then its settings (the settings file last: a table without one is never read),
    each through a scratch file of its own (:func:`replacing`): two runs computing the same table at once
    each land a whole one. The scratch files of writers killed before are removed first."""
    table_path, settings_path = entry.table_path(export_dir), entry.settings_path(export_dir)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_scratch(table_path.parent)
    with replacing(table_path) as partial:
        frame.to_parquet(partial)
    record = {"modality": entry.modality, "key": entry.key, "settings": entry.settings, **extra}
    record["columns"] = list(frame.columns)
    record["rows"] = len(frame)
    write_text_atomically(settings_path, json.dumps(record, indent=2, sort_keys=True))
    return table_path


def cached_entries(export_dir: Path, modality: str) -> list[tuple[CacheEntry, float]]:
    """The tables cached for ``modality`` under the export, each with when its settings were written
    (whether a table still matches the export is :func:`read_cached`'s to say)."""
    found = []
    for settings_path in (Path(export_dir) / CACHE_FOLDER).glob(f"{modality}-*.json"):
        try:
            saved = json.loads(settings_path.read_text(encoding="utf-8"))
            written = settings_path.stat().st_mtime
        except (OSError, ValueError):
            continue
        if isinstance(saved, dict) and saved.get("modality") == modality and isinstance(saved.get("settings"), dict):
            found.append((CacheEntry(modality, saved["settings"]), written))
    return found
