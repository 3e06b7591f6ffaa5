"""An export opened the obvious ways, with the real libraries: ``datasets.load_dataset(EXPORT_DIR)``
(the card's ``configs``), and the card's own pandas and ``webdataset`` snippets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import webdataset as wds
import yaml
from sqlalchemy import select

from tiktok_corpus.export import ExportOptions, run_export
from tiktok_corpus.export.format import read_export
from tiktok_corpus.store.models import Author, StatsSnapshot, Video

from .conftest import T0, _media, _video

# 19-digit ids, beyond a float's 53 bits: a number type rounds their last digits
BIG = 6_744_961_010_178_536_026
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}
# Printed after the card's snippet: each split's rows (a shard sample's row is its "json"; its mp4 stays unread).
PRINT_ROWS = """
import json
print(json.dumps({
    name: (split.select_columns("json") if "json" in split.column_names else split).to_list()
    for name, split in videos.items()
}, default=str))
"""


@pytest.fixture
def big_ids(store, settings) -> list[str]:
    """Twelve exportable videos with 19-digit ids; their authors too, but one video has no author."""
    video_ids = [str(BIG + 1000 * i) for i in range(12)]
    authors = [str(BIG + 1 + i) for i in range(3)]
    with store.transaction() as session:
        session.add_all([Author(id=author, unique_id=f"user{author[-2:]}") for author in authors])
        session.flush()
        for i, video_id in enumerate(video_ids):
            session.add(_video(video_id, authors[i % 3] if i else None))
            session.flush()
            session.add(_media(settings.data_dir, video_id))
            session.add(
                StatsSnapshot(
                    video_id=video_id,
                    captured_at=T0,
                    play_count=1000 * (i + 1),
                    like_count=100 * (i + 1),
                    comment_count=i % 5,
                    share_count=i % 3,
                )
            )
    return video_ids


def _card_yaml(path: Path) -> dict:
    text = (path / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def _small_shards(data_format: str) -> dict:
    """Two videos a shard, so each split has several (the other formats take no --shard-size)."""
    return {"shard_size": 2} if data_format == "webdataset" else {}


@pytest.mark.parametrize("data_format", ["parquet", "csv", "webdataset"])
def test_load_dataset_of_the_directory_gives_each_split_from_its_own_files(
    settings, store, big_ids, data_format, tmp_path
):
    import datasets

    path = run_export(
        settings, ExportOptions(format=data_format, split=(0.5, 0.25, 0.25), **_small_shards(data_format))
    )
    # What an export holds by design besides its data: runs, feature tables, the trainer's proxies.
    (path / "runs" / "1").mkdir(parents=True)
    pd.DataFrame({"video_id": ["1"], "score": [0.5]}).to_parquet(path / "runs" / "1" / "predictions.parquet")
    (path / "cache" / "proxies").mkdir(parents=True)
    (path / "cache" / "proxies" / "x.mp4").write_bytes(b"a proxy")
    by_split = json.loads((path / "manifest.json").read_text())["counts"]["split"]
    assert min(by_split.values()) > 0

    (config,) = _card_yaml(path)["configs"]
    assert config["config_name"] == "default"
    assert [entry["split"] for entry in config["data_files"]] == ["train", "validation", "test"]
    if data_format != "webdataset":  # shards' rows are JSON: their ids are strings already
        declared = {feature["name"]: feature["dtype"] for feature in config["features"] if "dtype" in feature}
        assert declared["video_id"] == declared["author_id"] == "string"
    loaded = datasets.load_dataset(str(path), cache_dir=str(tmp_path / "hf"))

    rows = {name: loaded[name]["json"] if data_format == "webdataset" else loaded[name].to_list() for name in loaded}
    assert {name: len(split_rows) for name, split_rows in rows.items()} == {
        HUB_SPLITS[split]: n for split, n in by_split.items()
    }
    for split, hub_name in HUB_SPLITS.items():
        assert {row["split"] for row in rows[hub_name]} == {split}  # our column keeps "val"
    # Every id whole, and a missing author still missing (CSV read them as floats: 6744961010178536448).
    authors = {row["video_id"]: row["author_id"] for split_rows in rows.values() for row in split_rows}
    assert authors == {video_id: str(BIG + 1 + i % 3) if i else None for i, video_id in enumerate(big_ids)}


def test_the_cards_csv_snippet_keeps_the_ids_whole(settings, store, big_ids, monkeypatch):
    path = run_export(settings, ExportOptions(format="csv"))
    card = (path / "README.md").read_text()
    snippet = re.search(r"^videos = pd\.read_csv\(.*\)$", card, re.MULTILINE)
    assert snippet is not None
    assert "In CSV an empty caption reads as a missing one" in card  # the one mark CSV has for both
    monkeypatch.chdir(path)  # the card says: run these in this directory
    scope: dict = {"pd": pd}
    exec(snippet.group(0), scope)

    videos = scope["videos"].set_index("video_id")
    assert sorted(videos.index) == sorted(big_ids)
    assert pd.isna(videos.loc[big_ids[0], "author_id"]) and videos.loc[big_ids[4], "author_id"] == str(BIG + 2)


def test_two_webdataset_exports_of_one_corpus_have_the_same_shards(settings, store, big_ids):
    """The tar writer stamped each member with the clock: every re-export's shards had new digests, so a
    rerun could not be checked, nor a shard cached, by its sha256."""
    first, second = (run_export(settings, ExportOptions(format="webdataset", shard_size=2)) for _ in range(2))
    digests = [
        [shard["sha256"] for shard in json.loads((path / "manifest.json").read_text())["webdataset"]["shards"]]
        for path in (first, second)
    ]
    assert digests[0] == digests[1]
    with tarfile.open(
        first / json.loads((first / "manifest.json").read_text())["webdataset"]["shards"][0]["file"]
    ) as tar:
        assert {member.mtime for member in tar.getmembers()} == {0}


def test_the_cards_webdataset_snippet_reads_one_split(settings, store, big_ids):
    path = run_export(settings, ExportOptions(format="webdataset", split=(0.5, 0.25, 0.25), shard_size=2))
    manifest = json.loads((path / "manifest.json").read_text())
    table = pd.read_parquet(path / "videos.parquet")
    card = (path / "README.md").read_text()
    urls = manifest["webdataset"]["urls"]
    assert f'wds.WebDataset("{urls["train"]}", shardshuffle=False)' in card

    for split in ("train", "val", "test"):
        samples = list(wds.WebDataset(str(path / urls[split]), shardshuffle=False).decode())
        expected = table.loc[table["split"] == split, "video_id"]
        assert sorted(sample["__key__"] for sample in samples) == sorted(expected)
        assert {sample["json"]["split"] for sample in samples} == {split}
    shards = manifest["webdataset"]["shards"]
    assert {shard["split"] for shard in shards} == {"train", "val", "test"}
    assert all(shard["file"].startswith(f"shards/{shard['split']}-") for shard in shards)
    assert max(shard["videos"] for shard in shards) == 2 and sum(shard["videos"] for shard in shards) == len(table)


def _run_cards_datasets_snippet(path: Path, tmp_path: Path) -> dict[str, list[dict]]:
    """The card's ``datasets`` snippet, as printed, run by a fresh Python in the export directory (as the
    card says); each split's rows as it loaded them."""
    card = (path / "README.md").read_text()
    (snippet,) = [code for code in re.findall(r"```python\n(.*?)```", card, re.DOTALL) if "load_dataset" in code]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(
        [sys.executable, "-c", snippet + PRINT_ROWS], cwd=path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    return {name: [row.get("json", row) for row in rows] for name, rows in loaded.items()}


@pytest.mark.parametrize("data_format", ["parquet", "csv", "webdataset"])
def test_the_cards_datasets_snippet_runs_as_printed(settings, store, big_ids, data_format, tmp_path):
    path = run_export(
        settings, ExportOptions(format=data_format, split=(0.5, 0.25, 0.25), **_small_shards(data_format))
    )
    by_split = json.loads((path / "manifest.json").read_text())["counts"]["split"]

    rows = _run_cards_datasets_snippet(path, tmp_path)

    assert {name: len(split_rows) for name, split_rows in rows.items()} == {
        HUB_SPLITS[split]: n for split, n in by_split.items()
    }
    assert sorted(row["video_id"] for split_rows in rows.values() for row in split_rows) == sorted(big_ids)


def test_a_webdataset_export_at_an_age_loads_with_its_early_counts_mostly_null(settings, store, tmp_path):
    """Undeclared, ``datasets`` types a column from a shard's first samples: plays at 1h, null in them
    all, became ``null`` and the first value failed the load (``Couldn't cast array of type double to
    null``)."""
    created = T0 - timedelta(days=10)
    video_ids = [str(4000 + i) for i in range(12)]
    early = video_ids[-1]  # the one video seen young: last in its shard
    with store.transaction() as session:
        for video_id in video_ids:
            session.add(_video(video_id, None, create_time=int(created.timestamp())))
            session.flush()
            session.add(_media(settings.data_dir, video_id))
            ages = [timedelta(hours=1), timedelta(hours=6), timedelta(days=1)] if video_id == early else []
            for n, age in enumerate([*ages, timedelta(days=7)]):
                plays = 10 ** (n + 2) + int(video_id)
                session.add(
                    StatsSnapshot(
                        video_id=video_id,
                        captured_at=created + age,
                        play_count=plays,
                        like_count=plays // 10,
                        comment_count=plays // 100,
                        share_count=plays // 1000,
                    )
                )

    path = run_export(settings, ExportOptions(format="webdataset", at_age_s=7 * 86_400))
    rows = {
        row["video_id"]: row
        for split_rows in _run_cards_datasets_snippet(path, tmp_path).values()
        for row in split_rows
    }

    assert sorted(rows) == video_ids
    assert rows[early]["play_count_at_1h"] == 100.0 + int(early) and rows[early]["play_growth_6h_1d"] is not None
    assert all(rows[video_id]["play_count_at_1h"] is None for video_id in video_ids[:-1])
    assert rows[early]["stats_captured_at"] == (created + timedelta(days=7)).isoformat(timespec="microseconds")


NA_WORDS = ("NA", "null", "None", "nan", "N/A", "#N/A")


def test_words_pandas_takes_for_missing_stay_words_in_a_csv_export(settings, store, big_ids, tmp_path, monkeypatch):
    """Captions and user names such as "NA", "null" or "nan" are text in every way a CSV export is read:
    our reader (train, features), the card's pandas line and ``datasets.load_dataset``."""
    import datasets

    with store.transaction() as session:
        for video_id, word in zip(big_ids, NA_WORDS, strict=False):
            session.get(Video, video_id).desc = word
        for author, word in zip(session.scalars(select(Author).order_by(Author.id)), ("nan", "null", "None")):
            author.unique_id = word
    path = run_export(settings, ExportOptions(format="csv"))
    captions = dict(zip(big_ids, NA_WORDS, strict=False))

    def assert_words_kept(rows: pd.DataFrame) -> None:
        rows = rows.set_index("video_id")
        assert rows.loc[list(captions), "desc"].to_dict() == captions
        assert set(rows["author_unique_id"].dropna()) == {"nan", "null", "None"}
        assert pd.isna(rows.loc[big_ids[0], "author_id"])  # an empty field is still missing

    assert_words_kept(read_export(path)[1])
    loaded = datasets.load_dataset(str(path), cache_dir=str(tmp_path / "hf"))
    assert_words_kept(pd.concat([split.to_pandas() for split in loaded.values()]))
    snippet = re.search(r"^videos = pd\.read_csv\(.*\)$", (path / "README.md").read_text(), re.MULTILINE)
    monkeypatch.chdir(path)
    scope: dict = {"pd": pd}
    exec(snippet.group(0), scope)
    assert_words_kept(scope["videos"])
