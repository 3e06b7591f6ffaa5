"""Extract, cache and load the per-video feature tables of an export, one modality at a time.

Each modality lives in its own module (``video``, ``audio``, ``text``, ``author``, ``timing``) with
``settings(options)``, what changes its output, and ``compute(export, options, advance)``, a frame
indexed by ``video_id`` in the export's row order with float columns ``<modality>.<feature>``. Modules
load on first use, so asking for text features never imports torch.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .cache import CacheEntry, TableParts, cached_entries, read_cached, table_identity, write_cached
from .options import FeatureOptions, FeatureSummary, ModalityResult, check_modalities

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..train.export_table import Export

MODULES = {"video": "video", "audio": "audio", "text": "text", "author": "author", "time": "timing"}
# The modalities whose table can take hours (a network over every clip): their rows are kept as they are
# made (:class:`.cache.TableParts`), their ``compute`` takes them, and a stopped run goes on from them.
KEPT_AS_MADE = ("video",)


def _module(modality: str):
    return importlib.import_module(f".{MODULES[modality]}", __package__)


def _export(export_dir: Path) -> Export:
    from ..train.export_table import load_export  # the trainer's reader: the same checks, the same row order

    return load_export(Path(export_dir))


def _identity(export: Export) -> str:
    """The export table's :func:`.cache.table_identity`, read once per call of this module's functions."""
    return table_identity(export.root, export.manifest)


def _entry(identity: str, modality: str, options: FeatureOptions) -> CacheEntry:
    return CacheEntry(modality, {"table_sha256": identity, **_module(modality).settings(options)})


def _reused_entry(export: Export, identity: str, modality: str, options: FeatureOptions) -> CacheEntry | None:
    """With ``options.reuse_cached``, a cached table of ``modality`` for this export's table, made by this
    version of its extractor with the ``options.pinned`` settings (those given: the backbone's --weights
    only when asked for): one of real weights before a random network's, the newest first; else, or where
    there is none, None."""
    if not options.reuse_cached:
        return None
    requested = _entry(identity, modality, options).settings
    binding = {key: requested[key] for key in ("table_sha256", "version", *options.pinned) if key in requested}
    video_ids = pd.Index(export.table["video_id"], name="video_id")
    candidates = cached_entries(export.root, modality)
    for entry, _ in sorted(candidates, key=lambda pair: (not _random_init(pair[0]), pair[1]), reverse=True):
        agrees = all(entry.settings.get(key) == value for key, value in binding.items())
        if agrees and read_cached(export.root, entry, video_ids) is not None:  # a whole table, never recomputed
            return entry
    return None


def _provenance(export: Export, entry: CacheEntry) -> dict:
    about = {
        "settings": entry.settings,
        "cache_file": str(entry.table_path(export.root)),
        "random_init": _random_init(entry),
    }
    if entry.modality == "author":
        about["profile_at_posting"] = _module("author").profile_read_at_posting(export.manifest)
        about["test_rows_of_train_authors"] = _module("author").test_rows_of_train_authors(
            export.manifest, export.table
        )
    return about


def _random_init(entry: CacheEntry) -> bool:
    """Whether the table is a randomly initialised network's (only the video settings can say so)."""
    return bool(entry.settings.get("random_init"))


def _table(
    export: Export, entry: CacheEntry, options: FeatureOptions, progress: Progress | None
) -> tuple[pd.DataFrame, ModalityResult]:
    """A modality's table from the cache, or computed (and cached) when the cache has no valid one."""
    started = time.monotonic()
    modality = entry.modality
    video_ids = pd.Index(export.table["video_id"], name="video_id")
    frame = read_cached(export.root, entry, video_ids)
    hit = frame is not None
    if frame is None:
        frame = _computed(export, entry, options, progress)
        frame.index = video_ids
    details = _details(entry, frame)
    if not hit:
        write_cached(export.root, entry, frame, {"random_init": _random_init(entry), "details": details})
    if modality in KEPT_AS_MADE:  # its rows kept as they were made go once the table is cached (a run
        TableParts(export.root, entry).remove()  # killed between the two left them: removed on a hit too)
    result = ModalityResult(
        modality=modality,
        cache_file=entry.table_path(export.root),
        columns=frame.shape[1],
        seconds=time.monotonic() - started,
        cache_hit=hit,
        random_init=_random_init(entry),
        details=details,
    )
    return frame, result


def _computed(export: Export, entry: CacheEntry, options: FeatureOptions, progress: Progress | None) -> pd.DataFrame:
    """A modality's table made now (from the rows a stopped run kept, where it keeps them)."""
    modality = entry.modality
    task = progress.add_task(modality, total=len(export.table)) if progress is not None else None

    def advance(rows: int) -> None:
        if progress is not None and task is not None:
            progress.advance(task, rows)

    if modality in KEPT_AS_MADE:
        return _module(modality).compute(export, options, advance, TableParts(export.root, entry))
    return _module(modality).compute(export, options, advance)


def _details(entry: CacheEntry, frame: pd.DataFrame) -> dict:
    """What a modality says of its table beyond the columns (``author``: how many rows got statistics)."""
    describe = getattr(_module(entry.modality), "describe", None)
    return describe(frame) if describe is not None else {}


# The order the tables are made in, cheapest first: a Ctrl-C during the video embedding (minutes of a
# network over every clip) keeps the others cached (seconds together, but lost when it came first).
COMPUTED_FIRST = ("time", "author", "text", "audio", "video")


def _tables(
    export_dir: Path, modalities: Sequence[str], options: FeatureOptions, progress: Progress | None
) -> tuple[list[pd.DataFrame], FeatureSummary, dict]:
    check_modalities(list(modalities))
    export = _export(export_dir)
    identity = _identity(export)
    entries = [_reused_entry(export, identity, m, options) or _entry(identity, m, options) for m in modalities]
    summary = FeatureSummary(export_dir=export.root, rows=len(export.table))
    if progress is None and options.progress:
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        bar: Progress | nullcontext = RichProgress(console=Console(stderr=True), transient=True)
    else:
        bar = nullcontext(progress)
    made: dict[str, tuple[pd.DataFrame, ModalityResult]] = {}
    with bar as running:
        for entry in sorted(entries, key=lambda e: COMPUTED_FIRST.index(e.modality)):
            made[entry.modality] = _table(export, entry, options, running)
    frames = [made[entry.modality][0] for entry in entries]  # the columns in the order asked for
    summary.results.extend(made[entry.modality][1] for entry in entries)
    return frames, summary, {entry.modality: _provenance(export, entry) for entry in entries}


def extract_features(export_dir: Path, options: FeatureOptions, progress: Progress | None = None) -> FeatureSummary:
    """Compute and cache every table of ``options.modalities`` that the cache lacks; what it did.

    ``progress``: a running rich Progress to draw on (the CLI's); without one, ``options.progress``
    shows a transient bar of its own on stderr.
    """
    return _tables(export_dir, options.modalities, options, progress)[1]


def load_features_and_provenance(
    export_dir: Path, modalities: Sequence[str], options: FeatureOptions, progress: Progress | None = None
) -> tuple[pd.DataFrame, dict]:
    """:func:`load_features` and :func:`feature_provenance` in one pass over the export."""
    frames, _, provenance = _tables(export_dir, modalities, options, progress)
    return pd.concat(frames, axis=1), provenance


def load_features(
    export_dir: Path,
    modalities: Sequence[str],
    options: FeatureOptions | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """One frame of ``modalities``' features: index ``video_id`` (str), the export's rows in order, float
    columns ``<modality>.<feature>`` (NaN where a value does not exist); missing tables are computed first."""
    options = options or FeatureOptions(modalities=tuple(modalities))
    return load_features_and_provenance(export_dir, modalities, options, progress)[0]


def feature_provenance(export_dir: Path, modalities: Sequence[str], options: FeatureOptions) -> dict:
    """Per modality: the settings its table was (or will be) made with, its cache file, its random_init flag."""
    check_modalities(list(modalities))
    export = _export(export_dir)
    identity = _identity(export)
    return {m: _provenance(export, _entry(identity, m, options)) for m in modalities}
