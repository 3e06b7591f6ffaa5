"""What Hugging Face ``datasets`` reads of an export: one data file (or shard set) per split, and the
dataset card's YAML front matter naming them (``configs``) with the columns' types (``features``; for
shards, the sample's).

``datasets.load_dataset(EXPORT_DIR)`` then loads exactly those files, as the splits ``train``,
``validation`` and ``test`` (the Hub's names; the ``split`` column keeps ``val``), and nothing else the
directory holds by design (``manifest.json``, ``runs/``, ``features/``, ``cache/``).
"""

from __future__ import annotations

import pyarrow as pa
import yaml

from .format import CSV_MISSING

# Our split names -> the Hub's.
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}
SPLIT_TABLE_DIR = "data"


def split_table_path(split: str, data_format: str) -> str:
    """Where one split's rows are written, relative to the export (``data/train.parquet``)."""
    return f"{SPLIT_TABLE_DIR}/{split}.{data_format}"


def features(table: pa.Table, data_format: str) -> list[dict]:
    """The card's ``features``: each column's type as ``datasets`` reads it back from ``data_format``
    files, ids always as strings; for ``webdataset``, a shard's sample (:mod:`.shards`): the file, the
    row as the struct ``json``, its key and shard.

    ``datasets`` reads CSV through pandas with these types: a declared integer or boolean column with an
    empty cell fails there, and times parse only as text, so in CSV an integer column with nulls is
    ``float64`` (what pandas itself makes of it), a boolean one with nulls and a time are ``string``.
    Shards must be declared too: undeclared, ``datasets`` guesses the types from the first few samples,
    and a column null in all of them (an early age's plays) is typed ``null`` and fails on the first value.
    Their times are the JSON's text.
    """
    columns = [
        {"name": field.name, **_feature(field.type, table[field.name].null_count > 0, data_format)}
        for field in table.schema
    ]
    if data_format != "webdataset":
        return columns
    return [
        {"name": "mp4", "dtype": "video"},
        {"name": "json", "struct": columns},
        {"name": "__key__", "dtype": "string"},
        {"name": "__url__", "dtype": "string"},
    ]


def _feature(arrow_type: pa.DataType, has_nulls: bool, data_format: str) -> dict:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return {"list": _dtype(arrow_type.value_type)}
    if data_format != "parquet" and pa.types.is_timestamp(arrow_type):
        return {"dtype": "string"}
    if data_format == "csv" and has_nulls and pa.types.is_integer(arrow_type):
        return {"dtype": "float64"}
    if data_format == "csv" and has_nulls and pa.types.is_boolean(arrow_type):
        return {"dtype": "string"}
    return {"dtype": _dtype(arrow_type)}


def _dtype(arrow_type: pa.DataType) -> str:
    """The ``datasets`` name of an Arrow type: ``string``, ``float64``, else Arrow's (``int64``, ``bool``,
    ``timestamp[us, tz=UTC]``)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_floating(arrow_type):
        return f"float{arrow_type.bit_width}"
    return str(arrow_type)


def front_matter(manifest: dict) -> str:
    """The card's YAML header: a ``default`` config whose ``data_files`` are the manifest's
    ``split_files``, with its ``features``; shards' under ``dataset_info`` (the config of ``datasets``'
    webdataset builder takes none and drops them)."""
    config: dict = {
        "config_name": "default",
        "data_files": [
            {"split": HUB_SPLITS[split], "path": entry["path"]} for split, entry in manifest["split_files"].items()
        ],
    }
    if manifest["data_file"].endswith(".csv"):  # only an empty field is missing, as our reader has it
        config |= CSV_MISSING
    header: dict = {"pretty_name": f"{manifest['name']} v{manifest['version']}", "configs": [config]}
    if manifest.get("features") and manifest.get("data_format") == "webdataset":
        header["dataset_info"] = {"config_name": "default", "features": manifest["features"]}
    elif manifest.get("features"):
        config["features"] = manifest["features"]
    return f"---\n{yaml.safe_dump(header, sort_keys=False, allow_unicode=True)}---\n"
