"""What an export directory holds, and the one reader of it (report, train and demo).

No database code here, so the trainer can read an export without the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas loads only to read a table: the CLI reads manifests and these names without it
    import pandas as pd

from .._files import read_json_object
from ..errors import ConfigError

# 2: shards of one split each (``webdataset.urls`` per split, each shard's ``split`` a name), ``split_files``.
MANIFEST_FORMAT = 2
EXPORT_COLUMNS = (
    "video_id",
    "author_id",
    "author_unique_id",
    "create_time",
    "desc",
    "hashtags",
    "play_count",
    "like_count",
    "comment_count",
    "share_count",
    "collect_count",
    "follower_count",
    "stats_captured_at",
    "duration_s",
    "fps",
    "frame_count",
    "width",
    "height",
    "has_audio",
    "file",
    "sha256",
    "virality_score",
    "is_viral",
    "split",
    # The author's profile counts and badge, the sound's title and the site's flag for an "original sound"
    # recorded on TikTok rather than licensed music (``music_original``; its title says so only in English,
    # "original sound - <name>", and is localised or the recording author's words elsewhere): added later,
    # so older exports lack them.
    "following_count",
    "heart_count",
    "video_count",
    "verified",
    "music_title",
    "music_original",
)

# With --at-age, how each row's counts were placed at the age follows EXPORT_COLUMNS (export/at_age.py): the
# basis (exact | interpolated | within_tolerance) and the ages, in seconds, of the snapshots at or before and
# after the age whose counts were used (null where that side was not), so rows counted too far off can be
# dropped; then growth features: plays at each early age below the label's age
# (export/at_age.py, :func:`early_growth`) and the log growth per day between consecutive ones.
PLACEMENT_COLUMNS = ("age_basis", "snapshot_age_before_s", "snapshot_age_after_s")
EARLY_AGES_S = {"1h": 3_600, "6h": 21_600, "1d": 86_400}
GROWTH_COLUMNS = (
    *(f"play_count_at_{age}" for age in EARLY_AGES_S),
    *(f"play_growth_{a}_{b}" for a, b in zip(EARLY_AGES_S, list(EARLY_AGES_S)[1:])),
)


def export_columns(rows: pd.DataFrame) -> list[str]:
    """The columns of an export's table: :data:`EXPORT_COLUMNS`, then the placement and growth columns
    ``rows`` has (an ``--at-age`` export's)."""
    return [*EXPORT_COLUMNS, *(c for c in (*PLACEMENT_COLUMNS, *GROWTH_COLUMNS) if c in rows.columns)]


MANIFEST_FILE = "manifest.json"


def read_manifest(root: Path) -> dict:
    """An export directory's manifest (its labels, splits, counts and provenance); one written by a newer
    tiktok-corpus is refused, as its fields may mean what this version does not know."""
    manifest_path = Path(root) / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ConfigError(f"{root} is not an export directory: no {MANIFEST_FILE}")
    manifest = read_json_object(manifest_path)
    written_as = manifest.get("format_version", MANIFEST_FORMAT)
    if not isinstance(written_as, int) or written_as > MANIFEST_FORMAT:
        raise ConfigError(
            f"{root} was exported by a newer tiktok-corpus (manifest format {written_as!r}, this version reads "
            f"up to {MANIFEST_FORMAT}): upgrade tiktok-corpus"
        )
    return manifest


# How a CSV export is read back, by us, the card's snippet and its ``datasets`` config: only an empty field
# is missing (by default pandas also takes a caption or a user name "NA", "null", "None" or "nan" for one),
# and ids are text (19 digits: as numbers they lose their last ones).
CSV_MISSING: dict = {"keep_default_na": False, "na_values": [""]}
CSV_READ: dict = {"dtype": {"video_id": str, "author_id": str}, **CSV_MISSING}


SHARD_DIR = "shards"


def shard_path(split: str, number: str) -> str:
    """A shard of ``split``, relative to the export: ``shards/train-000000.tar``; ``number`` may also be a
    brace range (``{000000..000003}``: the URLs ``webdataset`` expands) or ``*`` (a glob of them all)."""
    return f"{SHARD_DIR}/{split}-{number}.tar"


def read_export(root: Path) -> tuple[dict, pd.DataFrame]:
    """An export directory's manifest and video table.

    A webdataset export copied without its table (only ``manifest.json`` and ``shards/``) is read
    from its shards, the videos unpacked once under the export (:func:`.shards.rows_from_shards`).
    """
    import pandas as pd

    root = Path(root)
    manifest = read_manifest(root)
    data_path = root / manifest.get("data_file", "videos.parquet")
    if not data_path.is_file() and manifest.get("webdataset"):
        from .shards import rows_from_shards  # here: webdataset imports torch (5 s, 0.9 GB), needed for shards only

        return manifest, rows_from_shards(root, manifest["webdataset"])
    if not data_path.is_file():
        raise ConfigError(f"{root}: the video table {data_path.name} named by manifest.json is missing")
    if data_path.suffix == ".parquet":
        return manifest, pd.read_parquet(data_path)
    return manifest, with_parsed_times(pd.read_csv(data_path, **CSV_READ))


def with_parsed_times(rows: pd.DataFrame) -> pd.DataFrame:
    """A table read back from text (csv, the shards' json) with its moments as UTC times again, as the
    parquet table holds them: read as strings, the features took them for missing numbers."""
    import pandas as pd

    if "stats_captured_at" in rows:
        rows["stats_captured_at"] = pd.to_datetime(rows["stats_captured_at"], utc=True, format="ISO8601")
    return rows
