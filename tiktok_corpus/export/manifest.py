"""``manifest.json`` and the dataset card (``README.md``) made from it."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict
from datetime import UTC, datetime

import pandas as pd

from .. import __version__
from ..durations import format_duration
from .at_age import METHOD, on_time_at_age
from .format import CSV_READ, EARLY_AGES_S, GROWTH_COLUMNS, MANIFEST_FORMAT, PLACEMENT_COLUMNS, export_columns
from .hub import HUB_SPLITS, front_matter
from .options import ExportOptions
from .provenance import git_commit, library_versions
from .splits import SPLITS, gap_margin, split_units


def build_manifest(
    options: ExportOptions,
    rows: pd.DataFrame,
    label_params: dict,
    selection: dict,
    *,
    version: int,
    created_at: datetime,
    data_file: str,
    data_sha256: str,
    source_database: str,
    split_files: dict,
    features: list[dict] | None = None,
    shards: dict | None = None,
) -> dict:
    """``manifest.json``: what the trainer reads (``label``, ``label_column``, ``label_params``, ...),
    the counts per split, the selection and every option, so an export can be explained and redone;
    each split's own file (``split_files``) and the columns' types as the card declares them
    (:mod:`.hub`); with ``--format webdataset`` the shard index (:func:`.shards.write_shards`) under
    ``webdataset``. The code's commit and the library versions say what computed it."""
    by_split = rows["split"].value_counts().reindex(list(SPLITS), fill_value=0)
    viral_by_split = pd.crosstab(rows["split"], rows["is_viral"]).reindex(
        index=list(SPLITS), columns=[0, 1], fill_value=0
    )
    score_by_split = rows.groupby("split")["virality_score"].agg(["mean", "std"]).reindex(list(SPLITS))
    options_record = {k: v for k, v in asdict(options).items() if k != "command_line"}
    options_record["as_of"] = options.as_of.isoformat() if options.as_of else None
    return {
        "format_version": MANIFEST_FORMAT,
        "name": options.name,
        "version": version,
        "created_at": created_at.astimezone(UTC).isoformat(),
        "label": options.label,
        "label_column": options.label_column,
        "label_params": label_params,
        "age_basis": age_basis(options, selection),
        **({"growth_features": growth_features(rows)} if any(c in rows.columns for c in GROWTH_COLUMNS) else {}),
        "data_file": data_file,
        "data_format": options.format,
        "data_sha256": data_sha256,
        "columns": export_columns(rows),
        "hashtags_encoding": "space-joined names" if options.format == "csv" else "list of names",
        "split_files": split_files,
        **({"features": features} if features else {}),
        **({"webdataset": shards} if shards else {}),
        "file_paths": "relative to the export directory",
        "media": "copied" if options.copy_media else "referenced",
        "row_count": int(len(rows)),
        "counts": {
            "split": {s: int(n) for s, n in by_split.items()},
            "is_viral": {str(k): int((rows["is_viral"] == k).sum()) for k in (0, 1)},
            "split_is_viral": {
                s: {str(k): int(viral_by_split.at[s, k]) for k in (0, 1)}  # type: ignore[arg-type]
                for s in SPLITS
            },
            "split_virality_score": {
                s: {k: (None if pd.isna(v) else float(v)) for k, v in score_by_split.loc[s].items()} for s in SPLITS
            },
        },
        "split": {
            "seed": options.seed,
            "fractions": dict(zip(SPLITS, options.split)),
            "group_by": options.group_by,
            "stratify": options.stratify,
            "stratified_on": options.label_column if options.stratify else None,
            "order": options.split_order,
            **({"gap_s": options.split_gap_s} if options.split_order == "time" else {}),
            "method": (
                "units ordered by their first create_time (oldest first; the seeded hash breaks ties), cut at "
                "the cumulative fractions"
                if options.split_order == "time"
                else "units ordered by a seeded hash of their id, cut at the cumulative fractions"
            ),
            "same_file": "units holding the same file (sha256) are joined into one: a repost stays in one split",
            "videos_sharing_a_file": int(rows["sha256"].replace("", None).dropna().duplicated(keep=False).sum()),
            "largest_unit_videos": int(pd.Series(split_units(rows, options.group_by)).value_counts().max()),
        },
        "selection": selection,
        "source_database": source_database,
        "package_version": __version__,
        "git_commit": git_commit(),
        "library_versions": library_versions(),
        "command_line": shlex.join(options.command_line) if options.command_line else None,
        "options": options_record,
    }


def age_basis(options: ExportOptions, selection: dict) -> dict | str:
    """When the counts the labels are computed from were taken: ``"latest snapshot"``, ``"as of <time>"``,
    or, with ``--at-age``, the age, the tolerance in force and where it comes from, the method and the
    columns that say how each row was placed (``selection`` counts the rows each way)."""
    if options.at_age_s is None:
        return f"as of {options.as_of.isoformat()}" if options.as_of else "latest snapshot"
    return {
        "at_age_s": options.at_age_s,
        "tolerance_s": selection["age_tolerance_s"],
        "at_age": format_duration(options.at_age_s),
        "tolerance": format_duration(selection["age_tolerance_s"]),
        "tolerance_rule": selection["age_tolerance_rule"],
        "on_time_s": on_time_at_age(options.at_age_s, selection["age_tolerance_s"]),
        "method": METHOD,
        "row_columns": list(PLACEMENT_COLUMNS),
    }


def growth_features(rows: pd.DataFrame) -> dict:
    """What the growth columns of an ``--at-age`` export hold, and how many rows have each."""
    columns = [c for c in GROWTH_COLUMNS if c in rows.columns]
    return {
        "columns": columns,
        "early_ages_s": {name: age for name, age in EARLY_AGES_S.items() if f"play_count_at_{name}" in rows.columns},
        "counts": "play_count_at_<age>: plays at that age by the label's rule, tolerance min(--age-tolerance, age/4), "
        "from the sightings up to the label's age only",
        "growth": "play_growth_<a>_<b>: (log1p(plays at b) - log1p(plays at a)) per day",
        "non_null": {c: int(rows[c].notna().sum()) for c in columns},
    }


def dataset_card(manifest: dict) -> str:
    """The README.md of an export: provenance, labels, balance, biases, terms and personal data."""
    params, counts = manifest["label_params"], manifest["counts"]
    weights = ", ".join(f"{m.removesuffix('_count')} {w:g}" for m, w in params["weights"].items())
    balance = "\n".join(
        f"| {split} | {counts['split'][split]} | {counts['split_is_viral'][split]['1']} | "
        f"{counts['split_is_viral'][split]['0']} | {_fmt(counts['split_virality_score'][split]['mean'])} |"
        for split in SPLITS
    )
    thresholds = ", ".join(f"{m} > {v:g}" for m, v in params["thresholds"].items())
    stats, at_age_label, engagement_bias = _age_basis_text(manifest)
    order = (  # exports made before --split-order were in random order
        "time (units ordered by their first posting time: train the oldest, test the newest)"
        if manifest["split"].get("order") == "time"
        else "random"
    )
    if gap := manifest["selection"].get("split_gap"):
        left = gap["left_out"]
        order += (
            f"; the train and val videos whose label was read (at the last sighting it used) after a later split's "
            f"first post{gap_margin(gap['gap_s'])} are left out ({left['train']} train, {left['val']} val), so no "
            "train label was read after a test post appeared"
        )
    cutoff_source = "given by --as-of" if manifest["selection"].get("as_of") else "the newest snapshot read"
    # A plain export reads the author profiles as last seen, which no cutoff brings back.
    redo = (
        f"; the same command with `--as-of {manifest['selection']['data_cutoff']}` makes it again from the corpus "
        "grown since, as long as no file of a video seen by then was downloaded or validated after this export "
        "(it would join the rerun: compare `row_count` and `data_sha256`)"
        if manifest["selection"].get("as_of") or isinstance(manifest.get("age_basis"), dict)
        else ""
    )
    placed = manifest["selection"].get("author_counts")
    author_counts = (
        f"read from the author's snapshots, not the profile as last seen ({placed['placed']} rows; "
        f"{placed['unknown']} left unknown: no snapshot of their author by then - a corpus crawled before "
        "the crawl kept author snapshots has them only from `corpus track`); `verified` likewise, "
        f"unknown for {placed.get('verified_unknown', placed['placed'])} placed rows whose snapshot predates "
        f"the badge. The rule: {placed['rule']}"
        if placed
        else "the profile as last seen"
    )
    fitted_rows = (  # exports made before --label-fit were fitted on every row
        "the train split's rows (val and test may score outside [0, 1])"
        if params.get("fitted_on") == "train"
        else "all these rows"
    )
    code = (
        f"commit `{manifest['git_commit']}`" if manifest["git_commit"] else "no git commit known (an installed package)"
    )
    libraries = ", ".join(f"{name} {version}" for name, version in manifest["library_versions"].items())
    return f"""{front_matter(manifest)}# {manifest["name"]} v{manifest["version"]}

A dataset of TikTok videos with engagement statistics and virality labels, made by `tiktok-corpus`
{manifest["package_version"]} on {manifest["created_at"]} for the **{manifest["label"]}** label
(`{manifest["label_column"]}`). {manifest["row_count"]} videos; data in `{manifest["data_file"]}`
(sha256 `{manifest["data_sha256"]}`), every parameter in `manifest.json`.

## Loading it
{_loading_text(manifest)}
## Provenance and collection method
- Source database: `{manifest["source_database"]}`.
- Videos were discovered by a crawler of TikTok's public web site: "For You" seed videos, then random
  expansion through each video's related-videos list (the method of "The Viral Vision").
- Files were downloaded, checked, and probed with libav in-process (PyAV; ffprobe where libav cannot read
  a file). A video is included when it is a video item,
  downloaded, probed whole (`valid`, or `too_short` by a stricter `corpus validate --min-frames`), has at
  least {manifest["selection"]["min_frames"]} frames (this export's own threshold) and has {stats}
- Media are {manifest["media"]}; `file` is relative to this directory.
- The author's profile counts (`follower_count`, `following_count`, `heart_count`, `video_count`) are
  {author_counts}.
- To redo it: the data were cut off at {manifest["selection"]["data_cutoff"]} ({cutoff_source}){redo};
  tiktok-corpus {manifest["package_version"]}, {code}; {libraries}; the command line and every option are
  in `manifest.json`.

## Labels (docs/labels.md has the full definition)
- `virality_score`: per metric `log1p`{" of the per-day rate" if params["normalize_age"] else ""}, robust
  scaling (median / interquartile range, linear quantiles), weighted sum ({weights}), min-max scaled to
  [0, 1] over {fitted_rows}.
- `is_viral`: 1 iff all four metrics exceed their {params["threshold_quantile"]:g} quantile ({thresholds}).
{at_age_label}
## Splits and class balance
Seed {manifest["split"]["seed"]}, fractions {manifest["split"]["fractions"]}, grouped by
{manifest["split"]["group_by"]}, stratified: {manifest["split"]["stratify"]}, order: {order}. Videos holding the
same file (sha256) are kept in one split ({manifest["split"].get("videos_sharing_a_file", 0)} such videos).

| split | videos | is_viral = 1 | is_viral = 0 | mean virality_score |
|---|---|---|---|---|
{balance}

## Known biases and limits
- The crawl follows TikTok's recommender: "For You" seeds and related lists favour already popular,
  recent, recommended content, the crawler's region and language and accounts that are public. It is
  not a uniform sample of TikTok; "virality" here is relative to that sample.
{engagement_bias}
- Label parameters are fitted on {fitted_rows} only: scores and thresholds are not comparable across
  exports without reapplying one export's `label_params`.
- Short (< {manifest["selection"]["min_frames"]} frames) and corrupt videos are excluded, and so are videos deleted or
  private when they were downloaded. {_gone_text(manifest["selection"])}

## Terms of use and personal data
The videos, descriptions, and account names belong to their creators and are subject to TikTok's
terms of service. This dataset is for non-commercial research. It contains personal data (author ids
and user names, possibly faces and voices): store it securely, do not re-identify or contact people,
honour deletion requests by removing the rows and files, and do not redistribute the media.
"""


def _gone_text(selection: dict) -> str:
    """The card's words on the rows found deleted or private after their download (none in exports made
    before they were counted)."""
    gone = selection.get("found_gone")
    if gone is None:
        return ""
    if not gone:
        return "None of them was found deleted or made private since (`corpus track` looks as it re-observes them)."
    return (
        f"The tracker found {len(gone)} of these videos deleted or made private since (by the data cutoff): they "
        "stay in, as dropping them would leave a sample of survivors; their ids are `selection.found_gone` in "
        "`manifest.json`, for honouring their removal."
    )


def _age_basis_text(manifest: dict) -> tuple[str, str, str]:
    """The card's words on when the counts were taken: the selection sentence, a label bullet (only
    with ``--at-age``) and the bias note."""
    selection, basis = manifest["selection"], manifest.get("age_basis")
    if not isinstance(basis, dict):
        return (
            f"""a stats
  snapshot ({selection["stats"]}). {selection["excluded_no_stats"]} otherwise
  valid video(s) had no snapshot and were left out.""",
            "",
            """- Engagement is a snapshot at crawl time: young videos have had less time to gather views
  (`--normalize-age` gives per-day rates). Counts TikTok rounds for display may be approximate.""",
        )
    left_out = ", ".join(f"{reason} {n}" for reason, n in selection["excluded_by_reason"].items())
    rows = ", ".join(f"{way} {n}" for way, n in selection["rows_by_age_basis"].items())
    return (
        f"""stats snapshots
  placing it at age {basis["at_age"]} after posting. Otherwise valid videos left out, by reason:
  {left_out}.""",
        f"""- Age basis: every count is the video's count at {basis["at_age"]} after posting: the count of a snapshot
  at that age or on time for it (within {format_duration(basis.get("on_time_s", 0))}: 1% of the age, at least a
  minute, at most the tolerance), or interpolated log-linearly (on `log1p`) between the nearest snapshots before and
  after it, or, when none bracket it, taken as it is from a lone snapshot within {basis["tolerance"]} of it
  ({basis["tolerance_rule"]}); rows: {rows}. `stats_captured_at` is the moment at that age; each row's
  `age_basis` says which way it was placed and `snapshot_age_before_s` / `snapshot_age_after_s` the
  ages (seconds since posting) of the snapshots its counts came from: keep `age_basis == "exact"` for counts
  read at that age. Interpolated counts are estimates between two sightings (not whole numbers),
  as good as the sightings are close: the two ages say how far apart they were.
{_growth_text(manifest)}""",
        f"""- Engagement is compared at one age ({basis["at_age"]}), so age is not confounded with appeal, but
  the sample keeps only videos seen close enough to that age. Counts TikTok rounds for display may be
  approximate.""",
    )


def _growth_text(manifest: dict) -> str:
    """The card's bullet on the growth columns of an ``--at-age`` export ("" without them)."""
    growth = manifest.get("growth_features")
    if not growth:
        return ""
    present = ", ".join(f"`{c}` ({growth['non_null'][c]} rows)" for c in growth["columns"])
    return f"""- Growth features (not labels, for models that predict from early popularity): {present}. Plays at
  each early age by the same rule (tolerance at most a quarter of that age), and the log growth per day
  between consecutive ones; empty where a video was not seen close enough to that age.
"""


def _python(value) -> str:
    """``value`` as Python source: a type by its name, dicts and lists of those, strings and constants."""
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_python(key)}: {_python(entry)}" for key, entry in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_python(entry) for entry in value) + "]"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _loading_text(manifest: dict) -> str:
    """Short examples for pandas, Hugging Face ``datasets`` and (with shards) ``webdataset``, each
    reading the splits apart."""
    data_file = manifest["data_file"]
    if data_file.endswith(".csv"):
        arguments = ", ".join(f"{name}={_python(value)}" for name, value in CSV_READ.items())
        read = f'pd.read_csv("{data_file}", {arguments})'
    else:
        read = f'pd.read_parquet("{data_file}")'
    splits = ", ".join(f"`{HUB_SPLITS[split]}`" for split in manifest["split_files"])
    files = ", ".join(f"`{entry['path']}`" for entry in manifest["split_files"].values())
    text = f"""Run these in this directory (`file` is each video's path relative to it).

```python
import pandas as pd
videos = {read}
print(videos.groupby("split")["is_viral"].mean())
```

```python
import os
from datasets import load_dataset
videos = load_dataset(os.getcwd())  # the splits {splits}, from this card's `configs`
train = videos["train"]
```

`load_dataset` wants the directory's full path (given `"."` it finds no dataset name and fails) and names
the `val` split `validation`, as the Hub does; the `split` column keeps `val`.
Each split also has its own file{"s" if manifest.get("webdataset") else ""}: {files}.
"""
    if data_file.endswith(".csv"):  # an empty field is the one mark CSV has for a missing value
        text += "\nIn CSV an empty caption reads as a missing one; the parquet format keeps the two apart.\n"
    shards = manifest.get("webdataset")
    if shards:
        text += f"""
```python
import webdataset as wds
train = wds.WebDataset("{shards["urls"]["train"]}", shardshuffle=False).decode()
for sample in train: video_bytes, row = sample["mp4"], sample["json"]  # the file and its table row
```

Each of the {len(shards["shards"])} shard(s) in `shards/` holds up to {shards["shard_size"]} videos of one split
(`shards/train-*`, `shards/val-*`, `shards/test-*`); `manifest.json` lists each one's split, size, sha256
and label counts, and each split's URLs under `webdataset.urls`.
"""
    return text


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
