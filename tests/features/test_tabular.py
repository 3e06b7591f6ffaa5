"""The text, author and time tables on the 24-row sound export (tests/features/conftest.py): shapes,
train-only fitting, the author leak check and a planted leak it catches, old exports without the
newer columns. All pure pandas/scikit-learn on the table: no video is decoded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from tiktok_corpus.export.format import read_export
from tiktok_corpus.features import author, text, timing
from tiktok_corpus.features.author import author_features, leaked_rows
from tiktok_corpus.features.text import fit_text, text_features
from tiktok_corpus.features.timing import time_features


@pytest.fixture
def table(sound_export_source) -> pd.DataFrame:
    return pd.read_parquet(sound_export_source / "videos.parquet")


def test_text_table_has_fixed_columns_and_no_nan(table):
    frame = text_features(table, components=6)
    assert list(frame.columns[:6]) == [f"text.svd_{i}" for i in range(6)]
    assert {"text.caption_chars", "text.hashtag_count", "text.mention_count", "text.emoji_count"} <= set(frame)
    assert len(frame) == len(table) and not frame.isna().any().any()
    viral = table["is_viral"].to_numpy() == 1
    assert (frame.loc[viral, "text.emoji_count"] == 1).all() and (frame.loc[~viral, "text.emoji_count"] == 0).all()
    assert (frame.loc[viral, "text.mention_count"] == 1).all()
    assert (frame.loc[viral, "text.hashtag_count"] == 2).all() and (frame.loc[~viral, "text.hashtag_count"] == 1).all()
    # "sunny" vs "rainy" is the caption's only signal: the first SVD dimensions separate the classes.
    separating = [
        c for c in frame.columns[:6] if set(frame.loc[viral, c].round(6)).isdisjoint(frame.loc[~viral, c].round(6))
    ]
    assert separating


def test_text_vocabulary_comes_from_the_train_split_only(table):
    """ "zebracorn" is in every test caption and no train caption: no column of the fitted vocabulary."""
    model = fit_text(text.documents(table)[table["split"] == "train"], components=6)
    assert model.vectorizer is not None and "zebracorn" not in model.vectorizer.vocabulary_
    assert "sunny" in model.vectorizer.vocabulary_
    # Dropping the word from the test captions changes none of the test rows' SVD features.
    cleaned = table.assign(desc=table["desc"].str.replace("zebracorn", "", regex=False))
    svd = [f"text.svd_{i}" for i in range(6)]
    assert np.allclose(text_features(table, 6)[svd], text_features(cleaned, 6)[svd])


def test_author_table_reads_profiles_and_other_train_videos(table):
    frame = author_features(table)
    assert len(frame.columns) == 8 and frame.columns.str.startswith("author.").all()
    profile = [
        "author.log_followers",
        "author.log_following",
        "author.log_videos",
        "author.verified",
    ]
    assert not frame[profile].isna().any().any()
    # Row 0's author (500) has train rows 0, 5 and 10; its other ones are rows 5 and 10.
    others = table.loc[[5, 10], "play_count"]
    assert frame.loc[0, "author.others_median_log_plays"] == pytest.approx(np.median(np.log1p(others)))
    assert frame.loc[0, "author.others_train_videos"] == 2


def test_author_features_never_see_the_row_itself_or_held_out_rows(table):
    assert leaked_rows(table) == []


def test_a_planted_leak_is_caught(table, monkeypatch):
    """Two leaky variants: the row's own value in its statistic; val/test rows in the pool."""

    def with_the_row_itself(values, authors, contributes):
        return authors.map(values[contributes].groupby(authors[contributes]).median())

    monkeypatch.setattr(author, "median_of_others", with_the_row_itself)
    leaked = leaked_rows(table)
    # A train row whose own value moves its author's median is caught (a median does not always move).
    assert leaked and set(leaked) <= set(table.loc[table["split"] == "train", "video_id"])
    monkeypatch.undo()

    honest = author.mean_of_others
    monkeypatch.setattr(author, "mean_of_others", lambda v, a, c: honest(v, a, c | ~c))  # every split
    assert leaked_rows(table) != []


def test_in_an_export_split_in_time_the_author_statistics_only_look_back(table):
    """Each row's statistics come from its author's train videos posted before it: never from a later
    video's success, which a hit of the row itself may have caused."""
    frame = author_features(table, earlier_only=True)
    in_train = table["split"] == "train"
    plays = np.log1p(table["play_count"].astype(float))
    for row in table.index:
        earlier = (table["author_id"] == table.loc[row, "author_id"]) & (
            table["create_time"] < table.loc[row, "create_time"]
        )
        pool = earlier & in_train
        assert frame.loc[row, "author.others_train_videos"] == pool.sum()
        expected = np.median(plays[pool]) if pool.any() else np.nan
        assert frame.loc[row, "author.others_median_log_plays"] == pytest.approx(expected, nan_ok=True)
        expected_rate = table.loc[pool, "is_viral"].mean() if pool.any() else np.nan
        assert frame.loc[row, "author.others_viral_rate"] == pytest.approx(expected_rate, nan_ok=True)
    assert frame["author.others_median_log_plays"].notna().any()
    assert leaked_rows(table, lambda t: author_features(t, earlier_only=True)) == []
    # The future moves nothing: every row's outcome after the first half of the table changes.
    later = (table["create_time"] > table["create_time"].median()).to_numpy()
    moved = author_features(author._perturbed(table, later), earlier_only=True)
    past = ~later
    assert np.allclose(frame[past].to_numpy(), moved[past].to_numpy(), equal_nan=True)
    assert not np.allclose(
        author_features(table)[past].to_numpy(),
        author_features(author._perturbed(table, later))[past].to_numpy(),
        equal_nan=True,
    )


def test_the_export_manifest_chooses_the_look_back(table):
    class Export:
        def __init__(self, order):
            self.table, self.manifest = table, {"split": {"order": order}}

    by_time = author.compute(Export("time"), None, lambda n: None)
    assert by_time.equals(author_features(table, earlier_only=True))
    assert author.compute(Export("random"), None, lambda n: None).equals(author_features(table))
    assert not by_time.equals(author_features(table))


def test_time_table_reads_hour_weekday_and_original_sound(table):
    frame = time_features(table)
    viral = table["is_viral"].to_numpy() == 1
    assert (frame.loc[viral, "time.hour"] == 18).all() and (frame.loc[~viral, "time.hour"] == 6).all()
    assert (frame["time.original_music"] == viral).all()
    assert frame["time.weekday"].between(0, 6).all() and (frame["time.age_at_observation_h"] > 0).all()
    assert not frame.isna().any().any()


def test_a_csv_export_gives_the_features_its_parquet_twin_gives(sound_export, tmp_path):
    """The csv table holds its moments as text: read back, they are times again (the age at observation
    was all NaN from csv, so one export's two formats trained different models)."""
    manifest, parquet_rows = read_export(sound_export)
    as_text = parquet_rows.assign(hashtags=parquet_rows["hashtags"].map(" ".join))  # as the exporter writes it
    pacsv.write_csv(pa.Table.from_pandas(as_text, preserve_index=False), sound_export / "videos.csv")
    (sound_export / "manifest.json").write_text(json.dumps({**manifest, "data_file": "videos.csv"}))
    _, csv_rows = read_export(sound_export)
    from_parquet, from_csv = time_features(parquet_rows), time_features(csv_rows)
    assert from_csv["time.age_at_observation_h"].notna().all()
    pd.testing.assert_frame_equal(from_csv, from_parquet)


def test_an_older_export_without_the_new_columns_gives_nan_features(table):
    old = table.drop(columns=["following_count", "heart_count", "video_count", "verified", "music_title"])
    assert author_features(old)["author.log_following"].isna().all()
    assert author_features(old)["author.log_followers"].notna().all()
    assert time_features(old)["time.original_music"].isna().all()
    assert timing.settings(None) == {"version": timing.VERSION}
