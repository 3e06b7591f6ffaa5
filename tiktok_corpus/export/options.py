"""What an export is asked for (:class:`ExportOptions`, checked on construction), the parsers of the
options' text forms, and the error of an export that cannot be made."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from ..config import PAPER_MIN_FRAMES, described
from ..errors import ConfigError, CorpusError
from .label_names import LABEL_COLUMNS, PAPER_THRESHOLD_QUANTILE, PAPER_WEIGHTS

GROUP_BY = ("none", "author")
SPLIT_ORDERS = ("random", "time")
FORMATS = ("parquet", "csv", "webdataset")
LABEL_FITS = ("train", "all")
DEFAULT_NAME = "corpus"
SHARD_SIZE = 1000  # videos per webdataset shard unless --shard-size says
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]*(?:-[A-Za-z0-9_.]+)*")  # the whole name (fullmatch)


class ExportError(CorpusError):
    """An export that cannot be made (no exportable rows, a missing media file, a version clash)."""

    kind = "export"
    expected = True


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how; validated on construction (bad values raise :class:`ConfigError`)."""

    label: str = described("binary", "Label the export is made for: binary | continuous.")
    split: tuple[float, ...] = described((0.7, 0.15, 0.15), "train,val,test fractions (sum 1).")
    group_by: str = described("none", "none | author (no author in two splits).")
    stratify: bool = described(False, "Balance the label across splits.")
    split_order: str = described(
        "random",
        "random (units ordered by a seeded hash) | time (units ordered by their first posting time, the oldest "
        "in train, the newest in test: the model is judged on later posts than it learnt from; --seed only "
        "breaks ties). time needs --at-age and excludes --stratify.",
    )
    split_gap_s: int = described(
        0,
        "With --split-order time, which leaves out the train and val videos whose label was read (at the last "
        "sighting it used) after a later split's first post: also those read less than this before it.",
    )
    seed: int = described(0, "Split seed.")
    format: str = described(
        "parquet", "parquet | csv | webdataset (videos.parquet plus tar shards of each video and its row)."
    )
    shard_size: int | None = described(None, f"With --format webdataset: videos per tar shard (default {SHARD_SIZE}).")
    min_frames: int = described(PAPER_MIN_FRAMES, "Leave out videos with fewer frames.")
    name: str = described(DEFAULT_NAME, "Export name: writes <data dir>/exports/<name>-v<N>/.")
    copy_media: bool = described(
        False, "Copy the videos in: the export holds its own copies, each checked against its row's sha256."
    )
    as_of: datetime | None = described(
        None,
        "Use the stats snapshot at or before this ISO time (default: the latest); with --at-age, only the "
        "snapshots taken by then (the export as it was at that time, again after more tracking).",
    )
    normalize_age: bool = described(False, "Labels from per-day rates.")
    weights: tuple[float, ...] = described(
        PAPER_WEIGHTS, "Score weights: comments,likes,plays,shares (--weights, the old name, works too)."
    )
    threshold_quantile: float = described(PAPER_THRESHOLD_QUANTILE, "is_viral: all metrics above this quantile.")
    label_fit: str = described(
        "train",
        "Rows the label parameters (medians, IQRs, min-max, thresholds) are fitted on: train (the train split "
        "only; val and test are labelled by them unseen) | all (every exported row, as the paper did).",
    )
    at_age_s: int | None = described(
        None,
        "Label every video by its counts at this age since posting (7d, 6h, 90s, 2w), interpolated from its "
        "snapshots (default: the latest snapshot).",
    )
    age_tolerance_s: int | None = described(
        None,
        "With --at-age: a video whose snapshots do not bracket the age uses its nearest one if it is this close "
        "(default: a quarter of the age, at most 1d).",
    )
    command_line: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        _choice("--labels", self.label, tuple(LABEL_COLUMNS))
        _choice("--group-by", self.group_by, GROUP_BY)
        _choice("--split-order", self.split_order, SPLIT_ORDERS)
        _choice("--format", self.format, FORMATS)
        _choice("--label-fit", self.label_fit, LABEL_FITS)
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1.0) > 1e-6:
            raise ConfigError(f"--split needs three non-negative fractions summing to 1, got {self.split}")
        if self.split[0] <= 0:
            raise ConfigError("--split: the train fraction must be positive")
        if len(self.weights) != 4 or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ConfigError(
                f"--score-weights needs four non-negative numbers (c,l,p,s), not all zero, got {self.weights}"
            )
        if not 0.0 <= self.threshold_quantile < 1.0:
            raise ConfigError(f"--threshold-quantile must be in [0, 1), got {self.threshold_quantile}")
        if self.shard_size is not None and self.format != "webdataset":
            raise ConfigError(f"--shard-size is for --format webdataset: {self.format} writes no shards")
        if self.shard_size is not None and self.shard_size < 1:
            raise ConfigError(f"--shard-size must be at least 1, got {self.shard_size}")
        if self.min_frames < 0:
            raise ConfigError(f"--min-frames must not be negative, got {self.min_frames}")
        if self.split_order == "time" and self.at_age_s is None:
            raise ConfigError(
                "--split-order time needs --at-age: the newest posts have had the least time to gather views, so "
                "counts taken at one moment would make test the not-viral split, and per-day rates "
                "(--normalize-age) the viral one (a young post's views have not slowed yet)"
            )
        if self.split_order == "time" and self.stratify:
            raise ConfigError(
                "--split-order time excludes --stratify: each label stratum cut in time by itself gives test's "
                "viral and not-viral posts different ages, and posting time would tell them apart"
            )
        if self.split_gap_s and self.split_order != "time":
            raise ConfigError("--split-gap is for --split-order time: a random split has no before and after")
        if self.split_gap_s < 0:
            raise ConfigError(f"--split-gap must not be negative, got {self.split_gap_s} s")
        if self.at_age_s is not None and self.at_age_s <= 0:
            raise ConfigError(f"--at-age must be a positive duration, got {self.at_age_s} s")
        if self.age_tolerance_s is not None and self.at_age_s is None:
            raise ConfigError("--age-tolerance needs --at-age: it bounds how far from that age a snapshot may be")
        if self.age_tolerance_s is not None and self.age_tolerance_s < 0:
            raise ConfigError(f"--age-tolerance must not be negative, got {self.age_tolerance_s} s")
        if not NAME_PATTERN.fullmatch(self.name) or re.search(r"-v\d+\Z", self.name) or len(self.name) > 100:
            raise ConfigError(
                f"--name {self.name!r}: use ASCII letters and digits, '.', '_' and inner '-' (at most 100), "
                "not ending in -v<N>"
            )

    @property
    def videos_per_shard(self) -> int:
        return self.shard_size or SHARD_SIZE

    @property
    def label_column(self) -> str:
        """The column of the label this export is made for."""
        return LABEL_COLUMNS[self.label]


def parse_numbers(text: str, count: int, option: str) -> tuple[float, ...]:
    """``"0.7,0.15,0.15"`` -> ``(0.7, 0.15, 0.15)``, or a ConfigError naming the option."""
    try:
        numbers = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected {count} comma-separated numbers") from None
    if len(numbers) != count or not all(np.isfinite(numbers)):
        raise ConfigError(f"{option} {text!r}: expected {count} comma-separated numbers")
    return numbers


def parse_time(text: str, option: str = "--as-of") -> datetime:
    """An ISO 8601 time (a date, or date and time; no zone means UTC) as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected an ISO 8601 time like 2024-05-01T12:00:00Z") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _choice(option: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{option} {value!r}: expected one of {', '.join(allowed)}")
