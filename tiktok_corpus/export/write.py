"""Writing one version: a hidden staging directory with the tables, the manifest and the card, renamed
into place together with its ``exports`` row, so a crash never leaves half an export and an existing
version is never touched.

The staging directory is named after its writer (:func:`~tiktok_corpus._files.scratch_path` of
``.{name}.partial``) and held by its :func:`~tiktok_corpus._files.writer_lock`: one whose process is gone
(killed, out of memory) is removed by the next export, on any host sharing the folder. Two exports of one
name at once each get a version of their own: the one that finds its version taken (by the ``exports``
row or the directory) writes its manifest and card again for the next one, up to
:data:`MAX_VERSION_ATTEMPTS` times. A version whose directory landed but whose row did not (its export
killed between the two) is recorded by the next export from its manifest."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.progress import Progress

from .._files import (
    file_stat,
    fsync_path,
    remove_abandoned_scratch,
    scratch_path,
    sha256_file,
    write_text_durably,
    writer_lock,
    written_since,
)
from ..config import Settings
from ..errors import ConfigError
from ..store.db import Store
from ..store.exports import VersionTaken, latest_export_version, recorded_exports, recording_export
from .format import EXPORT_COLUMNS, MANIFEST_FILE, export_columns, read_manifest, shard_path
from .hub import SPLIT_TABLE_DIR, features, split_table_path
from .manifest import build_manifest, dataset_card
from .options import ExportError, ExportOptions
from .splits import SPLITS

MAX_VERSION_ATTEMPTS = 10
VERSION_DIR = re.compile(r"^(?P<name>.+)-v(?P<version>\d+)$")
RECORDED_FIELDS = {"created_at", "options", "row_count", "data_sha256"}  # what an ``exports`` row takes
COPY_BUFFER_BYTES = 1 << 20  # what --copy-media reads, hashes and writes at a time
# Files --copy-media copies at once: each waits on its fsync (a few ms), which others overlap.
COPY_THREADS = 8


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
    remove_abandoned_scratch(exports_dir)
    record_landed_versions(store, exports_dir)
    staging = scratch_path(exports_dir / f".{options.name}.partial")
    with writer_lock(staging):  # any host's next export removes it, should this one be killed
        staging.mkdir()
        try:
            layout = _write_data(settings.data_dir, staging, options, rows, tags, progress)
            for directory, _, _ in os.walk(staging, topdown=False):  # its files are; their names too, before it lands
                fsync_path(Path(directory))  # (staging itself again below, once its manifest is in)
            for _ in range(MAX_VERSION_ATTEMPTS):
                version = next_version(store, exports_dir, options.name)
                manifest = build_manifest(
                    options,
                    rows,
                    label_params,
                    selection,
                    version=version,
                    created_at=created_at,
                    source_database=store.safe_url,
                    **layout,
                )
                write_text_durably(staging / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
                write_text_durably(staging / "README.md", dataset_card(manifest))
                fsync_path(staging)
                final_dir = exports_dir / f"{options.name}-v{version}"
                try:
                    with recording_export(
                        store,
                        name=options.name,
                        version=version,
                        created_at=created_at,
                        path=str(final_dir.resolve()),
                        params=manifest["options"],
                        row_count=len(rows),
                        sha256=manifest["data_sha256"],
                    ):
                        _move_into_place(staging, final_dir)
                        fsync_path(exports_dir)  # the rename lasts before the row commits: no row names a lost folder
                except VersionTaken:
                    continue
                return final_dir
            raise ExportError(
                f"{options.name}: other exports of this name took {MAX_VERSION_ATTEMPTS} versions in a row while this "
                "one was written; run again"
            )
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def record_landed_versions(store: Store, exports_dir: Path) -> None:
    """Record each version directory of this database that has no ``exports`` row: its export was killed
    after moving it into place and before committing the row. The directory is whole (it only ever
    appears whole), so its manifest gives the row; another database's exports in this data dir, and a
    directory whose manifest is damaged or does not match its name, are left alone."""
    recorded = recorded_exports(store)
    for path in sorted(exports_dir.iterdir()):
        found = VERSION_DIR.match(path.name)
        if not found or (found["name"], int(found["version"])) in recorded or not (path / MANIFEST_FILE).is_file():
            continue
        try:
            manifest = read_manifest(path)
        except ConfigError:  # damaged or from a newer version: not a version this export can vouch for
            continue
        if (
            (manifest.get("name"), manifest.get("version")) != (found["name"], int(found["version"]))
            or not store.is_named_by(str(manifest.get("source_database")))
            or not RECORDED_FIELDS <= manifest.keys()
        ):
            continue
        try:
            with recording_export(
                store,
                name=manifest["name"],
                version=manifest["version"],
                created_at=datetime.fromisoformat(manifest["created_at"]),
                path=str(path.resolve()),
                params=manifest["options"],
                row_count=manifest["row_count"],
                sha256=manifest["data_sha256"],
            ):
                pass
        except VersionTaken:  # its own export committed it meanwhile
            continue


def _move_into_place(staging: Path, final_dir: Path) -> None:
    try:
        staging.rename(final_dir)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
        raise VersionTaken(f"{final_dir} appeared while exporting") from exc


def _write_data(
    data_dir: Path, staging: Path, options: ExportOptions, rows: pd.DataFrame, tags: pa.ListArray, progress: Progress
) -> dict:
    """The data files into ``staging``: the whole table (``videos.parquet|csv``, what our own tools read),
    and each split's rows, as a table (``data/<split>.<format>``) or, for ``--format webdataset``, as
    shards; returns what the manifest says of them."""
    _check_media(data_dir, rows)
    if options.copy_media:
        rows["file"] = _copy_media(data_dir, staging, rows, progress)
    else:  # relative to the export, which sits beside the staging directory
        prefix = Path("..", os.path.relpath(data_dir.resolve(), staging.parent.resolve())).as_posix()
        rows["file"] = rows["media_path"].where(
            rows["media_path"].str.startswith("/"), prefix + "/" + rows["media_path"]
        )
    table_format = "csv" if options.format == "csv" else "parquet"
    data_file = staging / f"videos.{table_format}"
    table = _to_arrow(rows, tags, table_format)
    _write_table(table, data_file, table_format)
    present = [split for split in SPLITS if (rows["split"] == split).any()]
    if options.format == "webdataset":
        from .shards import write_shards  # here: webdataset imports torch (5 s, 0.9 GB), needed for shards only

        task = progress.add_task("writing shards", total=len(rows))
        shards = write_shards(staging, table, staging, options.videos_per_shard, advance=lambda: progress.advance(task))
        split_files = {split: {"path": shard_path(split, "*")} for split in present}
    else:
        shards = None
        (staging / SPLIT_TABLE_DIR).mkdir()
        split_files = {split: _write_split(table, split, staging, table_format) for split in present}
    return {
        "data_file": data_file.name,
        "data_sha256": sha256_file(data_file)[1],
        "shards": shards,
        "split_files": split_files,
        "features": features(table, options.format),
    }


def _write_split(table: pa.Table, split: str, staging: Path, data_format: str) -> dict:
    """One split's rows as a table of their own; its manifest entry."""
    path = split_table_path(split, data_format)
    _write_table(table.filter(pc.equal(table["split"], split)), staging / path, data_format)
    return {"path": path, "sha256": sha256_file(staging / path)[1]}


def _check_media(data_dir: Path, rows: pd.DataFrame) -> None:
    """An ExportError unless every selected row's file is on disk as its probe found it: its size, not
    written since (one stat each, what `corpus validate` checks before probing a file again; hashing
    200k files would take long, and --copy-media hashes what it copies). A table must not list files
    that are not there or not the row's, nor a shard fail half-written."""
    missing, changed = [], []
    probed = pd.to_datetime(rows["probed_at"], utc=True).dt.to_pydatetime()
    for relative, size, probed_at in zip(rows["media_path"], rows["size_bytes"].tolist(), probed):
        path = os.path.join(data_dir, relative)  # a str: pathlib's joins took half the time at 200k files
        stat = file_stat(path)
        if stat is None:
            missing.append(path)
        elif stat.st_size != size or written_since(stat, None if probed_at is pd.NaT else probed_at):
            changed.append(path)
    found = [f"{len(missing)} selected video file(s) are missing, e.g. {_some(missing)}"] if missing else []
    if changed:
        found.append(
            f"{len(changed)} selected video file(s) changed since `corpus validate` probed them (another size, or "
            f"written since), e.g. {_some(changed)}"
        )
    if found:
        raise ExportError(
            f"{'; '.join(found)}; run `corpus validate` (it marks missing files missing_file and probes changed "
            "ones again; exports leave out what it finds unfit, and `corpus download --retry-failed` fetches it "
            "again), then export again"
        )


def _copy_media(data_dir: Path, staging: Path, rows: pd.DataFrame, progress: Progress) -> pd.Series:
    """Copy each video into ``media/``; returns the new paths. The export holds its own copies, so that
    no later change to the corpus's files reaches it (a hard link would), each checked against its row's
    sha256 as it is copied: an ExportError names the files whose bytes are not the row's."""
    media_dir = staging / "media"
    media_dir.mkdir()
    suffixes = rows["media_path"].str.extract(r"(\.[A-Za-z0-9]+)$", expand=False).fillna("")
    targets = "media/" + rows["video_id"] + suffixes
    task = progress.add_task("copying media", total=len(rows))
    sources = [data_dir / path for path in rows["media_path"]]
    differ = []
    with ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="export-copy") as pool:
        copied = pool.map(_copy_hashed, sources, [staging / target for target in targets])
        try:
            for source, digest, sha256 in zip(sources, copied, rows["sha256"]):
                if digest != sha256:
                    differ.append(source)
                progress.advance(task)
        except BaseException:  # a Ctrl-C, a full disk: the export stops now, not after every queued copy
            pool.shutdown(cancel_futures=True)
            raise
    if differ:
        raise not_the_rows_bytes(differ)
    return targets


def not_the_rows_bytes(paths: Sequence[str | os.PathLike[str]]) -> ExportError:
    """The error for files whose bytes, hashed as the export read them, are not their row's sha256."""
    return ExportError(
        f"{len(paths)} selected video file(s) do not hold the bytes their row's sha256 names though their "
        f"size and mtime are the probe's (changed in place with an old mtime, or damaged on disk), e.g. "
        f"{_some(paths)}; `touch` them so that `corpus validate` probes them again, then export again"
    )


def _copy_hashed(source: Path, target: Path) -> str:
    """Copy ``source`` to a new file ``target``, fsynced; returns the sha256 of the bytes copied."""
    digest = hashlib.sha256()
    buffer = bytearray(COPY_BUFFER_BYTES)
    with open(source, "rb") as reading, open(target, "xb") as writing:
        while size := reading.readinto(buffer):
            chunk = memoryview(buffer)[:size]
            digest.update(chunk)
            writing.write(chunk)
        writing.flush()
        os.fsync(writing.fileno())
    return digest.hexdigest()


def _some(paths: Sequence[str | os.PathLike[str]]) -> str:
    """The first few of ``paths``, for a one-line message."""
    return ", ".join(map(str, paths[:3])) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


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
