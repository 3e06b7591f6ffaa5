"""gbdt runs and the ablation on a planted signal, without video: an export table and a feature table.

600 rows (360 train / 80 val / 160 test). ``author.x`` is the label's own latent plus noise (its AUC
against the label is about 0.8 on 160 test rows, whose 95% interval is about +-0.07), ``time.*``
columns are independent of the label: so the signal modality must beat the baselines by the verdict's
0.05 margin with p < 0.05, and the noise modality must not, with room on both sides.
"""

from __future__ import annotations

import errno
import io
import json
import warnings
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from rich.console import Console

from tiktok_corpus.cli.display import ablation_table
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.export.runs import latest_run
from tiktok_corpus.report.model import model_section, model_specs, read_run
from tiktok_corpus.train import TrainConfig, ablation
from tiktok_corpus.train.ablation import ablate, ablation_lines, best_baseline, draw_importances
from tiktok_corpus.train.config import new_run_name
from tiktok_corpus.train.export_table import load_export
from tiktok_corpus.train.fusion import side_inputs
from tiktok_corpus.train.gbdt import fit_gbdt, train_gbdt

N_ROWS = 600
SPLITS = ["train"] * 360 + ["val"] * 80 + ["test"] * 160


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """An export whose label follows ``author.x``, and the feature table (indexed like its rows)."""
    rng = np.random.default_rng(7)
    latent = rng.standard_normal(N_ROWS)
    score = 1 / (1 + np.exp(-(latent + 0.8 * rng.standard_normal(N_ROWS))))
    table = pd.DataFrame(
        {
            "video_id": [str(7_000_000_000_000_000_000 + i) for i in range(N_ROWS)],
            "file": [f"videos/{i}.mp4" for i in range(N_ROWS)],
            "desc": "a caption",
            "hashtags": [["fyp"]] * N_ROWS,
            "follower_count": rng.integers(100, 10_000, N_ROWS),
            "duration_s": rng.uniform(5, 60, N_ROWS),
            "virality_score": score,
            "is_viral": (score > np.median(score)).astype(int),
            "split": SPLITS,
        }
    )
    root = tmp_path_factory.mktemp("planted")
    table.to_parquet(root / "videos.parquet", index=False)
    (root / "manifest.json").write_text(json.dumps({"name": "planted", "version": 1, "label": "binary"}))
    features = pd.DataFrame(
        {
            "author.x": latent + 0.3 * rng.standard_normal(N_ROWS),
            "time.a": rng.standard_normal(N_ROWS),
            "time.b": rng.standard_normal(N_ROWS),
        },
        index=table["video_id"],
    )
    return root, features


def _config(root, tmp_path, **options) -> TrainConfig:
    return TrainConfig(root, model="gbdt", out=tmp_path / "run", progress=False, **options)


def _export_copy(root, tmp_path):
    """The planted export's files in a folder of the test's own (for what writes runs beside them)."""
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    for name in ("videos.parquet", "manifest.json"):
        (export_dir / name).write_bytes((root / name).read_bytes())
    return export_dir


def test_a_gbdt_run_writes_the_same_report_shape_as_the_network(planted, tmp_path):
    root, features = planted
    run_dir = train_gbdt(
        _config(root, tmp_path, modalities="author,time"), features, {"author": {"random_init": False}}
    )

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {"task", "main_metric", "model", "baselines", "collapsed", "beats_baselines", "verdict"} <= set(metrics)
    assert set(metrics["baselines"]) == {"majority", "metadata"}
    low, high = metrics["model"]["roc_auc_ci"]
    assert low < metrics["model"]["roc_auc"] < high
    assert metrics["beats_baselines"], metrics["verdict"]
    assert metrics["run"]["model"] == "gbdt" and metrics["run"]["best_iteration"] >= 1
    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    assert sorted(predictions["split"].unique()) == ["test", "val"] and len(predictions) == 240
    assert {"model.txt", "importances.csv", "history.csv", "loss_curves.png", "confusion_matrix.png"} <= {
        p.name for p in run_dir.iterdir()
    }
    curves_spec = model_specs(*read_run(run_dir))[0]  # the report's curves: its history counts rounds
    curves = Figure()
    curves_spec.draw(curves)
    assert curves.axes[0].get_xlabel() == "round" and curves.axes[0].lines


def test_noise_alone_makes_no_claim(planted, tmp_path):
    root, features = planted
    run_dir = train_gbdt(_config(root, tmp_path), features[["time.a", "time.b"]], {})

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert not metrics["beats_baselines"], metrics["verdict"]


@pytest.mark.parametrize("label", ["binary", "continuous"])
def test_the_chosen_round_is_the_one_validation_liked_best(planted, label):
    """On noise the val loss bottoms out early: that round is the model's, for the classifier too (a
    train eval set, not recognised as the train data, once made it pick the last round)."""
    root, features = planted
    config = TrainConfig(root, model="gbdt", label=label, rounds=40, progress=False)
    fit = fit_gbdt(features[["time.a", "time.b"]], load_export(root, label=label), config)

    assert len(fit.curve) == 40 and fit.best_iteration < 40
    assert fit.best_iteration == fit.curve["val_loss"].idxmin() + 1
    assert fit.model.best_iteration_ == fit.best_iteration
    assert fit.curve["train_loss"].iloc[-1] < fit.curve["train_loss"].iloc[0]  # the train rows' own loss


def test_a_gbdt_run_stopped_before_its_last_file_is_not_taken_for_finished(planted, tmp_path, predictions_unwritable):
    """metrics.json is written last: a run stopped before it is no run for the report, and the same
    command run again finishes it in the same folder."""
    root, features = planted
    export_dir = _export_copy(root, tmp_path)
    runs = export_dir / "runs"
    finished = train_gbdt(TrainConfig(export_dir, model="gbdt", out=runs / "a", progress=False), features, {})
    config = TrainConfig(export_dir, model="gbdt", out=runs / "b", progress=False)
    with predictions_unwritable(), pytest.raises(OSError, match="No space left"):
        train_gbdt(config, features, {})

    stopped = runs / "b"
    assert (stopped / "config.json").is_file() and not (stopped / "metrics.json").exists()
    assert latest_run(export_dir) == finished
    assert train_gbdt(config, features, {}) == stopped
    assert latest_run(export_dir) == stopped and (stopped / "predictions.parquet").is_file()
    assert not list(stopped.glob("*.part"))
    with pytest.raises(ConfigError, match="already holds a finished run; pick another --out"):
        train_gbdt(config, features, {})


def test_an_ablation_stopped_before_its_json_is_not_taken_for_finished(planted, tmp_path, monkeypatch):
    root, features = planted
    config = TrainConfig(root, model="gbdt", modalities="author,time", progress=False)

    def no_space(result, path):
        raise OSError(errno.ENOSPC, "No space left on device (simulated)", str(path))

    monkeypatch.setattr(ablation, "ablation_figure", no_space)
    with pytest.raises(OSError, match="No space left"):
        ablate(config, features, {}, out=tmp_path / "ablation")
    assert not (tmp_path / "ablation" / "ablation.json").exists()


def test_a_continuous_label_is_learned_as_regression(planted, tmp_path):
    root, features = planted
    run_dir = train_gbdt(_config(root, tmp_path, label="continuous"), features, {})

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "continuous" and metrics["main_metric"] == "rmse"
    assert metrics["model"]["spearman"] > 0.4
    assert set(metrics["baselines"]) == {"mean", "metadata"}


def test_the_ablation_says_which_modality_carries_the_label(planted, tmp_path):
    root, features = planted
    config = TrainConfig(root, model="gbdt", modalities="author,time", progress=False)
    seen = []

    out = ablate(config, features, {}, out=tmp_path / "ablation", oracles={"author": 0.8}, on_line=seen.append)

    result = json.loads((out / "ablation.json").read_text())
    lines = {row["name"]: row for row in result["rows"]}
    assert list(lines) == ["author", "time", "all"] == [row["name"] for row in seen]
    assert lines["author"]["beats_baselines"] and not lines["time"]["beats_baselines"]
    assert lines["author"]["paired_p_value"] < 0.05 < lines["time"]["paired_p_value"]
    drops = result["importances"]["permutation_by_modality"]
    gains = result["importances"]["gain_by_modality"]
    assert drops["author"] > 0.1 > abs(drops["time"]) and gains["author"] > gains["time"]
    assert next(iter(result["importances"]["gain_top_features"])) == "author.x"
    assert result["oracles"] == {"author": 0.8} and (out / "ablation.png").stat().st_size > 0
    # Each drop has its interval over resamples of the test rows: the signal's is clear of zero, the
    # noise's is not; the all-modality model beats the baselines, so they are credible.
    intervals = result["importances"]["permutation_by_modality_ci"]
    assert 0 < intervals["author"][0] < drops["author"] < intervals["author"][1]
    assert intervals["time"][0] < 0 < intervals["time"][1]
    (low, high) = result["importances"]["permutation_top_features_ci"]["author.x"]
    assert 0 < low < result["importances"]["permutation_top_features"]["author.x"] < high
    assert result["importances"]["model"] == "all" and result["importances"]["credible"] is True
    table = _rendered(ablation_table(result))
    assert f"{drops['author']:+.3f} ({intervals['author'][0]:.3f}-{intervals['author'][1]:.3f})" in table


def test_importances_of_a_model_that_beats_nothing_are_not_ranked(planted, tmp_path):
    """Noise in place of the signal: whatever the all-modality model leaned on, it does not beat the
    baselines, so ablation.json marks its importances not credible, the figure ranks none and the
    report says why."""
    root, features = planted
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    for name in ("videos.parquet", "manifest.json"):
        (export_dir / name).write_bytes((root / name).read_bytes())
    noise = features.assign(**{"author.x": np.random.default_rng(1).standard_normal(len(features))})
    config = TrainConfig(export_dir, model="gbdt", modalities="author,time", progress=False)

    out = ablate(config, noise, {}, out=export_dir / "ablations" / "noise")

    result = json.loads((out / "ablation.json").read_text())
    lines = {row["name"]: row for row in result["rows"]}
    assert not lines["all"]["beats_baselines"], lines["all"]["verdict"]
    importances = result["importances"]
    assert importances["credible"] is False and importances["credibility"].startswith("not credible: the all model")
    figure = Figure()
    draw_importances(figure.subplots(), result)
    (axis,) = figure.axes
    assert not axis.patches and "not credible" in " ".join(text.get_text() for text in axis.texts)
    page = model_section(None, export_dir, tmp_path, lambda specs: "")
    assert "Importances: not credible: the all model does not beat the baselines" in page
    assert "no importance ranked" in page
    table = _rendered(ablation_table(result))
    assert "permutation drops: not credible: the all model" in table
    assert f"{importances['permutation_by_modality']['author']:+.3f}" not in table


def _rendered(table) -> str:
    console = Console(record=True, width=250, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_the_figures_best_baseline_is_the_lowest_rmse_or_the_highest_auc():
    baselines = {"mean": 0.30, "metadata": 0.21, "early_views": None}
    assert best_baseline({"main_metric": "rmse", "baselines": baselines}) == 0.21
    assert best_baseline({"main_metric": "roc_auc", "baselines": {"majority": 0.5, "metadata": 0.62}}) == 0.62


def test_ablation_lines_are_each_alone_all_but_one_and_all():
    lines = ablation_lines(("video", "audio", "text"))
    assert [line.name for line in lines] == [
        "video",
        "audio",
        "text",
        "all but video",
        "all but audio",
        "all but text",
        "all",
    ]
    assert [line.name for line in ablation_lines(("audio",))] == ["audio"]


def test_fusion_side_inputs_are_scaled_on_train_only(planted):
    from tiktok_corpus.train.export_table import load_export

    root, features = planted
    export = load_export(root)
    before = side_inputs(export, features, {})
    shifted = features.copy()
    held_out = (export.table["split"] != "train").to_numpy()
    shifted.loc[held_out, "time.a"] += 1000.0  # val and test values must not move the scaling

    after = side_inputs(export, shifted, {})

    train = before.vectors["train"]
    assert np.allclose(train.mean(axis=0), 0, atol=1e-5) and np.allclose(train.std(axis=0), 1, atol=1e-3)
    assert np.array_equal(after.vectors["train"], train)
    assert np.array_equal(after.vectors["test"][:, 0], before.vectors["test"][:, 0])  # author.x column


def test_fusion_side_inputs_that_never_vary_on_train_are_refused(planted):
    """An export without audio tracks gives an audio table of NaN and a constant: width 0 built the plain
    network and recorded it as fusion (with numpy's "mean of empty slice" on the console)."""
    root, features = planted
    export = load_export(root)
    flat = pd.DataFrame({"audio.has_audio": 0.0, "audio.loudness": np.nan}, index=features.index)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match="--model fusion: no column of audio varies on the train split"):
            side_inputs(export, flat, {})


def test_ablations_started_in_one_second_keep_a_folder_each_and_none_is_overwritten(planted, tmp_path):
    root, features = planted
    export_dir = _export_copy(root, tmp_path)
    config = TrainConfig(export_dir, model="gbdt", modalities="author,time", progress=False)

    first, second = ablate(config, features, {}), ablate(config, features, {})

    assert first != second and first.parent == second.parent == export_dir / "ablations"
    written = (first / "ablation.json").read_bytes()
    with pytest.raises(ConfigError, match="already holds an ablation; pick another --out"):
        ablate(config, features, {}, out=first)
    assert (first / "ablation.json").read_bytes() == written
    assert new_run_name(datetime(2026, 12, 6, 3, 19, 0, 12, tzinfo=UTC)) == "20261206-031900-000012"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "forest"}, "--model must be one of"),
        ({"modalities": "video,smell"}, "unknown modality 'smell'"),
        ({"modalities": ""}, "none given"),
        ({"label": "ordinal"}, "--label must be"),
        ({"boost_lr": 0}, "--boost-lr"),
    ],
)
def test_bad_options_are_clear_errors(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(tmp_path, **options)


def test_corpus_ablate_refuses_bad_feature_settings_in_one_line(planted):
    from typer.testing import CliRunner

    from tiktok_corpus.cli import app

    root, _ = planted
    result = CliRunner().invoke(app, ["ablate", str(root), "--size", "15"])

    assert result.exit_code != 0 and "--size must be even" in result.output
    assert not (root / "ablations").exists()
