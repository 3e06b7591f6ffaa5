"""Versioned, immutable dataset exports: one table of videos with labels and splits, a manifest, a card.

``run_export`` selects the exportable videos with set-based SQL (item kind ``video``, downloaded,
probed whole, at least ``min_frames`` frames, and a stats snapshot: :mod:`.dataset`, whose SQL is
in :mod:`tiktok_corpus.store.exports`), labels them (:mod:`.labels`), assigns deterministic splits
(:mod:`.splits`), and writes ``{data dir}/exports/{name}-v{N}/`` (:mod:`.write`, :mod:`.manifest`):

* ``videos.parquet`` (or ``videos.csv``): one row per video, columns :data:`.format.EXPORT_COLUMNS`;
  ``hashtags`` is a list of names in Parquet and a space-joined string in CSV; with ``--at-age`` the
  counts are each video's at that age since posting (:mod:`.at_age`), and
  :data:`.format.PLACEMENT_COLUMNS` (how each was placed) and :data:`.format.GROWTH_COLUMNS` (plays at
  the early ages, growth between them) follow;
* each split's rows alone: ``data/<split>.parquet|csv``, or with ``--format webdataset`` tar shards of
  one split each (:mod:`.shards`), named by the card for Hugging Face ``datasets`` (:mod:`.hub`);
* ``manifest.json``: what the trainer reads (``label``, ``version``, ``label_params``, ...) and what
  redoes the export (options, data cutoff, commit, library versions: :mod:`.provenance`);
* ``README.md``: the dataset card.

Everything is written into a hidden temporary directory that is renamed into place at the end, so a
crash never leaves a half export and an existing version is never touched. Everything is vectorised
(pandas / pyarrow): no per-row Python loops, so 1M rows cost ~10x what 100k rows cost.

Importing this package loads no database code: the names that need the store (:func:`run_export`,
:func:`load_dataset`, :func:`hashtag_lists`, :func:`next_version`) load on first use, so the trainer
reads an export (:func:`read_export`) and its label map (:data:`LABEL_COLUMNS`) without them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..durations import format_duration, parse_duration
from .format import EXPORT_COLUMNS, GROWTH_COLUMNS, MANIFEST_FORMAT, read_export, read_manifest
from .labels import (
    LABEL_COLUMNS,
    METRICS,
    PAPER_THRESHOLD_QUANTILE,
    PAPER_WEIGHTS,
    LabelError,
    apply_labels,
    fit_labels,
)
from .manifest import build_manifest, dataset_card
from .options import ExportError, ExportOptions, parse_numbers, parse_time
from .splits import SPLITS, assign_splits

if TYPE_CHECKING:
    from .dataset import hashtag_lists, load_dataset
    from .run import run_export
    from .write import next_version

_NEEDS_STORE = {"hashtag_lists": ".dataset", "load_dataset": ".dataset", "next_version": ".write", "run_export": ".run"}

__all__ = [
    "EXPORT_COLUMNS",
    "GROWTH_COLUMNS",
    "LABEL_COLUMNS",
    "MANIFEST_FORMAT",
    "METRICS",
    "PAPER_THRESHOLD_QUANTILE",
    "PAPER_WEIGHTS",
    "SPLITS",
    "ExportError",
    "ExportOptions",
    "LabelError",
    "apply_labels",
    "assign_splits",
    "build_manifest",
    "dataset_card",
    "fit_labels",
    "format_duration",
    "hashtag_lists",
    "load_dataset",
    "next_version",
    "parse_duration",
    "parse_numbers",
    "parse_time",
    "read_export",
    "read_manifest",
    "run_export",
]


def __getattr__(name: str) -> Any:
    if name in _NEEDS_STORE:
        value = getattr(importlib.import_module(_NEEDS_STORE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
