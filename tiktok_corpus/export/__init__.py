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

Each name loads its module on first use: reading :class:`ExportOptions` (the CLI does, for its help)
costs no pandas, and the trainer reads an export (:func:`read_export`) without the database code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

if TYPE_CHECKING:
    from .dataset import hashtag_lists, load_dataset
    from .format import EXPORT_COLUMNS, GROWTH_COLUMNS, MANIFEST_FORMAT, read_export, read_manifest
    from .label_names import LABEL_COLUMNS, METRICS, PAPER_THRESHOLD_QUANTILE, PAPER_WEIGHTS
    from .labels import LabelError, apply_labels, fit_labels
    from .manifest import build_manifest, dataset_card
    from .options import ExportError, ExportOptions, parse_numbers, parse_time
    from .run import run_export
    from .splits import SPLITS, assign_splits
    from .write import next_version

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "dataset": ["hashtag_lists", "load_dataset"],
        "format": ["EXPORT_COLUMNS", "GROWTH_COLUMNS", "MANIFEST_FORMAT", "read_export", "read_manifest"],
        "label_names": ["LABEL_COLUMNS", "METRICS", "PAPER_THRESHOLD_QUANTILE", "PAPER_WEIGHTS"],
        "labels": ["LabelError", "apply_labels", "fit_labels"],
        "manifest": ["build_manifest", "dataset_card"],
        "options": ["ExportError", "ExportOptions", "parse_numbers", "parse_time"],
        "run": ["run_export"],
        "splits": ["SPLITS", "assign_splits"],
        "write": ["next_version"],
    },
)
