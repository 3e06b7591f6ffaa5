"""The feature cache (reuse, invalidation, corrupt files), ``corpus features --json`` and bad input, on
the 24-row sound export with the cheap modalities (text, author, time: no decoding)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from tiktok_corpus.cli import app
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.features import FeatureOptions, extract_features, load_features, text

CHEAP = ("text", "author", "time")


@pytest.fixture
def computed(monkeypatch) -> list[int]:
    """How many text tables were computed (the cache must spare the rest)."""
    calls: list[int] = []
    original = text.compute

    def counting(export, options, advance):
        calls.append(len(export.table))
        return original(export, options, advance)

    monkeypatch.setattr(text, "compute", counting)
    return calls


def test_a_second_run_reuses_the_cache_and_a_new_setting_recomputes(sound_export, computed):
    options = FeatureOptions(modalities=CHEAP, progress=False)
    first = extract_features(sound_export, options)
    assert [r.cache_hit for r in first.results] == [False] * 3 and computed == [24]
    second = extract_features(sound_export, options)
    assert [r.cache_hit for r in second.results] == [True] * 3 and computed == [24]

    other = extract_features(sound_export, FeatureOptions(modalities=("text",), text_components=4, progress=False))
    assert not other.results[0].cache_hit and computed == [24, 24]
    assert other.results[0].cache_file != first.results[0].cache_file
    frame = load_features(sound_export, ["text"], FeatureOptions(modalities=("text",), text_components=4))
    assert frame.filter(like="text.svd_").shape[1] == 4 and computed == [24, 24]


def test_an_edited_table_gets_new_features(sound_export, computed):
    options = FeatureOptions(modalities=("text",), progress=False)
    extract_features(sound_export, options)
    table = pd.read_parquet(sound_export / "videos.parquet")
    table.assign(desc=table["desc"] + " more").to_parquet(sound_export / "videos.parquet", index=False)
    assert not extract_features(sound_export, options).results[0].cache_hit and len(computed) == 2


@pytest.mark.parametrize("damage", ["truncate", "settings", "rows"])
def test_a_corrupt_or_mismatched_cache_file_is_recomputed(sound_export, computed, damage):
    options = FeatureOptions(modalities=("text",), progress=False)
    path = extract_features(sound_export, options).results[0].cache_file
    expected = pd.read_parquet(path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "settings":
        sidecar = path.with_suffix(".json")
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "settings": {"components": 99}}))
    else:
        expected.iloc[:5].to_parquet(path)
    again = extract_features(sound_export, options)
    assert not again.results[0].cache_hit and len(computed) == 2
    pd.testing.assert_frame_equal(pd.read_parquet(path), expected)


def test_features_json_through_the_cli(sound_export):
    result = CliRunner().invoke(app, ["features", str(sound_export), "--modalities", "text,time", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == 24 and set(summary["modalities"]) == {"text", "time"}
    assert summary["modalities"]["time"]["columns"] == 10 and summary["random_init"] is False
    again = CliRunner().invoke(app, ["features", str(sound_export), "--modalities", "text,time", "--json"])
    assert all(m["cache_hit"] for m in json.loads(again.stdout)["modalities"].values())
    plain = CliRunner().invoke(app, ["features", str(sound_export), "--modalities", "author"])
    assert plain.exit_code == 0 and "columns, computed in" in plain.stdout, plain.output
    assert "; rows with author statistics 0:" in plain.stdout  # a plain export: counts known after every posting


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--modalities", "text,smell"], "unknown modality 'smell'"),
        (["--backbone", "resnet50"], "unknown --backbone 'resnet50'"),
        (["--backbone", "mvit_v2_s"], "mvit_v2_s takes exactly 16 frames of 224 px"),
        (["--weights", "/nowhere/weights.pt"], "--weights must be none, kinetics400 or a weights file"),
    ],
)
def test_bad_options_give_one_clear_line(sound_export, arguments, message):
    result = CliRunner().invoke(app, ["features", str(sound_export), *arguments])
    assert result.exit_code == 1 and message in result.output


def test_a_missing_export_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["features", str(tmp_path / "nope"), "--modalities", "time"])
    assert result.exit_code == 1 and "is not an export directory" in result.output
    with pytest.raises(ConfigError, match="unknown modality"):
        load_features(tmp_path, ["smell"])


def test_a_video_file_missing_from_the_export_is_a_clear_error_not_unknown_audio(sound_export):
    """A moved or half-copied export: the audio table must not take the missing file for an undecodable
    track (a row of NaN, cached), as the video table does not."""
    table = pd.read_parquet(sound_export / "videos.parquet")
    (sound_export / table["file"][3]).unlink()
    with pytest.raises(ConfigError, match=f"video {table['video_id'][3]} has no file at {table['file'][3]}"):
        extract_features(sound_export, FeatureOptions(modalities=("audio",), progress=False))
    assert not (sound_export / "features").exists() or not list((sound_export / "features").glob("audio-*"))


def test_corpus_train_gbdt_takes_the_tables_corpus_features_made(sound_export, computed):
    """`corpus features --text-components 4`, then `corpus train --model gbdt`: the run uses that table
    (train has no feature options of its own) instead of computing the default one."""
    made = extract_features(sound_export, FeatureOptions(modalities=("text",), text_components=4, progress=False))
    run_dir = sound_export / "runs" / "gbdt"
    result = CliRunner().invoke(
        app, ["train", str(sound_export), "--model", "gbdt", "--modalities", "text", "--out", str(run_dir)]
    )
    assert result.exit_code == 0, result.output
    used = json.loads((run_dir / "metrics.json").read_text())["run"]["features"]["text"]
    assert used["cache_file"] == str(made.results[0].cache_file) and computed == [24]
    video = next((sound_export / "videos").glob("*.mp4"))
    scored = CliRunner().invoke(app, ["predict", str(video), "--run", str(run_dir)])
    assert scored.exit_code == 1 and "is a gbdt run" in scored.stderr and "best.pt" not in scored.stderr


def test_corpus_train_refuses_options_its_model_does_not_use(sound_export):
    result = CliRunner().invoke(app, ["train", str(sound_export), "--model", "gbdt", "--frames", "99"])
    assert result.exit_code == 1 and "--frames does not apply to --model gbdt" in result.stderr
    result = CliRunner().invoke(app, ["train", str(sound_export), "--rounds", "10"])
    assert result.exit_code == 1 and "--rounds does not apply to --model r2plus1d" in result.stderr
    result = CliRunner().invoke(app, ["train", str(sound_export), "--modalities", "text"])
    assert result.exit_code == 1 and "--modalities does not apply to --model r2plus1d" in result.stderr
    result = CliRunner().invoke(app, ["train", str(sound_export), "--model", "gbdt", "--resume"])
    assert result.exit_code == 1 and "--resume does not apply to --model gbdt" in result.stderr


@pytest.mark.parametrize("command", ["gbdt into a used --out", "fusion with class options", "ablate into a used --out"])
def test_a_run_refused_is_refused_before_its_feature_tables_are_made(sound_export, tmp_path, command):
    """A used --out, or --pos-weight auto on the continuous label, was refused only once every feature table
    had been made (minutes with the video modality on a CPU)."""
    used = tmp_path / "used"
    used.mkdir()
    (used / "metrics.json").write_text("{}")
    (used / "ablation.json").write_text("{}")
    export = str(sound_export)
    args = {
        "gbdt into a used --out": ["train", export, "--model", "gbdt", "--modalities", "text", "--out", str(used)],
        "fusion with class options": [
            *("train", export, "--model", "fusion", "--modalities", "text", "--label", "continuous"),
            *("--pos-weight", "auto"),
        ],
        "ablate into a used --out": ["ablate", export, "--modalities", "text,time", "--out", str(used)],
    }[command]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    said = " ".join(result.stderr.split())
    assert "pick another --out" in said or "this run's label is continuous" in said, said
    assert not (sound_export / "features").exists()  # no table was made first


@pytest.mark.parametrize(("label", "value"), [("binary", float("nan")), ("binary", 2), ("continuous", float("nan"))])
@pytest.mark.parametrize("model", ["gbdt", "r2plus1d"])
def test_a_table_with_rows_without_a_usable_label_is_refused_in_one_line(sound_export, label, value, model):
    """A label left blank by a hand-edited table was a LightGBM traceback, a baseline's, or a network
    run that "diverged" and blamed the learning rate."""
    table = pd.read_parquet(sound_export / "videos.parquet")
    column = {"binary": "is_viral", "continuous": "virality_score"}[label]
    table[column] = table[column].astype("float64")
    table.loc[[0, 3], column] = value
    table.to_parquet(sound_export / "videos.parquet", index=False)
    extra = ["--modalities", "text"] if model == "gbdt" else ["--frames", "8", "--size", "16"]

    result = CliRunner().invoke(app, ["train", str(sound_export), "--model", model, "--label", label, *extra])

    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    said = " ".join(result.stderr.split())
    ids = ", ".join(table["video_id"].astype(str).iloc[[0, 3]])
    assert f"2 row(s) have no usable {column}" in said and f"video(s) {ids}" in said, said


def test_the_author_table_says_how_many_rows_got_statistics(sound_export):
    """A plain export's counts were all seen after every posting: no row gets author statistics, and the
    stage says so; observed 7 days after posting (``--at-age 7d``), an author's older videos are known."""
    options = FeatureOptions(modalities=("author",), progress=False)
    (plain,) = extract_features(sound_export, options).results
    assert plain.details == {"rows_with_author_statistics": 0}

    table = pd.read_parquet(sound_export / "videos.parquet")
    seen = pd.to_datetime(table["create_time"], unit="s", utc=True) + pd.Timedelta(days=7)
    table.assign(stats_captured_at=seen).to_parquet(sound_export / "videos.parquet", index=False)
    (at_age,) = extract_features(sound_export, options).results
    frame = pd.read_parquet(at_age.cache_file)
    with_statistics = int((frame["author.others_train_videos"] > 0).sum())
    assert 0 < with_statistics < len(frame) and at_age.details == {"rows_with_author_statistics": with_statistics}
    assert json.loads(at_age.cache_file.with_suffix(".json").read_text())["details"] == at_age.details
    (cached,) = extract_features(sound_export, options).results
    assert cached.cache_hit and cached.to_dict()["details"] == at_age.details


def test_a_ctrl_c_in_the_video_embedding_keeps_the_cheap_tables_it_made_first(sound_export, monkeypatch):
    """The video embedding takes minutes, the other tables seconds together: they are made first, so
    a Ctrl-C during it (here, as it starts) leaves them cached for the next run, asked in any order."""
    from tiktok_corpus.features import video

    def interrupted(export, options, advance, parts):
        raise KeyboardInterrupt

    monkeypatch.setattr(video, "compute", interrupted)
    options = FeatureOptions(modalities=("video", *CHEAP), text_components=4, progress=False)
    with pytest.raises(KeyboardInterrupt):
        extract_features(sound_export, options)
    monkeypatch.undo()
    again = extract_features(sound_export, FeatureOptions(modalities=CHEAP, text_components=4, progress=False))
    assert [r.modality for r in again.results] == list(CHEAP) and all(r.cache_hit for r in again.results)


def test_ablate_and_train_read_the_tables_corpus_features_made(sound_export):
    """`corpus ablate` made text tables of its defaults (16 components) beside the export's own (4), and the
    next `corpus train --model gbdt`, reading the newest, silently trained on those."""
    made = CliRunner().invoke(
        app, ["features", str(sound_export), "--modalities", "text,time", "--text-components", "4"]
    )
    assert made.exit_code == 0, made.output
    for video_settings in ([], ["--weights", "none", "--size", "16"]):  # given, they bind the video table alone
        ablated = CliRunner().invoke(
            app, ["ablate", str(sound_export), "--modalities", "text,time", *video_settings, "--json"]
        )
        assert ablated.exit_code == 0, ablated.output
        assert json.loads(ablated.stdout)["features"]["text"]["settings"]["components"] == 4
    trained = CliRunner().invoke(
        app, ["train", str(sound_export), "--model", "gbdt", "--modalities", "text,time", "--json"]
    )
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["run"]["features"]["text"]["settings"]["components"] == 4
    assert len(list((sound_export / "features").glob("text-*.parquet"))) == 1


def test_author_profiles_read_after_posting_are_said_to_echo_the_label(sound_export):
    """A plain export's followers are those last seen, after each video's own success brought some: the
    author modality could be credited with the label's echo without a word."""
    from tiktok_corpus.features.author import profile_read_at_posting

    trained = CliRunner().invoke(app, ["train", str(sound_export), "--model", "gbdt", "--modalities", "author,time"])
    assert trained.exit_code == 0, trained.output
    said = " ".join(trained.stderr.split())
    assert "the author's profile counts (followers, videos, badge) were read after the videos were posted" in said
    at_posting = {"rule": "the author's latest snapshot at or before the row's posting; unknown otherwise"}
    assert profile_read_at_posting({"age_basis": {"at_age_s": 604_800}, "selection": {"author_counts": at_posting}})
    assert not profile_read_at_posting({"age_basis": {"at_age_s": 604_800}, "selection": {}})  # an older version's
    assert not profile_read_at_posting({"age_basis": "latest snapshot"})


def test_authors_on_both_sides_of_a_split_are_said_to_let_the_trees_learn_each_author(sound_export):
    """Followers tell an author apart: where an author's train videos may come after their test ones (a
    split neither by author nor in time), the author modality's score may be each author's later success."""
    from tiktok_corpus.features.author import test_rows_of_train_authors

    trained = CliRunner().invoke(app, ["train", str(sound_export), "--model", "gbdt", "--modalities", "author,time"])
    assert trained.exit_code == 0, trained.output
    table = pd.read_parquet(sound_export / "videos.parquet")
    shared = int(
        table.loc[table["split"] == "test", "author_id"].isin(table.loc[table["split"] == "train", "author_id"]).sum()
    )
    assert shared > 0
    said = " ".join(trained.stderr.split())
    assert f"warning: {shared} test videos have authors with train videos that may be posted after them" in said
    for split in ({"group_by": "author", "order": "random"}, {"group_by": "none", "order": "time"}):
        assert test_rows_of_train_authors({"split": split}, table) is None
    assert test_rows_of_train_authors({"split": {"group_by": "none", "order": "random"}}, table) == shared


def test_a_run_that_learned_this_exports_judged_videos_gives_no_embedding(sound_export, tmp_path):
    """A run's best.pt names the export it learned from: one whose train videos are this export's val or
    test videos (another split of them) would have the trees tuned and judged on videos the network
    learned. A run of this very export learned its train videos only, and is taken."""
    from torchvision.models.video import r2plus1d_18

    backbone = {f"backbone.{name}": value for name, value in r2plus1d_18(weights=None).state_dict().items()}
    resplit = tmp_path / "resplit"
    shutil.copytree(sound_export, resplit)
    table = pd.read_parquet(resplit / "videos.parquet")
    table.assign(split="train").to_parquet(resplit / "videos.parquet", index=False)
    judged = int((table["split"] != "train").sum())
    small = ["--modalities", "video", "--clips", "1", "--frames", "8", "--size", "16"]

    def features_with_a_run_of(export_dir: Path):
        run_dir = tmp_path / f"run-of-{export_dir.name}"
        run_dir.mkdir()
        torch.save({"model": backbone, "config": {"export_dir": str(export_dir)}}, run_dir / "best.pt")
        return CliRunner().invoke(app, ["features", str(sound_export), *small, "--weights", str(run_dir / "best.pt")])

    refused = features_with_a_run_of(resplit)
    assert refused.exit_code == 1
    assert f"was trained on {judged} of this export's val and test videos" in " ".join(refused.output.split())
    gone = features_with_a_run_of(tmp_path / "deleted-export")
    assert gone.exit_code == 1 and "which is not there" in " ".join(gone.output.split())
    taken = features_with_a_run_of(sound_export)
    assert taken.exit_code == 0, taken.output


def test_a_gbdt_run_takes_the_embedding_of_real_weights_the_export_has(sound_export, tmp_path):
    """`corpus features --weights FILE` made the export's video table; `corpus train --model gbdt` without
    --weights bound itself to --weights none, ignored it and computed a random network's embedding."""
    from torchvision.models.video import r2plus1d_18

    weights = tmp_path / "backbone.pt"
    torch.save(r2plus1d_18(weights=None).state_dict(), weights)  # stands for trained weights: not "none"
    small = ["--clips", "1", "--frames", "8", "--size", "16"]
    for given in (["--weights", str(weights)], ["--weights", "none"]):  # the random one the newest: not taken
        made = CliRunner().invoke(app, ["features", str(sound_export), "--modalities", "video", *small, *given])
        assert made.exit_code == 0, made.output
    trained = CliRunner().invoke(
        app, ["train", str(sound_export), "--model", "gbdt", "--modalities", "video,time", "--json"]
    )
    assert trained.exit_code == 0, trained.output
    video = json.loads(trained.stdout)["run"]["features"]["video"]
    assert video["random_init"] is False and video["settings"]["weights"].startswith("sha256:")
    assert "random network" not in trained.stderr
    pinned = CliRunner().invoke(
        app,
        ["train", str(sound_export), "--model", "gbdt", "--modalities", "video,time", "--weights", "none", "--json"],
    )
    assert json.loads(pinned.stdout)["run"]["features"]["video"]["random_init"] is True  # asked for, it is taken
    assert len(list((sound_export / "features").glob("video-*.parquet"))) == 2


@pytest.mark.parametrize(
    "left",
    [
        pytest.param(lambda path: np.save(path.with_name("rows-0-0.npy"), np.zeros((0, 3))), id="an empty block"),
        pytest.param(lambda path: path.with_name("rows-0-2.npy").write_bytes(b""), id="an empty file"),
        pytest.param(lambda path: np.save(path.with_name("rows-0-2.npy"), np.array([["a"] * 3] * 2)), id="text"),
    ],
)
def test_rows_a_run_left_that_cannot_be_its_own_are_made_again(tmp_path, left):
    """An empty block held the resume in a loop for ever, an empty file raised on every run, and rows of
    text were taken as the table's."""
    from tiktok_corpus.features.cache import CacheEntry, TableParts

    entry = CacheEntry("video", {"table_sha256": "0" * 64})
    folder = entry.parts_dir(tmp_path)
    folder.mkdir(parents=True)
    left(folder / "placeholder.npy")
    parts = TableParts(tmp_path, entry)
    assert parts.done(3).shape == (0, 3) and parts.saved == 0
