"""WebDataset shards of an export (``--format webdataset``): tar files of ``--shard-size`` videos of one
split each (``shards/train-000000.tar``, ``shards/val-...``, ``shards/test-...``: reading one split's
shards never yields another split's rows), every sample the video's ``.mp4`` and its row as ``.json``,
written with the ``webdataset`` library.

The export keeps ``videos.parquet`` beside them (the table every other reader uses); the manifest's
``webdataset`` entry gives each split's shard URLs and lists each shard with its split, size, sha256
and label counts, so a loader can pick or check them. :func:`rows_from_shards` reads an export that
kept only its shards (copied without the table or the media): the rows come from the JSON, the files
are unpacked once into ``EXPORT/cache/shard-media``.
"""

from __future__ import annotations

import hashlib
import json
import math
import tarfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import webdataset as wds

from .._files import fsync_path, remove_abandoned_scratch, replacing, sha256_file
from ..errors import ConfigError
from ..tiktok.contract.records import valid_id
from .format import SHARD_DIR, shard_path, with_parsed_times
from .splits import SPLITS

MEDIA_CACHE = Path("cache") / "shard-media"


def write_shards(
    staging: Path,
    table: pa.Table,
    media_root: Path,
    shard_size: int,
    *,
    advance: Callable[[], None] | None = None,
) -> dict:
    """Write ``table``'s rows with their files (``file`` relative to ``media_root``) as shards of one
    split each under ``staging/shards``; returns the manifest's ``webdataset`` entry. Each file's bytes are
    hashed as they are packed: an ExportError names those that are not their row's ``sha256``.

    Only one shard's rows are Python objects at a time (a million rows at once took gigabytes)."""
    from .write import not_the_rows_bytes  # here: reading shards back needs none of the writing (nor the store)

    (staging / SHARD_DIR).mkdir()
    shards, urls, differ = [], {}, []
    for split in SPLITS:
        rows = table.filter(pc.equal(table["split"], split))
        count = math.ceil(rows.num_rows / shard_size)
        if count:
            urls[split] = shard_path(split, f"{{000000..{count - 1:06d}}}")
        for number in range(count):
            records = rows.slice(number * shard_size, shard_size).to_pylist()
            file = shard_path(split, f"{number:06d}")
            path = staging / file
            with wds.TarWriter(str(path), mtime=0) as sink:  # the same rows give the same bytes: no clock in them
                for record in records:
                    source = media_root / record["file"]
                    media = source.read_bytes()
                    if hashlib.sha256(media).hexdigest() != record["sha256"]:
                        differ.append(source.resolve())  # its name without the staging folder, gone by then
                    sink.write({"__key__": str(record["video_id"]), "mp4": media, "json": _json(record)})
                    if advance is not None:
                        advance()
            fsync_path(path)
            size, digest = sha256_file(path)
            viral = pd.Series([record["is_viral"] for record in records]).value_counts().sort_index()
            shards.append(
                {
                    "file": file,
                    "split": split,
                    "videos": len(records),
                    "bytes": size,
                    "sha256": digest,
                    "is_viral": {str(k): int(v) for k, v in viral.items()},
                    "first_video_id": str(records[0]["video_id"]),
                    "last_video_id": str(records[-1]["video_id"]),
                }
            )
    if differ:
        raise not_the_rows_bytes(differ)
    return {
        "shard_size": shard_size,
        "urls": urls,
        "sample": {"__key__": "video_id", "mp4": "the video file", "json": "its row (the columns of the table)"},
        "shards": shards,
    }


def rows_from_shards(root: Path, entry: dict) -> pd.DataFrame:
    """The table of an export read back from its shards (``entry``: the manifest's ``webdataset``), each
    video unpacked once into ``EXPORT/cache/shard-media`` and ``file`` pointing there."""
    urls = [str(_whole_shard(root, shard)) for shard in entry["shards"]]
    media_dir = root / MEDIA_CACHE
    media_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_scratch(media_dir)
    records = []
    try:
        for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
            records.append(_unpacked(sample, media_dir))
    except tarfile.TarError as exc:
        raise ConfigError(f"{root}: its shards cannot be read ({exc}); copy the export's shards again") from exc
    if len(records) != (expected := sum(shard["videos"] for shard in entry["shards"])):
        # Zeroed blocks read as a tar's end: a damaged shard of the right size ends early, without an error.
        raise ConfigError(
            f"{root}: its shards hold {len(records)} videos where the manifest records {expected}; "
            "copy the export's shards again"
        )
    rows = with_parsed_times(pd.DataFrame.from_records(records))
    return rows.sort_values("video_id", kind="stable").reset_index(drop=True)


def _unpacked(sample: dict, media_dir: Path) -> dict:
    """A sample's row, its video written out once under ``media_dir`` and ``file`` pointing there."""
    record = json.loads(sample["json"])
    key = sample["__key__"]
    if valid_id(key) != key or str(record.get("video_id")) != key:  # the key becomes a file name
        raise ConfigError(
            f"{sample['__url__']}: a sample named {key[:60]!r} is not a video of this export (its key must "
            "be its row's video_id, digits only); refused, nothing written for it"
        )
    target = media_dir / f"{key}.mp4"
    if not target.is_file():  # two readers at once each write their own scratch file: both land whole
        with replacing(target) as partial:
            partial.write_bytes(sample["mp4"])
    record["file"] = (MEDIA_CACHE / target.name).as_posix()
    return record


def _whole_shard(root: Path, shard: dict) -> Path:
    """A shard's path, once it is the size the manifest gives it: one copied in part reads as a shorter
    tar, its lost samples silently missing from the table."""
    path = root / shard["file"]
    size = path.stat().st_size if path.is_file() else None
    if size != shard["bytes"]:
        found = "missing" if size is None else f"{size:,} bytes"
        raise ConfigError(
            f"{path}: {found}, where the manifest records {shard['bytes']:,} (copied in part?); "
            "copy the export's shards again"
        )
    return path


def _json(record: dict) -> bytes:
    return json.dumps(record, default=_json_value).encode()


def _json_value(value):
    """Times as ISO 8601 with microseconds always (``isoformat()`` drops a zero fraction, and a column of
    mixed forms does not parse as one), anything else as its string."""
    if isinstance(value, datetime):  # pd.Timestamp too
        return value.isoformat(timespec="microseconds")
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
