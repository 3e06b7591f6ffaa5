"""The early-views baseline: on an export labelled at a fixed age, early plays predict the label.

The exports are hand-made tables in the export format (no videos: the baseline never reads pixels),
and the "model" scores are given, so these tests cost milliseconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tiktok_corpus.train.baseline_features import growth_features, metadata_features
from tiktok_corpus.train.export_table import load_export
from tiktok_corpus.train.metrics import EARLY_VIEWS, evaluate, main_metric_line

from .conftest import write_export

SPLITS = ["train"] * 80 + ["val"] * 40 + ["test"] * 40
GROWTH = ("play_count_at_1h", "play_count_at_6h", "play_count_at_1d", "play_growth_1h_6h", "play_growth_6h_1d")


def _table(with_growth: bool) -> pd.DataFrame:
    """Plays at 1d decide ``is_viral`` (top half) and ``virality_score``; metadata is noise.

    Some early counts are missing (a video first sighted late), as in a real ``--at-age`` export.
    """
    rng = np.random.default_rng(7)
    n = len(SPLITS)
    at_1h = rng.lognormal(5, 1.5, n)
    at_6h = at_1h * rng.lognormal(1, 0.5, n)
    at_1d = at_6h * rng.lognormal(1, 0.5, n)
    score = (np.log1p(at_1d) - np.log1p(at_1d).min()) / np.ptp(np.log1p(at_1d))
    table = pd.DataFrame(
        {
            "video_id": [str(9000 + i) for i in range(n)],
            "file": [f"videos/{9000 + i}.mp4" for i in range(n)],
            "desc": ["#x " + "y" * int(k) for k in rng.integers(0, 60, n)],
            "hashtags": [["x"] * int(k) for k in rng.integers(0, 4, n)],
            "follower_count": rng.integers(10, 100_000, n),
            "duration_s": rng.uniform(5, 60, n),
            "virality_score": score,
            "is_viral": (at_1d > np.median(at_1d)).astype(int),
            "split": SPLITS,
        }
    )
    if with_growth:
        missing_1h = rng.random(n) < 0.2
        table["play_count_at_1h"] = pd.array(np.where(missing_1h, np.nan, at_1h), dtype="Float64")
        table["play_count_at_6h"] = pd.array(at_6h, dtype="Float64")
        table["play_count_at_1d"] = pd.array(at_1d, dtype="Float64")
        table["play_growth_1h_6h"] = (np.log1p(table["play_count_at_6h"]) - np.log1p(table["play_count_at_1h"])) / (
            5 / 24
        )
        table["play_growth_6h_1d"] = (np.log1p(table["play_count_at_1d"]) - np.log1p(table["play_count_at_6h"])) / 0.75
    return table


def _metrics(tmp_path, *, with_growth: bool, label: str = "binary", model_quality: float = 0.3) -> dict:
    """Evaluate a "model" whose scores are the label blurred by noise (``model_quality`` of signal)."""
    tmp_path.mkdir(exist_ok=True)
    export = load_export(write_export(tmp_path, _table(with_growth), label=label))
    target = export.target_column
    rng = np.random.default_rng(3)
    scored = {}
    for name in ("val", "test"):
        y = export.split(name)[target].to_numpy(float)
        scored[name] = np.clip(model_quality * y + (1 - model_quality) * rng.random(len(y)), 0, 1)
    return evaluate(
        export.task,
        y_val=export.split("val")[target],
        scores_val=scored["val"],
        y_test=export.split("test")[target],
        scores_test=scored["test"],
        train_y=export.split("train")[target],
        features={name: metadata_features(export.split(name)) for name in ("train", "val", "test")},
        growth=growth_features(export),
    )


def test_early_views_predict_the_label_and_the_verdict_counts_them(tmp_path):
    metrics = _metrics(tmp_path, with_growth=True)
    early, model = metrics["baselines"][EARLY_VIEWS], metrics["model"]

    assert list(metrics["baselines"]) == ["majority", "metadata", EARLY_VIEWS]
    assert early["roc_auc"] > 0.95 and early["p_value"] < 1e-6
    assert early["inputs"] == list(GROWTH)
    # The model clears the metadata baseline by a wide margin but not the early views: no claim.
    assert model["roc_auc"] > metrics["baselines"]["metadata"]["roc_auc"] + 0.1
    assert model["roc_auc"] < early["roc_auc"]
    assert metrics["beats_baselines"] is False
    assert "margin too small" in metrics["verdict"] and f"best baseline ({EARLY_VIEWS})" in metrics["verdict"]
    assert f"{EARLY_VIEWS} {early['roc_auc']:.3f}" in main_metric_line(metrics)


def test_without_growth_columns_the_report_is_unchanged(tmp_path):
    with_growth = _metrics(tmp_path / "growth", with_growth=True)
    without = _metrics(tmp_path / "plain", with_growth=False)

    assert list(without["baselines"]) == ["majority", "metadata"]
    assert growth_features(load_export(tmp_path / "plain")) is None
    # The same model now beats every baseline; the other baselines do not move with growth columns.
    assert without["beats_baselines"] is True and "beats every baseline" in without["verdict"]
    for name in ("majority", "metadata"):
        assert without["baselines"][name] == with_growth["baselines"][name]
    assert main_metric_line(without).startswith("test roc_auc: model ")
    assert EARLY_VIEWS not in main_metric_line(without)


def test_early_views_regression_on_the_continuous_label(tmp_path):
    metrics = _metrics(tmp_path, with_growth=True, label="continuous", model_quality=0.9)
    early = metrics["baselines"][EARLY_VIEWS]

    assert early["spearman"] > 0.95 and early["rmse"] < metrics["baselines"]["metadata"]["rmse"] / 2
    assert metrics["beats_baselines"] is False and f"({EARLY_VIEWS})" in metrics["verdict"]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("unseen_in", [("test",), ("train", "val", "test")], ids=["test", "every-split"])
def test_missing_early_counts_are_imputed_from_the_train_split(tmp_path, unseen_in):
    table = _table(with_growth=True)
    table.loc[table["split"].isin(unseen_in), "play_count_at_1h"] = pd.NA  # never seen at 1h there
    export = load_export(write_export(tmp_path, table))
    growth = growth_features(export)

    assert growth is not None and all(growth[name]["play_count_at_1h"].isna().all() for name in unseen_in)
    assert growth["train"]["play_count_at_1d"].to_numpy() == pytest.approx(
        np.log1p(table.loc[table["split"] == "train", "play_count_at_1d"].to_numpy(float))
    )
    metrics = evaluate(
        "binary",
        y_val=export.split("val")["is_viral"],
        scores_val=np.full(40, 0.5),
        y_test=export.split("test")["is_viral"],
        scores_test=np.full(40, 0.5),
        train_y=export.split("train")["is_viral"],
        features={name: metadata_features(export.split(name)) for name in ("train", "val", "test")},
        growth=growth,
    )
    assert metrics["baselines"][EARLY_VIEWS]["roc_auc"] > 0.9
