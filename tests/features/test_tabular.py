"""The text, author and time tables on the 24-row sound export (tests/features/conftest.py): shapes,
train-only fitting, the author leak check and a planted leak it catches, old exports without the
newer columns. All pure pandas/scikit-learn on the table: no video is decoded."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from tiktok_corpus.export.format import read_export
from tiktok_corpus.features import FeatureOptions, author, load_features, text, timing
from tiktok_corpus.features.author import author_features, leaked_rows
from tiktok_corpus.features.text import fit_text, text_features
from tiktok_corpus.features.timing import time_features
from tiktok_corpus.train.baseline_features import metadata_features


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


def test_captions_without_spaces_give_words_too(table):
    """Chinese captions ("今天吃火锅" / "今天下雨了") were each one token, dropped by min_df: no text feature at
    all; their characters are tokens now, and the planted word separates the classes as "sunny" does."""
    viral = table["is_viral"] == 1
    captions = np.where(viral, "vlog今天吃火锅", "今日はTikTok・雨")
    chinese = table.assign(desc=captions, hashtags=[[] for _ in range(len(table))])
    model = fit_text(text.documents(chinese)[chinese["split"] == "train"], components=6)
    assert model.vectorizer is not None and {"火", "锅", "雨", "vlog", "tiktok"} <= set(model.vectorizer.vocabulary_)
    assert "・" not in model.vectorizer.vocabulary_
    frame = text_features(chinese, 6)
    assert any(set(frame.loc[viral, c].round(6)).isdisjoint(frame.loc[~viral, c].round(6)) for c in frame.columns[:6])


def test_words_keep_their_combining_marks_and_spaceless_scripts_their_clusters(table):
    """Python's ``re`` cut Hindi words at each vowel sign ("दोस्तों आज का वीडियो" kept one word, "आज"),
    and a Thai caption was one token: neither gave a vocabulary. Their words are tokens now."""
    viral = table["is_viral"] == 1
    captions = np.where(viral, "दोस्तों आज का वीडियो", "สวัสดีครับ วันนี้ทำอาหาร")
    scripts = table.assign(desc=captions, hashtags=[[] for _ in range(len(table))])
    assert text.words("दोस्तों आज का वीडियो") == ["दोस्तों", "आज", "का", "वीडियो"]
    assert text.words("ทำอาหาร") == ["ทำ", "อ", "า", "ห", "า", "ร"]  # grapheme clusters: a letter, its marks
    # The marks that draw an emoji are none of a word's: "❤️love" is love ("\ufe0flove" was a word).
    assert text.words("✌️friends ❤️love ❤️\u200d🔥 fire 1️⃣") == ["friends", "love", "fire"]
    model = fit_text(text.documents(scripts)[scripts["split"] == "train"], components=6)
    assert model.vectorizer is not None and {"दोस्तों", "वीडियो", "ทำ"} <= set(model.vectorizer.vocabulary_)
    frame = text_features(scripts, 6)
    assert any(set(frame.loc[viral, c].round(6)).isdisjoint(frame.loc[~viral, c].round(6)) for c in frame.columns[:6])


def test_an_emoji_counts_once_however_many_code_points_draw_it():
    """A skin tone, a family joined by ZWJs and a flag's two letters each counted apart, a flag or a star
    not at all; an e-mail address counted as a mention."""
    captions = ["🔥🔥🔥 👍🏽 🇺🇸 👨‍👩‍👧 ⭐ ❤️ ©", "@user.name wrote to mail@example.com", "", "❤ ★ ✔ bare"]
    frame = text_features(pd.DataFrame({"desc": captions, "split": "train"}), components=2)
    assert frame["text.emoji_count"].tolist() == [8, 0, 0, 3]
    assert frame["text.mention_count"].tolist() == [0, 1, 0, 0]


AGE = pd.Timedelta(days=7)


@pytest.fixture
def at_age_table(table) -> pd.DataFrame:
    """The table as an ``--at-age 7d`` export has it: each video's counts observed 7 days after its posting.
    Authors post every 5 days, so a row's author's videos posted 7 days or more before it are known to it."""
    return table.assign(stats_captured_at=pd.to_datetime(table["create_time"], unit="s", utc=True) + AGE)


def _known_at_posting(table: pd.DataFrame, row: int) -> pd.Series:
    """The train rows of ``row``'s author, other than itself, whose counts were observed by its posting."""
    posted = pd.to_datetime(table.loc[row, "create_time"], unit="s", utc=True)
    return (
        (table["author_id"] == table.loc[row, "author_id"])
        & (table.index != row)
        & (table["split"] == "train")
        & (pd.to_datetime(table["stats_captured_at"], utc=True) <= posted)
    )


def test_author_table_reads_profiles_and_other_train_videos_known_at_posting(at_age_table):
    table = at_age_table
    frame = author_features(table)
    assert len(frame.columns) == 8 and frame.columns.str.startswith("author.").all()
    profile = [
        "author.log_followers",
        "author.log_following",
        "author.log_videos",
        "author.verified",
    ]
    assert not frame[profile].isna().any().any()
    # Row 15's author (500) has train rows 0, 5 and 10: 0 and 5 were seen at 7 days, before row 15 was
    # posted (day 15); row 10's counts came at day 17.
    assert _known_at_posting(table, 15).pipe(lambda pool: list(table.index[pool])) == [0, 5]
    others = table.loc[[0, 5], "play_count"]
    assert frame.loc[15, "author.others_median_log_plays"] == pytest.approx(np.median(np.log1p(others)))
    assert frame.loc[15, "author.others_train_videos"] == 2
    plays = np.log1p(table["play_count"].astype(float))
    for row in table.index:
        pool = _known_at_posting(table, row)
        assert frame.loc[row, "author.others_train_videos"] == pool.sum()
        expected = np.median(plays[pool]) if pool.any() else np.nan
        assert frame.loc[row, "author.others_median_log_plays"] == pytest.approx(expected, nan_ok=True)
        expected = np.median(table.loc[pool, "virality_score"]) if pool.any() else np.nan
        assert frame.loc[row, "author.others_median_virality"] == pytest.approx(expected, nan_ok=True)
        expected = table.loc[pool, "is_viral"].mean() if pool.any() else np.nan
        assert frame.loc[row, "author.others_viral_rate"] == pytest.approx(expected, nan_ok=True)
    assert 0 < (frame["author.others_train_videos"] > 0).sum() < len(table)
    assert author.describe(frame) == {"rows_with_author_statistics": (frame["author.others_train_videos"] > 0).sum()}


def test_in_a_plain_export_no_row_has_author_statistics(table):
    """Every count of the plain fixture was observed on 2024-01-01, after every posting: no author's
    video was known when another was posted, so none has statistics (the honest result)."""
    frame = author_features(table)
    assert (frame["author.others_train_videos"] == 0).all()
    assert frame.filter(like="author.others_median").isna().all().all()
    assert author.describe(frame) == {"rows_with_author_statistics": 0}


def test_an_export_split_by_author_gives_no_row_author_statistics(at_age_table, sound_export, tmp_path):
    """`--group-by author` keeps each author's videos in one split: no val or test row can have these
    statistics, so no train row gets them either (a model would learn from what it never meets)."""
    pd.testing.assert_frame_equal(
        author_features(at_age_table, split_by_author=True),
        author_features(at_age_table.assign(split="val")),  # no train video of any author: none known
    )
    at_age_table.to_parquet(sound_export / "videos.parquet", index=False)
    by_author = shutil.copytree(sound_export, tmp_path / "by-author")
    manifest = json.loads((by_author / "manifest.json").read_text())
    (by_author / "manifest.json").write_text(json.dumps({**manifest, "split": {"group_by": "author"}}))
    options = FeatureOptions(modalities=("author",), progress=False)
    split_at_random = load_features(sound_export, ["author"], options)
    split_by_author = load_features(by_author, ["author"], options)
    assert (split_at_random["author.others_train_videos"] > 0).any()
    assert (split_by_author["author.others_train_videos"] == 0).all()


def test_author_features_never_see_the_row_itself_held_out_rows_or_the_unknown(table, at_age_table):
    assert leaked_rows(table) == []
    assert leaked_rows(at_age_table) == []


@pytest.mark.parametrize(("later_sighting_day", "known_to_the_later_post"), [(30, False), (7, True)])
def test_an_at_age_count_is_known_when_its_last_snapshot_was(later_sighting_day, known_to_the_later_post):
    """An --at-age 7d export places V's plays at day 7 by interpolating between sightings at 1h and
    ``later_sighting_day``: what V's own later hit sent through the back catalogue was in that count,
    which was known only at the later sighting, so a video its author posted at day 8 may not see it."""
    day = 86_400
    table = pd.DataFrame(
        {
            "video_id": ["1", "2"],
            "author_id": ["a", "a"],
            "split": ["train", "train"],
            "create_time": [0, 8 * day],
            "stats_captured_at": pd.to_datetime([7 * day, 15 * day], unit="s", utc=True),
            "snapshot_age_before_s": [3_600.0, 7 * day],
            "snapshot_age_after_s": [later_sighting_day * day, np.nan],
            "play_count": [1_000_000, 10],
            "virality_score": [0.9, 0.1],
            "is_viral": [1, 0],
        }
    )
    frame = author_features(table)
    assert frame.loc[1, "author.others_train_videos"] == int(known_to_the_later_post)
    assert leaked_rows(table) == []


def _seen_at(moments):
    """author_features as if each row's counts were known at ``moments(table)``: a planted leak."""
    return lambda t: author_features(t.assign(stats_captured_at=pd.to_datetime(moments(t), unit="s", utc=True)))


def test_a_planted_leak_is_caught(at_age_table, monkeypatch):
    """Four leaky variants: every other train video (later ones too); the videos posted before the row,
    their counts read after its posting; the row's own value; val/test rows in the pool."""
    table = at_age_table
    every_other = leaked_rows(table, _seen_at(lambda t: np.zeros(len(t))))
    assert every_other and set(every_other) <= set(table["video_id"])
    posted_earlier = leaked_rows(table, _seen_at(lambda t: t["create_time"] - 1))
    assert posted_earlier

    # Every row's counts known at its own posting: only its own value could reach it, and does not ...
    at_posting = table.assign(stats_captured_at=pd.to_datetime(table["create_time"], unit="s", utc=True))
    assert leaked_rows(at_posting) == []
    honest = author._summary_without
    monkeypatch.setattr(author, "_summary_without", lambda ordered, total, own: honest(ordered, total, None))
    leaked = leaked_rows(at_posting)  # ... unless it is counted.
    assert leaked and set(leaked) <= set(table.loc[table["split"] == "train", "video_id"])
    monkeypatch.undo()

    honest_pool = author.over_known_before
    monkeypatch.setattr(author, "over_known_before", lambda v, a, c, k, t: honest_pool(v, a, c | ~c, k, t))
    assert leaked_rows(at_posting) != []  # every split in the pool


def test_the_split_order_does_not_open_the_future(at_age_table):
    """A random split (the default) once pooled every other train video of the author, later ones too."""

    class Export:
        def __init__(self, order):
            self.table, self.manifest = at_age_table, {"split": {"order": order}}

    by_time = author.compute(Export("time"), None, lambda n: None)
    assert by_time.equals(author.compute(Export("random"), None, lambda n: None))
    assert by_time.equals(author_features(at_age_table))


def _brute_force(values, authors, contributes, known_at, asked_at) -> pd.DataFrame:
    out = []
    for row in range(len(values)):
        if pd.isna(authors[row]) or np.isnan(asked_at[row]):
            out.append((np.nan, np.nan, np.nan))
            continue
        pool = (authors == authors[row]) & contributes & ~np.isnan(values) & (known_at <= asked_at[row])
        pool[row] = False
        picked = values[pool]
        out.append((len(picked), *((np.median(picked), picked.mean()) if len(picked) else (np.nan, np.nan))))
    return pd.DataFrame(out, columns=["count", "median", "mean"])


def test_the_one_pass_statistics_match_a_brute_force_count():
    """Ties of moments (a value known exactly when another row is posted counts), values known before
    their own row's posting (never counted for it), unknown values, moments and authors."""
    rng = np.random.default_rng(3)
    n = 400
    values = rng.integers(0, 6, n).astype(float)
    values[rng.random(n) < 0.1] = np.nan
    authors = pd.Series(rng.integers(0, 12, n).astype(str), dtype=object)
    authors[rng.random(n) < 0.05] = np.nan
    asked_at = rng.integers(0, 40, n).astype(float)
    known_at = asked_at + rng.integers(-3, 10, n)
    asked_at[rng.random(n) < 0.05] = np.nan
    known_at[rng.random(n) < 0.05] = np.nan
    contributes = rng.random(n) < 0.7

    got = author.over_known_before(
        pd.Series(values), authors, pd.Series(contributes), pd.Series(known_at), pd.Series(asked_at)
    )

    expected = _brute_force(values, authors.to_numpy(), contributes, known_at, asked_at)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert (known_at <= asked_at).any() and (got["count"] > 1).any()


def test_time_table_reads_hour_weekday_and_original_sound(table):
    frame = time_features(table)
    viral = table["is_viral"].to_numpy() == 1
    assert (frame.loc[viral, "time.hour"] == 18).all() and (frame.loc[~viral, "time.hour"] == 6).all()
    assert (frame["time.original_music"] == viral).all()
    assert frame["time.weekday"].between(0, 6).all()
    assert not any("age" in column for column in frame.columns)  # when the label was measured: not a feature
    assert not frame.isna().any().any()


def test_a_posting_time_no_calendar_holds_is_unknown_not_the_end_of_the_table():
    """``create_time`` 10**15 (or a millisecond one read as seconds far off) raised OutOfBoundsDatetime."""
    frame = time_features(pd.DataFrame({"create_time": [1_700_000_000, 10**15]}))
    assert (
        frame["time.hour"].iloc[0] == pytest.approx(22 + 13 / 60)
        and frame.iloc[1][["time.hour", "time.weekday"]].isna().all()
    )


def test_the_sites_original_flag_decides_and_the_english_title_only_where_it_is_unknown():
    """A localised or retitled original sound is original; an export without the flag (older) falls back
    to the English title."""
    table = pd.DataFrame(
        {
            "music_title": ["son original - Léa", "Go follow zDeezee", "Song - Band", "original sound - x", ""],
            "music_original": pd.array([True, True, False, pd.NA, pd.NA], dtype="boolean"),
        }
    )
    assert time_features(table)["time.original_music"].tolist()[:4] == [1.0, 1.0, 0.0, 1.0]
    assert np.isnan(time_features(table)["time.original_music"].iloc[4])
    by_title = time_features(table.drop(columns=["music_original"]))["time.original_music"]
    assert by_title.tolist()[:4] == [0.0, 0.0, 0.0, 1.0]


def test_a_csv_export_gives_the_features_its_parquet_twin_gives(sound_export, tmp_path):
    """The csv table holds its moments as text: read back, they are times again (they were all NaN from
    csv, so one export's two formats trained different models)."""
    manifest, parquet_rows = read_export(sound_export)
    as_text = parquet_rows.assign(hashtags=parquet_rows["hashtags"].map(" ".join))  # as the exporter writes it
    pacsv.write_csv(pa.Table.from_pandas(as_text, preserve_index=False), sound_export / "videos.csv")
    (sound_export / "manifest.json").write_text(json.dumps({**manifest, "data_file": "videos.csv"}))
    _, csv_rows = read_export(sound_export)
    from_parquet, from_csv = time_features(parquet_rows), time_features(csv_rows)
    pd.testing.assert_series_equal(csv_rows["stats_captured_at"], parquet_rows["stats_captured_at"])
    pd.testing.assert_frame_equal(from_csv, from_parquet)


def test_an_older_export_without_the_new_columns_gives_nan_features(table):
    old = table.drop(
        columns=["following_count", "heart_count", "video_count", "verified", "music_title", "music_original"]
    )
    assert author_features(old)["author.log_following"].isna().all()
    assert author_features(old)["author.log_followers"].notna().all()
    assert time_features(old)["time.original_music"].isna().all()
    assert timing.settings(None) == {"version": timing.VERSION}


def test_csv_hashtags_that_look_like_nested_json_are_names(table):
    """A CSV export joins hashtag names with spaces, and a name may be 256 ``[``: four of them parsed as
    JSON nested past Python's recursion limit, and the RecursionError ended the text table and every
    gbdt run's metadata baseline."""
    hostile = " ".join(["[" * 256] * 4)
    rows = table.assign(hashtags=[hostile, "[1, 2]", "[not json", *[" ".join(["a", "b"])] * (len(table) - 3)])
    counts = text_features(rows, components=2)["text.hashtag_count"].tolist()
    assert counts[:4] == [4, 2, 2, 2]
    assert metadata_features(rows)[:4, 3].tolist() == [4, 2, 2, 2]


def test_the_metadata_baseline_leaves_an_unknown_duration_to_its_imputer(table):
    """A duration the export does not know was 0 (a very short video) beside the imputer that fills the
    followers it does not know with the train split's median."""
    rows = table.assign(duration_s=[None, "n/a", *table["duration_s"].iloc[2:]])
    durations = metadata_features(rows)[:, 1]
    assert np.isnan(durations[:2]).all()
    assert durations[2:].tolist() == table["duration_s"].iloc[2:].astype(float).tolist()
    assert np.isnan(metadata_features(rows.drop(columns="duration_s"))[:, 1]).all()
