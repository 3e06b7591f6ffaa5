"""Versioned exports on a real SQLite (and Postgres) store with real files."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from rich.progress import Progress
from sqlalchemy import select, update
from typer.testing import CliRunner

from tests.media_files import date_now
from tiktok_corpus.cli import app
from tiktok_corpus.cli.display import export_summary
from tiktok_corpus.config import Settings
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.export import (
    EXPORT_COLUMNS,
    ExportError,
    ExportOptions,
    apply_labels,
    assign_splits,
    parse_numbers,
    parse_time,
    read_manifest,
    run_export,
)
from tiktok_corpus.export.at_age import counts_known_at
from tiktok_corpus.export.options import SHARD_SIZE
from tiktok_corpus.store.browse import grid_rows
from tiktok_corpus.store.db import open_store, upgrade
from tiktok_corpus.store.models import Export, MediaFile, StatsSnapshot, Video

from .conftest import T0, _media, _video, populate_corpus

ACCESS_DENIED = b"<html><body>Access Denied</body></html>"  # what a CDN served instead of a video


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_export_writes_labelled_rows_manifest_and_card(settings, store, corpus):
    path = run_export(settings, ExportOptions(label="binary", command_line=("corpus", "export", "--labels", "binary")))

    assert path == settings.data_dir / "exports" / "corpus-v1"
    rows = pd.read_parquet(path / "videos.parquet")
    assert list(rows.columns) == list(EXPORT_COLUMNS)
    assert sorted(rows["video_id"]) == sorted(corpus)  # the 5 excluded videos are not there
    # The latest snapshot wins over the older one with 10**9 counts.
    assert rows.set_index("video_id").loc["1003", "play_count"] == 4000
    assert rows.set_index("video_id").loc["1003", "hashtags"].tolist() == ["cat", "dance", "fun"]
    assert rows.set_index("video_id").loc["1000", "hashtags"].tolist() == []
    assert rows.set_index("video_id").loc["1002", "follower_count"] == 300
    assert all((path / f).is_file() for f in rows["file"])  # referenced media resolve from the export dir
    assert set(rows["split"]) <= {"train", "val", "test"}

    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["label"] == "binary" and manifest["version"] == 1
    assert manifest["row_count"] == len(rows) == sum(manifest["counts"]["split"].values())
    assert manifest["counts"]["is_viral"] == {
        "0": int((rows["is_viral"] == 0).sum()),
        "1": int((rows["is_viral"] == 1).sum()),
    }
    assert manifest["data_sha256"] == hashlib.sha256((path / "videos.parquet").read_bytes()).hexdigest()
    assert manifest["command_line"] == "corpus export --labels binary"
    assert manifest["selection"]["excluded_no_stats"] == 1
    assert manifest["split"]["seed"] == 0 and manifest["split"]["fractions"]["train"] == 0.7
    assert "password" not in json.dumps(manifest) and manifest["source_database"].startswith("sqlite")
    # The manifest's parameters reproduce the labels exactly.
    assert apply_labels(rows, manifest["label_params"])["virality_score"].tolist() == rows["virality_score"].tolist()
    card = (path / "README.md").read_text()
    for section in ("Provenance", "Labels", "class balance", "biases", "personal data"):
        assert section.lower() in card.lower()

    with store.sessions() as session:
        recorded = session.scalars(select(Export)).one()
    assert (recorded.name, recorded.version, recorded.row_count) == ("corpus", 1, len(rows))
    assert recorded.sha256 == manifest["data_sha256"] and Path(recorded.path) == path.resolve()


def test_the_sounds_original_flag_is_exported_as_a_nullable_boolean(settings, store, corpus):
    with store.transaction() as session:
        session.get(Video, "1000").music_original = True
        session.get(Video, "1002").music_original = False

    table = run_export(settings, ExportOptions()) / "videos.parquet"
    rows = pd.read_parquet(table).set_index("video_id")

    assert pq.read_schema(table).field("music_original").type == "bool"
    assert rows.loc["1000", "music_original"] is True and rows.loc["1002", "music_original"] is False
    assert rows["music_original"].drop(["1000", "1002"]).isna().all()  # never sighted with the flag


def test_a_second_export_is_v2_and_leaves_v1_byte_identical(settings, store, corpus):
    first = run_export(settings, ExportOptions(label="binary"))
    before = tree_digest(first)

    second = run_export(settings, ExportOptions(label="continuous", format="csv"))

    assert second.name == "corpus-v2"
    assert tree_digest(first) == before
    assert json.loads((second / "manifest.json").read_text())["label"] == "continuous"
    rows = pd.read_csv(second / "videos.csv", dtype={"video_id": str})
    assert rows.set_index("video_id").loc["1003", "hashtags"] == "cat dance fun"
    assert not list((settings.data_dir / "exports").glob(".*"))  # no staging leftovers


def test_versions_continue_after_the_highest_directory(settings, store, corpus):
    (settings.data_dir / "exports" / "corpus-v7").mkdir(parents=True)

    assert run_export(settings, ExportOptions()).name == "corpus-v8"
    assert run_export(settings, ExportOptions(name="other")).name == "other-v1"


def test_author_grouped_splits_put_no_author_in_two_splits(settings, store, corpus):
    rows = pd.DataFrame(
        {"video_id": [str(i) for i in range(400)], "author_id": [f"a{i % 37}" if i % 10 else None for i in range(400)]}
    )

    splits = pd.Series(assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=3, group_by="author"))

    per_author = splits.groupby(rows["author_id"]).nunique()
    assert (per_author == 1).all()
    assert set(splits) == {"train", "val", "test"}
    exported = pd.read_parquet(
        run_export(settings, ExportOptions(group_by="author", split=(0.5, 0.25, 0.25))) / "videos.parquet"
    )
    assert (exported.groupby("author_id")["split"].nunique() == 1).all()


def test_a_file_posted_twice_never_spans_two_splits(settings, store, corpus):
    """Reposts (the same sha256) join into one unit, by video or by author, even across authors;
    the other videos keep the splits they had without the column."""
    n = 600
    rows = pd.DataFrame(
        {"video_id": [str(20_000 + i) for i in range(n)], "author_id": [f"a{i % 50}" for i in range(n)]}
    )
    rows["sha256"] = [f"file{i % 200}" if i % 3 == 0 else f"own{i}" for i in range(n)]  # 200 files, each 1 to 3 times
    rows.loc[rows.index % 3 == 1, "sha256"] = ["", None] * 100  # no file known: each its own unit
    for group_by in ("none", "author"):
        splits = pd.Series(assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=7, group_by=group_by))
        files = rows["sha256"].where(rows["sha256"].fillna("").str.startswith("file"))
        assert (splits.groupby(files).nunique() == 1).all(), group_by
        assert splits[(rows["sha256"] == "").to_numpy()].nunique() == 3  # not one unit of "no file"
        assert set(splits) == {"train", "val", "test"}
    alone = ~rows["sha256"].fillna("").str.startswith("file")
    plain = pd.Series(assign_splits(rows.drop(columns="sha256"), fractions=(0.6, 0.2, 0.2), seed=7))
    joined = pd.Series(assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=7))
    assert (plain[alone] == joined[alone]).mean() > 0.8  # only the cut points move a little
    for group_by, stratify_on in (("none", None), ("author", None), ("none", "is_viral"), ("author", "score")):
        unique = rows.assign(sha256=[f"own{i}" for i in range(n)], is_viral=rows.index % 3 == 0, score=rows.index % 7)
        options = dict(fractions=(0.6, 0.2, 0.2), seed=7, group_by=group_by, stratify_on=stratify_on)
        without = assign_splits(unique.drop(columns="sha256"), **options)
        assert (assign_splits(unique, **options) == without).all(), (group_by, stratify_on)  # no repost: as before

    with store.transaction() as session:  # three of the corpus's videos hold one file
        shared = session.scalars(select(MediaFile).order_by(MediaFile.video_id).limit(3)).all()
        for media in shared[1:]:
            media.sha256 = shared[0].sha256
        reposted = {media.video_id for media in shared}
    path = run_export(settings, ExportOptions(split=(0.34, 0.33, 0.33)))
    exported = pd.read_parquet(path / "videos.parquet").set_index("video_id")
    assert exported.loc[sorted(reposted), "split"].nunique() == 1 and exported["split"].nunique() == 3
    manifest = json.loads((path / "manifest.json").read_text())
    assert (manifest["split"]["videos_sharing_a_file"], manifest["split"]["largest_unit_videos"]) == (3, 3)
    # 3 videos in one unit against a smallest split of about 4: the summary says the sizes may be off; and
    # no video of this corpus is viral, so no split can be scored by ROC-AUC.
    assert export_summary(manifest).endswith(
        "; warning: one split unit holds 3 videos (an author, or videos sharing a file)"
        "; warning: train, val and test hold one class only"
    )
    manifest["split"]["largest_unit_videos"] = 1
    manifest["counts"]["split_is_viral"] = {name: {"0": 2, "1": 1} for name in ("train", "val", "test")}
    assert "warning" not in export_summary(manifest)
    manifest["counts"]["split"] = {**manifest["counts"]["split"], "test": 0}  # too few units for three splits
    assert export_summary(manifest).endswith("warning: the test split is empty (train needs all three)")
    manifest["counts"]["split"] = {**manifest["counts"]["split"], "test": 4}
    manifest["counts"]["split_is_viral"] |= {"val": {"0": 4, "1": 0}, "test": {"0": 0, "1": 4}}
    assert export_summary(manifest).endswith("; warning: val and test hold one class only")
    assert "warning" not in export_summary({**manifest, "label": "continuous"})


def test_time_ordered_splits_train_on_the_past_and_test_on_the_future(settings, store, corpus):
    rng = np.random.default_rng(0)
    n = 500
    rows = pd.DataFrame(
        {
            "video_id": [str(v) for v in rng.permutation(np.arange(30_000, 30_000 + n))],  # ids say nothing of time
            "author_id": [f"a{i % 40}" for i in range(n)],
            "create_time": rng.integers(1_700_000_000, 1_710_000_000, n).astype("float64"),
            "is_viral": rng.integers(0, 2, n),
        }
    )
    rows.loc[:4, "create_time"] = np.nan  # no known time: the oldest
    splits = pd.Series(assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=1, order="time"))
    times = rows["create_time"].groupby(splits)
    assert times.max()["train"] < times.min()["val"] and times.max()["val"] < times.min()["test"]
    assert (splits[:5] == "train").all() and splits.value_counts().to_dict() == {"train": 300, "val": 100, "test": 100}
    assert (assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=2, order="time") == splits).all()  # no seed in it
    by_author = pd.Series(assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=1, group_by="author", order="time"))
    kept = by_author[~by_author.str.startswith("gap:")]  # an author posting into a later split's weeks is not
    last, first = rows["create_time"].groupby(kept).max(), rows["create_time"].groupby(kept).min()
    for earlier, later in (("train", "val"), ("train", "test"), ("val", "test")):
        assert earlier not in last or later not in first or last[earlier] <= first[later]

    _tracked_at_one_day(store, corpus)
    result = CliRunner().invoke(
        app,
        ["--data-dir", str(settings.data_dir), "export", "--labels", "binary", "--split-order", "time"]
        + ["--at-age", "1d", "--json"],
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    exported = pd.read_parquet(Path(manifest["export_dir"]) / "videos.parquet")
    times = exported["create_time"].groupby(exported["split"])
    assert times.max()["train"] <= times.min()["test"] and manifest["split"]["order"] == "time"
    # No train (val) label was read after the first val or test (test) post: those were left out.
    read_at = counts_known_at(exported)
    assert read_at[exported["split"] == "train"].max() <= times.min()["val"]
    assert read_at[exported["split"] == "val"].max() <= times.min()["test"]
    left_out = manifest["selection"]["split_gap"]["left_out"]
    assert manifest["split"]["gap_s"] == 0 and sum(manifest["selection"]["rows_by_age_basis"].values()) == len(exported)
    card = (Path(manifest["export_dir"]) / "README.md").read_text().replace("\n", " ")
    assert "order: time (units ordered by their first posting time" in card
    assert f"after a later split's first post are left out ({left_out['train']} train" in card
    # Fitted on every row (--label-fit all): on the rows the export holds, not on those the gaps left out.
    fit_all = CliRunner().invoke(
        app,
        ["--data-dir", str(settings.data_dir), "export", "--labels", "binary", "--split-order", "time"]
        + ["--at-age", "1d", "--label-fit", "all", "--json"],
    )
    everywhere = json.loads(fit_all.stdout)
    assert sum(left_out.values()) > 0 and everywhere["label_params"]["fitted_rows"] == everywhere["row_count"]
    with pytest.raises(ConfigError, match="--split-order"):
        ExportOptions(split_order="future")
    # Counts taken at one moment make the newest posts the least viral, per-day rates the most (a young post's
    # views have not slowed yet); strata cut in time apart make age a label.
    for unfit in ({}, {"normalize_age": True}):
        with pytest.raises(ConfigError, match="--split-order time needs --at-age: "):
            ExportOptions(split_order="time", **unfit)
    with pytest.raises(ConfigError, match="excludes --stratify"):
        ExportOptions(split_order="time", at_age_s=86_400, stratify=True)


def _tracked_at_one_day(store, video_ids: list[str]) -> None:
    """A tracker's sighting of each video at exactly 1 day of age, with counts of its own."""
    with store.transaction() as session:
        posted = session.execute(select(Video.id, Video.create_time).where(Video.id.in_(video_ids))).all()
        for i, (video_id, created) in enumerate(sorted(posted)):
            session.add(
                StatsSnapshot(
                    video_id=video_id,
                    captured_at=datetime.fromtimestamp(created + 86_400, UTC),
                    play_count=500 * (i + 1),
                    like_count=50 * (i + 1),
                    comment_count=5 * (i % 7),
                    share_count=i % 4,
                    collect_count=i,
                )
            )


def test_a_time_ordered_split_leaves_out_the_labels_read_after_a_later_split_began():
    """One post a day for 100 days, each labelled 7 days later, cut 60/20/20: train's last 6 days (their
    labels read after val's first post on day 60) and val's before test's day 80 are left out; --split-gap
    widens that. An author's posts spread in time: one posting into test's weeks takes them all out of
    train, though their median post is early."""
    day = 86_400
    rows = pd.DataFrame({"video_id": [str(i) for i in range(100)], "create_time": np.arange(100) * float(day)})
    read_at = rows["create_time"].to_numpy() + 7 * day

    def spans(splits) -> dict:
        return {name: (min(d), max(d)) for name, d in pd.Series(splits).groupby(splits).groups.items()}

    cut = assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=0, order="time", label_known_at=read_at)
    assert spans(cut) == {
        "train": (0, 53),
        "gap:train": (54, 59),
        "val": (60, 73),
        "gap:val": (74, 79),
        "test": (80, 99),
    }
    wider = assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=0, order="time", label_known_at=read_at, gap_s=day)
    assert spans(wider)["train"] == (0, 52)
    assert (
        assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=0, order="time") == pd.Series(cut).str.removeprefix("gap:")
    ).all()

    rows["author_id"] = [str(i) for i in range(100)]
    rows.loc[[10, 90, 95], "author_id"] = "spread"  # posts on days 10, 90 and 95: begins in train's weeks
    by_author = pd.Series(
        assign_splits(rows, fractions=(0.6, 0.2, 0.2), seed=0, group_by="author", order="time", label_known_at=read_at)
    )
    assert set(by_author[[10, 90, 95]]) == {"gap:train"}
    # Ordered by their median post it was a test unit, and test began on day 10: train and val all but gone.
    assert (by_author == "train").sum() >= 50 and (by_author == "val").sum() >= 10


def test_a_split_emptied_by_its_gap_is_refused(settings, store, corpus):
    with pytest.raises(ConfigError, match="--split-gap is for --split-order time"):
        ExportOptions(split_gap_s=86_400)
    with pytest.raises(ConfigError, match="--split-gap must not be negative"):
        ExportOptions(split_order="time", at_age_s=86_400, split_gap_s=-1)
    _tracked_at_one_day(store, corpus)
    args = ["--data-dir", str(settings.data_dir), "export", "--labels", "binary", "--split-order", "time"]
    args += ["--at-age", "1d"]
    result = CliRunner().invoke(app, [*args, "--split-gap", "1000d"])
    said = " ".join(result.stderr.split())
    assert result.exit_code == 1 and "--split-order time leaves no train video: the labels of all" in said, (
        result.output
    )
    assert "or less than 1000d before it, and the posts span" in said
    # The sightings of the corpus's first day (its posts are a day apart) are read before the last day's posts.
    result = CliRunner().invoke(app, [*args, "--split", "0.4,0.2,0.4", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["selection"]["split_gap"]["gap_s"] == 0


def test_splits_are_deterministic_from_seed_and_ids(settings, store, corpus):
    rows = pd.DataFrame({"video_id": [str(10_000 + i) for i in range(1000)], "author_id": None})

    first = assign_splits(rows, fractions=(0.7, 0.15, 0.15), seed=42)
    shuffled = rows.sample(frac=1.0, random_state=1)
    again = pd.Series(assign_splits(shuffled, fractions=(0.7, 0.15, 0.15), seed=42), index=shuffled.index)

    assert (again.sort_index().to_numpy() == first).all()  # row order does not matter, only ids
    assert (assign_splits(rows, fractions=(0.7, 0.15, 0.15), seed=43) != first).any()
    assert pd.Series(first).value_counts().to_dict() == {"train": 700, "val": 150, "test": 150}
    v1 = pd.read_parquet(run_export(settings, ExportOptions(seed=5)) / "videos.parquet")
    v2 = pd.read_parquet(run_export(settings, ExportOptions(seed=5)) / "videos.parquet")
    assert v1["split"].tolist() == v2["split"].tolist()


def test_stratify_balances_the_label_across_splits():
    rows = pd.DataFrame(
        {
            "video_id": [str(i) for i in range(1000)],
            "is_viral": [int(i % 5 == 0) for i in range(1000)],
            "virality_score": [i / 1000 for i in range(1000)],
        }
    )

    splits = pd.Series(assign_splits(rows, fractions=(0.7, 0.15, 0.15), seed=0, stratify_on="is_viral"))

    viral_by_split = rows["is_viral"].groupby(splits).agg(["sum", "size"])
    assert viral_by_split.loc["train"].tolist() == [140, 700]
    assert viral_by_split.loc["val"].tolist() == [30, 150]
    assert viral_by_split.loc["test"].tolist() == [30, 150]
    by_score = pd.Series(assign_splits(rows, fractions=(0.7, 0.15, 0.15), seed=0, stratify_on="virality_score"))
    means = rows["virality_score"].groupby(by_score).mean()
    assert (means - 0.5).abs().max() < 0.02


def test_copy_media_gives_the_export_copies_that_no_later_edit_of_the_corpus_reaches(settings, store, corpus):
    """Hard links were the corpus's files under another name: a file edited in place changed every earlier
    export that shipped it."""
    path = run_export(settings, ExportOptions(copy_media=True))

    rows = pd.read_parquet(path / "videos.parquet")
    assert rows["file"].str.startswith("media/").all()
    originals = {}
    for video_id, file in zip(rows["video_id"], rows["file"]):
        originals[file] = (settings.data_dir / "media" / f"{video_id}.mp4").read_bytes()
        assert (path / file).read_bytes() == originals[file]
    assert json.loads((path / "manifest.json").read_text())["media"] == "copied"
    for video_id in rows["video_id"]:
        with open(settings.data_dir / "media" / f"{video_id}.mp4", "r+b") as in_place:  # the same inode
            in_place.write(ACCESS_DENIED)
            in_place.truncate()
    assert {file: (path / file).read_bytes() for file in rows["file"]} == originals


@pytest.mark.parametrize(
    "options",
    [ExportOptions(copy_media=True), ExportOptions(), ExportOptions(format="csv"), ExportOptions(format="webdataset")],
    ids=["copied", "referenced", "csv", "webdataset"],
)
def test_a_media_file_gone_since_validate_aborts_the_export_without_a_trace(settings, store, corpus, options):
    """A table listing a file that is not there, or shards dying half-written with a traceback: refused
    before anything is written, saying what to run."""
    (settings.data_dir / "media" / f"{corpus[3]}.mp4").unlink()

    with pytest.raises(
        ExportError, match=rf"1 selected video file\(s\) are missing, e.g. .*{corpus[3]}.mp4; run `corpus validate`"
    ):
        run_export(settings, options)

    assert list((settings.data_dir / "exports").iterdir()) == []
    with store.sessions() as session:
        assert session.scalars(select(Export)).all() == []


@pytest.mark.parametrize("change", ["rewritten", "touched", "never probed"])
@pytest.mark.parametrize(
    "options",
    [ExportOptions(copy_media=True), ExportOptions(), ExportOptions(format="csv"), ExportOptions(format="webdataset")],
    ids=["copied", "referenced", "csv", "webdataset"],
)
def test_a_media_file_changed_since_validate_aborts_the_export_without_a_trace(db_store, options, change):
    """A row must describe the file the export ships or points to: one replaced by an error page (another
    size), written after its probe (its mtime, against the probe time as read from SQLite or Postgres) or
    never probed is refused before anything is written, naming it and what to run."""
    store, settings = db_store
    corpus = populate_corpus(store, settings.data_dir)
    changed = settings.data_dir / "media" / f"{corpus[3]}.mp4"
    if change == "rewritten":
        changed.write_bytes(ACCESS_DENIED)
    elif change == "touched":
        date_now(changed)
    else:
        with store.transaction() as session:
            session.execute(update(MediaFile).where(MediaFile.video_id == corpus[3]).values(probed_at=None))

    with pytest.raises(ExportError) as refused:
        run_export(settings, options)

    assert str(refused.value) == (
        f"1 selected video file(s) changed since `corpus validate` probed them (another size, or written since), "
        f"e.g. {changed}; run `corpus validate` (it marks missing files missing_file and probes changed ones again; "
        "exports leave out what it finds unfit, and `corpus download --retry-failed` fetches it again), then export "
        "again"
    )
    assert list((settings.data_dir / "exports").iterdir()) == []
    with store.sessions() as session:
        assert session.scalars(select(Export)).all() == []


def test_copy_media_refuses_bytes_that_are_not_the_rows_though_their_size_and_mtime_are(settings, store, corpus):
    """Damage in place with the old mtime kept passes a stat; the copy, hashed as it is made, does not."""
    damaged = [settings.data_dir / "media" / f"{video_id}.mp4" for video_id in corpus[2:4]]
    for path in damaged:
        kept = path.stat()
        path.write_bytes(bytes(kept.st_size))
        os.utime(path, ns=(kept.st_atime_ns, kept.st_mtime_ns))

    with pytest.raises(ExportError) as refused:
        run_export(settings, ExportOptions(copy_media=True))

    assert str(refused.value) == (
        "2 selected video file(s) do not hold the bytes their row's sha256 names though their size and mtime are "
        f"the probe's (changed in place with an old mtime, or damaged on disk), e.g. {damaged[0]}, {damaged[1]}; "
        "`touch` them so that `corpus validate` probes them again, then export again"
    )
    assert list((settings.data_dir / "exports").iterdir()) == []


def test_shards_refuse_bytes_that_are_not_the_rows_though_their_size_and_mtime_are(settings, store, corpus):
    """Shards of files the export only references pack the corpus's own files: each is hashed as it is
    packed, so a file damaged in place with its old mtime kept is refused, not shipped under its row."""
    damaged = settings.data_dir / "media" / f"{corpus[2]}.mp4"
    kept = damaged.stat()
    damaged.write_bytes(bytes(kept.st_size))
    os.utime(damaged, ns=(kept.st_atime_ns, kept.st_mtime_ns))

    with pytest.raises(ExportError) as refused:
        run_export(settings, ExportOptions(format="webdataset"))

    assert str(refused.value).startswith("1 selected video file(s) do not hold the bytes their row's sha256 names")
    assert f" {damaged.resolve()};" in str(refused.value), "a path that can be touched: not through the staging"
    assert list((settings.data_dir / "exports").iterdir()) == []


def test_as_of_uses_the_snapshot_at_that_time(settings, store, corpus):
    path = run_export(settings, ExportOptions(as_of=T0 - timedelta(hours=1)))

    rows = pd.read_parquet(path / "videos.parquet")
    assert (rows["play_count"] == 10**9).all()
    assert (rows["stats_captured_at"] == pd.Timestamp(T0 - timedelta(days=1))).all()


def test_a_later_sighting_without_counts_neither_blanks_the_latest_counts_nor_the_grid(settings, store, corpus):
    """A list item can come without its stats: its sighting's snapshot holds no counts, and must not
    become the video's latest counts in an export or in the browse grid."""
    first = corpus[0]
    with store.transaction() as session:
        session.add(StatsSnapshot(video_id=first, captured_at=T0 + timedelta(hours=1), source="related"))

    rows = pd.read_parquet(run_export(settings, ExportOptions()) / "videos.parquet").set_index("video_id")

    assert rows.loc[first, "play_count"] == 1000 and rows.loc[first, "stats_captured_at"] == pd.Timestamp(T0)
    grid = grid_rows(store).set_index("video_id")
    assert grid.loc[first, "play_count"] == 1000 and grid.loc[first, "like_count"] == 100


def test_the_export_says_when_its_counts_were_taken_and_what_it_left_out(settings, store, corpus):
    progress = Progress(disable=True)
    path = run_export(settings, ExportOptions(as_of=T0 - timedelta(hours=1)), progress=progress)

    steps = progress.tasks[0]
    assert steps.finished and steps.completed == steps.total == 5  # the bar ends full, not at "writing files 4/5"
    summary = export_summary(read_manifest(path))
    assert "labels as of 2024-04-30T23:00:00+00:00; left out: 1 without a stats snapshot)" in summary
    card = " ".join((path / "README.md").read_text().split())
    assert "probed with libav in-process (PyAV; ffprobe where libav cannot read a file)" in card


def test_the_frame_threshold_is_the_exports_own_not_the_last_validates(settings, store, corpus):
    """`corpus validate --min-frames 150` marked a 120-frame video too_short: an export at 100 frames takes
    it, so the threshold the card states is the one the rows meet; a video probed bad never comes back."""
    with store.transaction() as session:
        for video_id, status in (("2010", "too_short"), ("2011", "corrupt")):
            session.add(_video(video_id, "a0", probe_status=status))
            session.flush()
            session.add(_media(settings.data_dir, video_id, 120))
            session.add(StatsSnapshot(video_id=video_id, captured_at=T0, play_count=5, like_count=5))

    path = run_export(settings, ExportOptions(min_frames=100))
    rows = pd.read_parquet(path / "videos.parquet").set_index("video_id")
    assert sorted(rows.index) == sorted([*corpus, "2010"])  # 2001 (too_short, 40 frames) stays out
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["selection"]["min_frames"] == 100 and manifest["selection"]["probe_status"] == [
        "valid",
        "too_short",
    ]
    assert "least 100 frames (this export's own threshold)" in (path / "README.md").read_text()

    stricter = pd.read_parquet(run_export(settings, ExportOptions(min_frames=121)) / "videos.parquet")
    assert sorted(stricter["video_id"]) == sorted(corpus) and stricter["frame_count"].min() >= 121


def test_zero_exportable_rows_is_a_clear_error(settings, store, corpus):
    with pytest.raises(ExportError, match="nothing to export"):
        run_export(settings, ExportOptions(min_frames=10_000))
    with pytest.raises(ExportError, match="nothing to export"):
        run_export(settings, ExportOptions(as_of=T0 - timedelta(days=30)))
    assert not (settings.data_dir / "exports").exists() or not list((settings.data_dir / "exports").iterdir())


def test_export_at_a_mistyped_data_dir_says_so_and_makes_no_database(tmp_path):
    mistyped = tmp_path / "no-such-corpus"
    result = CliRunner().invoke(app, ["--data-dir", str(mistyped), "export", "--labels", "binary"])
    assert result.exit_code == 1 and f"no corpus database at {mistyped / 'corpus.db'}" in result.stderr, result.output
    assert "nothing to export" not in result.output and not mistyped.exists()


@pytest.mark.parametrize(
    "bad",
    [
        dict(label="viral"),
        dict(split=(0.5, 0.5, 0.5)),
        dict(group_by="music"),
        dict(format="xlsx"),
        dict(name="../up"),
        dict(name="x-v3"),
        dict(weights=(1, 1, 1)),
        dict(threshold_quantile=1.5),
    ],
)
def test_bad_options_are_config_errors(bad):
    with pytest.raises(ConfigError):
        ExportOptions(**bad)


def test_score_weights_all_zero_are_refused_saying_so():
    """All zero weigh nothing: the message said "four non-negative numbers", which 0,0,0,0 are."""
    with pytest.raises(ConfigError, match=r"four non-negative numbers \(c,l,p,s\), not all zero"):
        ExportOptions(weights=(0, 0, 0, 0))


def test_shard_size_belongs_to_the_webdataset_format():
    """The other formats write no shards: a --shard-size given with them is a mistake, not a no-op."""
    with pytest.raises(ConfigError, match="--shard-size is for --format webdataset: csv writes no shards"):
        ExportOptions(format="csv", shard_size=10)
    with pytest.raises(ConfigError, match="--shard-size must be at least 1"):
        ExportOptions(format="webdataset", shard_size=0)
    assert ExportOptions(format="webdataset").videos_per_shard == SHARD_SIZE
    assert ExportOptions(format="webdataset", shard_size=7).videos_per_shard == 7


def test_option_parsers():
    assert parse_numbers("0.8,0.1,0.1", 3, "--split") == (0.8, 0.1, 0.1)
    with pytest.raises(ConfigError, match="--score-weights"):
        parse_numbers("1,2,x,4", 4, "--score-weights")
    assert parse_time("2024-05-01").isoformat() == "2024-05-01T00:00:00+00:00"
    assert parse_time("2024-05-01T02:00:00+02:00").isoformat() == "2024-05-01T00:00:00+00:00"
    with pytest.raises(ConfigError, match="--as-of"):
        parse_time("yesterday")


def test_cli_export_prints_a_summary_and_the_directory_last_json_for_scripts_and_reports_bad_input(
    settings, store, corpus, monkeypatch
):
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir), "export"]
    args = [
        *base,
        "--labels",
        "continuous",
        "--group-by",
        "author",
        "--stratify",
        "--seed",
        "7",
        "--score-weights",
        "0.25,0.25,0.25,0.25",
        "--normalize-age",
    ]
    monkeypatch.setattr("sys.argv", ["corpus", *args])  # the process command line the manifest records

    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    path = Path(done.stdout.strip().splitlines()[-1])
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["label"] == "continuous" and manifest["split"]["group_by"] == "author"
    assert manifest["label_params"]["weights"]["play_count"] == 0.25
    assert manifest["label_params"]["normalize_age"] is True
    assert "--stratify" in manifest["command_line"]
    splits = ", ".join(f"{name}={n}" for name, n in manifest["counts"]["split"].items())
    assert f"corpus v1: {manifest['row_count']} (viral" in done.stderr and splits in done.stderr
    assert "labels from the latest snapshot" in done.stderr

    bad = runner.invoke(app, [*base, "--labels", "binary", "--split", "0.9,0.9"])
    assert bad.exit_code == 1
    assert "--split" in bad.stderr and "Traceback" not in bad.output
    unknown = runner.invoke(app, [*base, "--labels", "binary", "--label-fit", "test"])
    assert unknown.exit_code == 1 and "--label-fit 'test': expected one of train, all" in unknown.stderr
    assert len(list((settings.data_dir / "exports").iterdir())) == 1

    scripted = runner.invoke(app, [*base, "--labels", "binary", "--json"])
    assert scripted.exit_code == 0, scripted.output
    printed = json.loads(scripted.stdout)  # for scripts: the manifest and where it lies, nothing else on stdout
    assert scripted.stderr == ""  # no progress bar, no summary line
    second = Path(printed.pop("export_dir"))
    assert second.name == "corpus-v2" and printed == json.loads((second / "manifest.json").read_text())


def test_export_takes_label_as_train_and_ablate_do(settings, store, corpus):
    """``--labels`` stays; ``--label``, the flag of ``corpus train`` and ``ablate``, is the same option."""
    done = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "export", "--label", "continuous"])
    assert done.exit_code == 0, done.output
    assert json.loads((Path(done.stdout.splitlines()[-1]) / "manifest.json").read_text())["label"] == "continuous"


@pytest.mark.postgres
def test_export_from_postgres(pg_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "pg-data", db_url=pg_url)
    store = open_store(settings, check_schema=False)
    upgrade(store.engine)
    try:
        corpus = populate_corpus(store, settings.data_dir)
        with store.transaction() as session:  # a later snapshot: the latest one must win on Postgres too
            session.add(
                StatsSnapshot(
                    video_id=corpus[0],
                    captured_at=T0 + timedelta(hours=1),
                    play_count=5,
                    like_count=5,
                    comment_count=5,
                    share_count=5,
                )
            )
        path = run_export(settings, ExportOptions(stratify=True))
    finally:
        store.dispose()

    table = pq.read_table(path / "videos.parquet")
    rows = table.to_pandas().set_index("video_id")
    assert sorted(rows.index) == sorted(corpus)
    assert rows.loc[corpus[0], "play_count"] == 5
    assert str(table.schema.field("stats_captured_at").type).startswith("timestamp")
    assert json.loads((path / "manifest.json").read_text())["source_database"].startswith("postgresql")


def test_shard_rows_read_back_times_with_and_without_a_fraction_of_a_second(tmp_path):
    """A site-clock snapshot is taken at a whole second, a local one is not: the shards' JSON must read
    back as one time column whichever comes first (isoformat drops a zero fraction)."""
    import pyarrow as pa

    from tiktok_corpus.export.shards import rows_from_shards, write_shards

    (tmp_path / "videos").mkdir()
    captured = [pd.Timestamp("2026-12-03T18:55:03Z"), pd.Timestamp("2026-12-03T18:55:04.250000Z")]
    for video_id in ("1", "2"):
        (tmp_path / "videos" / f"{video_id}.mp4").write_bytes(b"mp4 " + video_id.encode())
    table = pa.table(
        {
            "video_id": ["1", "2"],
            "file": ["videos/1.mp4", "videos/2.mp4"],
            "sha256": [hashlib.sha256(b"mp4 " + video_id.encode()).hexdigest() for video_id in ("1", "2")],
            "split": ["train", "test"],
            "is_viral": [0, 1],
            "stats_captured_at": captured,
        }
    )
    entry = write_shards(tmp_path, table, tmp_path, shard_size=1)
    rows = rows_from_shards(tmp_path, entry)
    assert list(rows["stats_captured_at"]) == captured
    assert [(tmp_path / f).read_bytes() for f in rows["file"]] == [b"mp4 1", b"mp4 2"]


def _sharded(root: Path, contents: dict[str, bytes], splits: list[str], *, shard_size: int) -> dict:
    """``contents`` (video id -> its file's bytes) written under ``root/videos`` and packed into shards of
    ``splits`` (labels alternating); the manifest's ``webdataset`` entry."""
    import pyarrow as pa

    from tiktok_corpus.export.shards import write_shards

    (root / "videos").mkdir()
    for video_id, content in contents.items():
        (root / "videos" / f"{video_id}.mp4").write_bytes(content)
    table = pa.table(
        {
            "video_id": list(contents),
            "file": [f"videos/{video_id}.mp4" for video_id in contents],
            "sha256": [hashlib.sha256(content).hexdigest() for content in contents.values()],
            "split": splits,
            "is_viral": [n % 2 for n in range(len(contents))],
        }
    )
    return write_shards(root, table, root, shard_size=shard_size)


def test_two_readers_of_a_shards_only_export_each_unpack_its_files_whole(tmp_path, monkeypatch):
    """Two readers of one export from its shards alone (two trainers at once; threads here) write each
    video out side by side: each into a scratch file of its own, so neither truncates nor renames away
    the other's (they shared one ``.part`` name)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from tiktok_corpus.export.shards import rows_from_shards

    contents = {video_id: f"mp4 {video_id}".encode() * 1000 for video_id in ("1", "2")}
    entry = _sharded(tmp_path, contents, ["train", "test"], shard_size=1)
    both_written = threading.Barrier(2)
    write_bytes = Path.write_bytes

    def side_by_side(path: Path, data: bytes) -> int:
        written = write_bytes(path, data)
        if path.name.startswith("1.mp4"):  # the first video: each reader waits for the other's write
            both_written.wait(timeout=60)
        return written

    monkeypatch.setattr(Path, "write_bytes", side_by_side)
    with ThreadPoolExecutor(2) as pool:
        tables = list(pool.map(lambda _: rows_from_shards(tmp_path, entry), range(2)))
    for rows in tables:
        assert [(tmp_path / file).read_bytes() for file in rows["file"]] == list(contents.values())
    assert not list((tmp_path / "cache").rglob("*.part")), "no scratch file left"


def test_a_shard_copied_in_part_is_refused_not_read_as_fewer_videos(tmp_path):
    """Python's tar reader takes a cut at most offsets, or zeroed blocks, for the archive's end: a shard
    copied in part (an interrupted rsync, a full disk) gave a table short of its lost videos, no error."""
    from tiktok_corpus.export.shards import rows_from_shards

    contents = {str(n): f"mp4 {n}".encode() * 500 for n in range(1, 5)}
    entry = _sharded(tmp_path, contents, ["train"] * 4, shard_size=4)
    shard = tmp_path / entry["shards"][0]["file"]
    whole = shard.read_bytes()
    assert len(rows_from_shards(tmp_path, entry)) == 4
    with tarfile.open(shard) as tar:
        first_two = tar.getmembers()[4].offset  # two samples of two members each: where the third begins
    shard.write_bytes(whole[:first_two])
    with pytest.raises(ConfigError, match=f"{first_two:,} bytes, where the manifest records {len(whole):,}"):
        rows_from_shards(tmp_path, entry)
    shard.write_bytes(whole[:first_two] + bytes(len(whole) - first_two))  # the right size, its tail zeroed
    with pytest.raises(ConfigError, match="hold 2 videos where the manifest records 4"):
        rows_from_shards(tmp_path, entry)


@pytest.mark.parametrize("key", ["../../../../outside", "abc", "8"], ids=["traversal", "letters", "another row's"])
def test_a_shard_sample_whose_key_is_no_video_of_the_export_is_refused_before_a_file_is_written(tmp_path, key):
    """Read back from its shards alone, an export's sample keys become file names under the export: a
    shard from elsewhere cannot write outside it (nor under another row's name)."""
    import webdataset as wds

    from tiktok_corpus.export.shards import rows_from_shards

    (tmp_path / "shards").mkdir()
    with wds.TarWriter(str(tmp_path / "shards" / "train-000000.tar")) as sink:
        sink.write({"__key__": key, "mp4": b"attacker bytes", "json": json.dumps({"video_id": "7"}).encode()})
    shard = tmp_path / "shards" / "train-000000.tar"
    entry = {"shards": [{"file": "shards/train-000000.tar", "bytes": shard.stat().st_size, "videos": 1}]}
    with pytest.raises(ConfigError, match="is not a video of this export"):
        rows_from_shards(tmp_path, entry)
    assert not any(path.suffix == ".mp4" for path in tmp_path.rglob("*")), "no file written anywhere"


@pytest.mark.parametrize(
    "name", ["../up", "a/b", "héllo", "corpus-v2", "-lead", "trail-", "x" * 101, "", "ok\n", "corpus-v2\n"]
)
def test_an_export_name_that_is_no_plain_folder_name_is_refused_saying_what_a_name_may_hold(name):
    """The name becomes ``exports/<name>-v<N>``: no path, no version of its own. The message said "letters",
    and refused ``héllo``, whose é is one; a trailing newline made ``exports/ok\n-v1``."""
    with pytest.raises(ConfigError, match=r"use ASCII letters and digits, '\.', '_' and inner '-' \(at most 100\)"):
        ExportOptions(name=name)


def test_a_plain_export_name_is_taken():
    assert ExportOptions(name="tiktok.2026_b-1").name == "tiktok.2026_b-1"
