"""``run_export``: select, label, split, and write the next version (the steps the package describes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
from rich.progress import Progress

from ..config import Settings
from ..durations import format_duration
from ..store.db import open_store
from ..store.models import utcnow
from .at_age import counts_known_at, rows_by_basis
from .dataset import found_gone, hashtag_lists, load_dataset
from .labels import apply_labels, fit_labels
from .options import ExportError, ExportOptions
from .splits import GAP, SPLITS, assign_splits, gap_margin
from .write import write_version


def run_export(
    settings: Settings,
    options: ExportOptions,
    *,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Path:
    """Write the next version of ``options.name`` and return its directory.

    Steps advance ``progress`` when one is given. Raises :class:`ExportError` when no row is
    exportable; nothing is written then, and no database is made where there is none (a mistyped
    ``--data-dir`` would hold an empty corpus: :class:`ConfigError` says so instead).
    """
    progress = progress or Progress(disable=True)
    with open_store(settings, create=False) as store:
        step = progress.add_task("selecting videos", total=5)
        # One moment's rows, counts and hashtags: a video validated, tracked or re-tagged while they are
        # read is not taken with half of it changed.
        with store.consistent_read() as reader:
            rows, selection = load_dataset(
                reader,
                min_frames=options.min_frames,
                as_of=options.as_of,
                at_age_s=options.at_age_s,
                age_tolerance_s=options.age_tolerance_s,
            )
            if rows.empty:
                raise ExportError(_nothing_to_export(options, selection))
            progress.update(step, advance=1, description="reading hashtags")
            tags = hashtag_lists(reader, rows["video_id"], min_frames=options.min_frames)  # in the rows' order
        progress.update(step, advance=1, description="assigning splits")
        # A stratified split balances a label before the train split exists: the one fitted on every row.
        balanced = rows.join(_fit(rows, options)[0]) if options.stratify else rows
        rows["split"] = assign_splits(
            balanced,
            fractions=options.split,
            seed=options.seed,
            group_by=options.group_by,
            stratify_on=options.label_column if options.stratify else None,
            order=options.split_order,
            label_known_at=counts_known_at(rows).to_numpy() if options.split_order == "time" else None,
            gap_s=options.split_gap_s,
        )
        if options.split_order == "time":
            gap = _split_gap(rows, options)
            outside = ~rows["split"].str.startswith(GAP).to_numpy()
            rows, tags = rows[outside].reset_index(drop=True), tags.filter(pa.array(outside))
            selection = {
                **selection,
                "split_gap": gap,
                "rows_by_age_basis": rows_by_basis(rows["age_basis"]),
                "found_gone": found_gone(rows, selection["found_gone"]),
            }
        progress.update(step, advance=1, description="computing labels")
        # On the rows the export holds (after any gap): --label-fit all, every one of them; else the train split.
        fitted = _fit(rows if options.label_fit == "all" else rows[rows["split"] == "train"], options)
        label_params = {**fitted[1], "fitted_on": options.label_fit}
        rows = rows.join(apply_labels(rows, label_params))
        progress.update(step, advance=1, description="writing files")
        path = write_version(
            store, settings, options, rows, tags, label_params, selection, created_at=clock(), progress=progress
        )
        progress.update(step, advance=1, description="files written")
        return path


def _split_gap(rows: pd.DataFrame, options: ExportOptions) -> dict:
    """What the gaps of a time-ordered split left out (``selection.split_gap``): its extra length and how
    many videos it took from train and from val (``rows_by_age_basis`` is counted again after it, the
    other counts are of the rows before); refused when a split that has a share holds no video."""
    left_out = {name: int((rows["split"] == GAP + name).sum()) for name in ("train", "val")}
    for name, share in zip(SPLITS, options.split):
        if share > 0 and not (rows["split"] == name).any():
            posted = rows["create_time"].astype("float64")
            span = format_duration(int(posted.max() - posted.min())) if posted.notna().any() else "unknown"
            why = (
                f"the labels of all {left_out[name]} were read (at the last sighting each used) after a later "
                f"split's first post{gap_margin(options.split_gap_s)}"
                if left_out.get(name)
                else "too few units (videos, or authors) reach it"
            )
            raise ExportError(
                f"--split-order time leaves no {name} video: {why}, and the posts span {span}; track a longer span "
                "of posts, or give --split other shares"
            )
    return {"gap_s": options.split_gap_s, "left_out": left_out}


def _fit(rows: pd.DataFrame, options: ExportOptions) -> tuple[pd.DataFrame, dict]:
    """The export's labels fitted on ``rows``: their values there and the parameters."""
    weights, quantile = options.weights, options.threshold_quantile
    return fit_labels(rows, weights=weights, threshold_quantile=quantile, normalize_age=options.normalize_age)


def _nothing_to_export(options: ExportOptions, selection: dict) -> str:
    """Why no row is exportable, with the counts that say which filter left nothing."""
    head = f"nothing to export: no video is downloaded, valid, has >= {options.min_frames} frames"
    if options.at_age_s is not None:
        reasons = ", ".join(f"{reason} {n}" for reason, n in selection["excluded_by_reason"].items())
        return (
            f"{head} and snapshots placing it at age {format_duration(options.at_age_s)} "
            f"(tolerance {format_duration(selection['age_tolerance_s'])}; left out: {reasons})"
        )
    return (
        f"{head} and a stats snapshot{' at or before ' + options.as_of.isoformat() if options.as_of else ''}"
        f" ({selection['excluded_no_stats']} valid video(s) lack a snapshot)"
    )
