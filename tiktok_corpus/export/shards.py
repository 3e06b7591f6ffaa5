"""WebDataset shards of an export (``--format webdataset``): tar files of ``--shard-size`` videos each,
every sample the video's ``.mp4`` and its row as ``.json``, written with the ``webdataset`` library.

The export keeps ``videos.parquet`` beside them (the table every other reader uses); the manifest's
``webdataset`` entry lists each shard with its size, sha256 and counts, so a loader can pick shards
by split balance or check them. :func:`rows_from_shards` reads an export that kept only its shards
(copied without the table or the media): the rows come from the JSON, the files are unpacked once into
``EXPORT/cache/shard-media``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import webdataset as wds

from .._files import fsync_path, sha256_file

SHARD_DIR = "shards"
SHARD_NAME = "videos-{:06d}.tar"
MEDIA_CACHE = Path("cache") / "shard-media"


def write_shards(
    staging: Path,
    table: pa.Table,
    media_root: Path,
    shard_size: int,
    *,
    advance: Callable[[], None] | None = None,
) -> dict:
    """Write ``table``'s rows with their files (``file`` relative to ``media_root``) as shards under
    ``staging/shards``; returns the manifest's ``webdataset`` entry."""
    directory = staging / SHARD_DIR
    directory.mkdir()
    records = table.to_pylist()
    shards = []
    for number, start in enumerate(range(0, len(records), shard_size)):
        chunk = records[start : start + shard_size]
        path = directory / SHARD_NAME.format(number)
        with wds.TarWriter(str(path)) as sink:
            for record in chunk:
                media = (media_root / record["file"]).read_bytes()
                sink.write({"__key__": str(record["video_id"]), "mp4": media, "json": _json(record)})
                if advance is not None:
                    advance()
        fsync_path(path)
        size, digest = sha256_file(path)
        frame = pd.DataFrame(chunk, columns=["split", "is_viral"])
        shards.append(
            {
                "file": f"{SHARD_DIR}/{path.name}",
                "videos": len(chunk),
                "bytes": size,
                "sha256": digest,
                "split": {str(k): int(v) for k, v in frame["split"].value_counts().sort_index().items()},
                "is_viral": {str(k): int(v) for k, v in frame["is_viral"].value_counts().sort_index().items()},
                "first_video_id": str(chunk[0]["video_id"]),
                "last_video_id": str(chunk[-1]["video_id"]),
            }
        )
    last = len(shards) - 1
    return {
        "shard_size": shard_size,
        "urls": f"{SHARD_DIR}/videos-{{{0:06d}..{last:06d}}}.tar",
        "sample": {"__key__": "video_id", "mp4": "the video file", "json": "its row (the columns of the table)"},
        "shards": shards,
    }


def rows_from_shards(root: Path, entry: dict) -> pd.DataFrame:
    """The table of an export read back from its shards (``entry``: the manifest's ``webdataset``), each
    video unpacked once into ``EXPORT/cache/shard-media`` and ``file`` pointing there."""
    media_dir = root / MEDIA_CACHE
    media_dir.mkdir(parents=True, exist_ok=True)
    urls = [str(root / shard["file"]) for shard in entry["shards"]]
    records = []
    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        record = json.loads(sample["json"])
        target = media_dir / f"{sample['__key__']}.mp4"
        if not target.is_file():
            partial = target.with_suffix(".mp4.part")
            partial.write_bytes(sample["mp4"])
            partial.replace(target)
        record["file"] = (MEDIA_CACHE / target.name).as_posix()
        records.append(record)
    rows = pd.DataFrame.from_records(records)
    if "stats_captured_at" in rows:
        rows["stats_captured_at"] = pd.to_datetime(rows["stats_captured_at"], utc=True, format="ISO8601")
    return rows.sort_values("video_id", kind="stable").reset_index(drop=True)


def _json(record: dict) -> bytes:
    return json.dumps(record, default=_json_value).encode()


def _json_value(value):
    """Times as ISO 8601 with microseconds always (``isoformat()`` drops a zero fraction, and a column of
    mixed forms does not parse as one), anything else as its string."""
    if isinstance(value, datetime):  # pd.Timestamp too
        return value.isoformat(timespec="microseconds")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
