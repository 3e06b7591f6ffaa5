"""Writing one version: a hidden staging directory with the table, the manifest and the card, renamed
into place together with its ``exports`` row, so a crash never leaves half an export and an existing
version is never touched."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.progress import Progress

from .._files import fsync_path, sha256_file, write_text_durably
from ..config import Settings
from ..store.db import Store
from ..store.exports import latest_export_version, recording_export
from .format import EXPORT_COLUMNS, MANIFEST_FILE, export_columns
from .manifest import build_manifest, dataset_card
from .options import ExportError, ExportOptions
from .shards import write_shards


def next_version(store: Store, exports_dir: Path, name: str) -> int:
    """One more than the highest version of ``name`` among directories and ``exports`` rows."""
    pattern = re.compile(rf"^{re.escape(name)}-v(\d+)$")
    on_disk = (
        [int(m.group(1)) for p in exports_dir.iterdir() if (m := pattern.match(p.name))] if exports_dir.is_dir() else []
    )
    return max([latest_export_version(store, name), *on_disk]) + 1


def write_version(
    store: Store,
    settings: Settings,
    options: ExportOptions,
    rows: pd.DataFrame,
    tags: pa.ListArray,
    label_params: dict,
    selection: dict,
    *,
    created_at: datetime,
    progress: Progress,
) -> Path:
    """Write the labelled, split ``rows`` as the next version of ``options.name``; returns its directory."""
    exports_dir = settings.data_dir / "exports"
    exports_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(store, exports_dir, options.name)
    final_dir = exports_dir / f"{options.name}-v{version}"
    staging = exports_dir / f".{final_dir.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        if options.copy_media:
            rows["file"] = _copy_media(settings.data_dir, staging, rows, progress)
        else:
            prefix = Path(os.path.relpath(settings.data_dir.resolve(), final_dir.resolve())).as_posix()
            rows["file"] = rows["media_path"].where(
                rows["media_path"].str.startswith("/"), prefix + "/" + rows["media_path"]
            )
        table_format = "csv" if options.format == "csv" else "parquet"
        data_file = staging / f"videos.{table_format}"
        table = _to_arrow(rows, tags, table_format)
        _write_table(table, data_file, table_format)
        data_sha256 = sha256_file(data_file)[1]
        shards = None
        if options.format == "webdataset":
            task = progress.add_task("writing shards", total=len(rows))
            shards = write_shards(staging, table, staging, options.shard_size, advance=lambda: progress.advance(task))
        manifest = build_manifest(
            options,
            rows,
            label_params,
            selection,
            version=version,
            created_at=created_at,
            data_file=data_file.name,
            data_sha256=data_sha256,
            source_database=store.safe_url,
            shards=shards,
        )
        write_text_durably(staging / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        write_text_durably(staging / "README.md", dataset_card(manifest))
        with recording_export(
            store,
            name=options.name,
            version=version,
            created_at=created_at,
            path=str(final_dir.resolve()),
            params=manifest["options"],
            row_count=len(rows),
            sha256=data_sha256,
        ):
            try:
                staging.rename(final_dir)
            except OSError as exc:
                raise ExportError(f"{final_dir} appeared while exporting (another export?): run again") from exc
        fsync_path(exports_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final_dir


def _copy_media(data_dir: Path, staging: Path, rows: pd.DataFrame, progress: Progress) -> pd.Series:
    """Hardlink (or copy, across file systems) each video into ``media/``; returns the new paths."""
    media_dir = staging / "media"
    media_dir.mkdir()
    suffixes = rows["media_path"].str.extract(r"(\.[A-Za-z0-9]+)$", expand=False).fillna("")
    targets = "media/" + rows["video_id"] + suffixes
    task = progress.add_task("copying media", total=len(rows))
    for source, target in zip(rows["media_path"], targets):  # one file system call per file
        source_path = data_dir / source
        if not source_path.is_file():
            raise ExportError(f"--copy-media: {source_path} is missing; re-run `corpus download`")
        try:
            os.link(source_path, staging / target)
        except OSError:
            shutil.copy2(source_path, staging / target)
        progress.advance(task)
    return targets


def _to_arrow(rows: pd.DataFrame, tags: pa.ListArray, data_format: str) -> pa.Table:
    """The table as written: the export's columns, ``hashtags`` a list (Parquet) or space-joined (CSV)."""
    columns = [c for c in export_columns(rows) if c != "hashtags"]
    table = pa.Table.from_pandas(rows[columns], preserve_index=False)
    hashtags = tags if data_format == "parquet" else pc.binary_join(tags, " ")
    table = table.add_column(EXPORT_COLUMNS.index("hashtags"), "hashtags", hashtags)
    return table.replace_schema_metadata(None)


def _write_table(table: pa.Table, path: Path, data_format: str) -> None:
    if data_format == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
    fsync_path(path)
