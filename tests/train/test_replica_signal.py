"""Issue #8 acceptance, end to end on the replica: the trainer learns from pixels, and claims nothing
when pixels carry no signal.

Both exports come from the real stages (replica site, Chromium crawl, downloads, ffprobe validation,
stratified binary export). Training is the paper's model and loss on CPU-sized inputs; see
:data:`TRAINING` for what differs from the paper's defaults and why.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from tiktok_corpus.train import TrainConfig, train
from tiktok_corpus.train.clips import read_clip
from tiktok_corpus.train.export_table import load_export
from tiktok_corpus.train.proxies import build_cache

pytestmark = pytest.mark.slow(115)

# 8 frames of 16x16 keep R(2+1)D-18 at ~0.1 s per clip on two shared cores; the replica's signal is
# the frames' mean brightness, which survives any resize. Adam 1e-3, batch 8 and pos_weight auto are
# the demo's (measured: train, val and test ROC-AUC reach what brightness alone gives within two to
# four epochs; batch 16 or 32 and lr 3e-4 or 1e-4 did no better). Four epochs without an LR step
# (measured: test ROC-AUC 0.798 at epoch 4, brightness alone 0.788; six took 40 s more for no more).
TRAINING = dict(
    frames=8,
    size=16,
    batch_size=8,
    lr=1e-3,
    epochs=4,
    step_size=7,
    patience=3,
    pos_weight="auto",
    device="cpu",
    seed=0,
    progress=False,
)


def _run(export_dir: Path, out: Path) -> tuple[dict, pd.DataFrame]:
    run_dir = train(TrainConfig(export_dir, out=out, **TRAINING))
    return (json.loads((run_dir / "metrics.json").read_text()), pd.read_parquet(run_dir / "predictions.parquet"))


def _brightness(export_dir: Path, video_ids) -> np.ndarray:
    """Mean luma of the clip the model is scored on: what a model that learns from pixels must track."""
    proxies = build_cache(load_export(export_dir), TRAINING["size"], progress=False)
    values = []
    for video_id in video_ids:
        clip, valid = read_clip(proxies[video_id], TRAINING["frames"], start=-1)
        rgb = clip[:, :valid].float()
        values.append(float((0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).mean()))
    return np.array(values)


def test_signal_one_model_learns_brightness_and_beats_baselines(replica_signal_export, tmp_path):
    metrics, predictions = _run(replica_signal_export, tmp_path / "signal1")

    test = predictions[predictions["split"] == "test"]
    luma = _brightness(replica_signal_export, test["video_id"])
    luma_auc = roc_auc_score(test["target"], luma)  # the ceiling: brightness is all the pixels say
    rank_corr = stats.spearmanr(test["score"], luma).statistic
    context = (
        f"{metrics['verdict']} (the model's interval {metrics['model']['roc_auc_ci']}; brightness alone: test "
        f"ROC-AUC {luma_auc:.3f}; "
        f"Spearman(score, brightness) {rank_corr:.3f})"
    )
    assert luma_auc >= 0.75, context  # the replica's pixels carry the label
    # The model takes nearly all of it: brightness's AUC lies within the model's 95% interval, or below it.
    # A fixed distance failed on machines whose float kernels train another network from the same seed
    # (0.747, then 0.726, beside brightness's 0.788: with about 90 test rows, a standard error near 0.05).
    assert metrics["model"]["roc_auc_ci"][1] >= luma_auc, context
    assert rank_corr >= 0.7, context  # the scores follow brightness, not something else
    assert metrics["collapsed"] is False and metrics["beats_baselines"] is True, context
    assert metrics["model"]["roc_auc"] >= metrics["baselines"]["metadata"]["roc_auc"] + 0.05, context


def test_signal_zero_report_claims_nothing(replica_noise_export, tmp_path):
    metrics, _ = _run(replica_noise_export, tmp_path / "signal0")

    assert metrics["beats_baselines"] is False, metrics["verdict"]
    assert "does not beat" in metrics["verdict"] or "collapsed" in metrics["verdict"]
