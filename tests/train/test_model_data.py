"""The model's exact shape, clip sampling, the proxy cache and the honesty of the metrics."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score, roc_auc_score
from torch import nn

from tiktok_corpus.errors import ConfigError, MediaError
from tiktok_corpus.speed import speed_line, training_speed
from tiktok_corpus.train import TrainConfig, loop
from tiktok_corpus.train.checkpoints import (
    new_run_state,
    read_checkpoint,
    restore_run,
    resumed_config,
    save_checkpoint,
)
from tiktok_corpus.train.clips import KINETICS_MEAN, KINETICS_STD, EpochSampler, clip_starts, normalize_clips, read_clip
from tiktok_corpus.train.export_table import load_export
from tiktok_corpus.train.loop import rank_epoch_seed
from tiktok_corpus.train.metrics import evaluate, ranking_quality, tune_threshold
from tiktok_corpus.train.model import build_model, downloading_weights
from tiktok_corpus.train.proxies import build_cache
from tiktok_corpus.train.resampling import paired_comparison


def test_model_is_r2plus1d_18_with_the_papers_head():
    model = build_model("none").eval()
    head = [
        (
            type(layer),
            getattr(layer, "in_features", None),
            getattr(layer, "out_features", None),
            getattr(layer, "p", None),
        )
        for layer in model.head
    ]
    assert head == [
        (nn.Linear, 512, 512, None),
        (nn.ReLU, None, None, None),
        (nn.Dropout, None, None, 0.5),
        (nn.Linear, 512, 128, None),
        (nn.ReLU, None, None, None),
        (nn.Dropout, None, None, 0.5),
        (nn.Linear, 128, 1, None),
    ]
    assert type(model.backbone).__name__ == "VideoResNet" and len(model.backbone.layer4) == 2
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 8, 32, 32))  # (B, C, T, H, W)
    assert logits.shape == (2,)


@pytest.mark.parametrize("side_features", [0, 3], ids=["paper", "fusion"])
def test_a_frozen_backbone_keeps_its_weights_and_its_batchnorm_statistics(side_features):
    """--freeze-backbone trains only the head: in train mode the backbone's BatchNorm layers would still
    move their running statistics with every batch, and the "frozen" Kinetics backbone drift."""
    model = build_model("none", side_features)
    model.freeze_backbone()
    model.train()
    frozen = {name: value.clone() for name, value in model.backbone.state_dict().items() if "fc." not in name}
    clips = torch.randn(2, 3, 4, 16, 16)
    model(clips, torch.randn(2, side_features)) if side_features else model(clips)
    assert all(torch.equal(value, model.backbone.state_dict()[name]) for name, value in frozen.items())
    trained = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert trained and all(name.startswith(("backbone.fc.", "head.")) for name in trained)
    assert model.head.training, "the head still trains (its dropout on)"


def test_clips_are_padded_in_time_and_kinetics_normalised():
    clips = torch.full((1, 3, 4, 2, 2), 255, dtype=torch.uint8)
    normed = normalize_clips(clips, torch.tensor([3]))
    expected = [(1 - m) / s for m, s in zip(KINETICS_MEAN, KINETICS_STD)]
    assert torch.allclose(normed[0, :, 0, 0, 0], torch.tensor(expected))
    assert torch.count_nonzero(normed[:, :, 3]) == 0  # the padded frame is zero after normalisation
    assert clip_starts(100, 32, 1) == [34] and clip_starts(10, 32, 1) == [0]
    assert clip_starts(100, 32, 3) == [0, 34, 68]


def test_proxy_cache_is_built_once_and_reads_padded_clips(signal_export, tmp_path):
    export = load_export(signal_export)
    cache = tmp_path / "cache"
    proxies = build_cache(export, 16, cache, progress=False)
    assert len(proxies) == len(export.table) and all(p.is_file() for p in proxies.values())
    stamps = {p: p.stat().st_mtime_ns for p in proxies.values()}
    assert build_cache(export, 16, cache, progress=False) == proxies
    assert {p: p.stat().st_mtime_ns for p in proxies.values()} == stamps  # reused, not rebuilt
    shortest = export.table.sort_values("frame_count").iloc[0]
    clip, valid = read_clip(proxies[shortest.video_id], 32)
    assert clip.shape == (3, 32, 16, 16) and clip.dtype == torch.uint8
    assert 0 < valid < 32 and clip[:, valid:].count_nonzero() == 0 and clip[:, :valid].count_nonzero() > 0
    first, _ = read_clip(proxies[shortest.video_id], 4, seed=(0, 1, 2))
    again, _ = read_clip(proxies[shortest.video_id], 4, seed=(0, 1, 2))
    assert torch.equal(first, again)


def test_byte_identical_originals_share_one_proxy_built_once(signal_export, tmp_path):
    """Reposts: rows whose files hash the same map to one proxy, encoded by one job (two encoders on
    the same ``.part`` file raced, and the loser reported "no video frames")."""
    export = load_export(signal_export)
    reposts = export.table.head(1).loc[[export.table.index[0]] * 6].reset_index(drop=True)
    reposts["video_id"] = [f"71000000000000000{i:02d}" for i in range(6)]
    proxies = build_cache(export.__class__(export.root, export.manifest, reposts), 16, tmp_path / "c", workers=6)
    assert len(proxies) == 6 and len(set(proxies.values())) == 1
    assert [p.name for p in (tmp_path / "c").rglob("*") if p.is_file()] == [next(iter(proxies.values())).name]


def test_undecodable_original_is_a_clear_error(signal_export, tmp_path):
    export = load_export(signal_export)
    broken = export.table.head(2).copy()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    broken.loc[broken.index[0], ["file", "sha256"]] = [str(bad), "0" * 64]
    with pytest.raises(MediaError, match="1 video"):
        build_cache(export.__class__(export.root, export.manifest, broken), 16, tmp_path / "c", progress=False)
    with pytest.raises(ConfigError, match="manifest"):
        load_export(tmp_path)


def test_the_learning_rate_scales_with_the_global_batch_from_the_papers(tmp_path):
    def lr(batch_size: int, scaling: str, world_size: int = 1) -> float:
        return TrainConfig(tmp_path, batch_size=batch_size, lr=1e-3, lr_scaling=scaling).scaled_lr(world_size)

    assert lr(64, "none") == 1e-3 and lr(8, "linear") == 1e-3 and lr(8, "sqrt") == 1e-3  # the paper's batch
    assert lr(64, "linear") == pytest.approx(8e-3) and lr(32, "sqrt") == pytest.approx(2e-3)
    assert lr(16, "linear", world_size=2) == pytest.approx(4e-3)  # under torchrun: per process x processes
    with pytest.raises(ConfigError, match="--lr-scaling must be one of none, linear, sqrt"):
        TrainConfig(tmp_path, lr_scaling="cubic")


def test_only_a_compiled_run_skips_the_short_last_training_batch(tmp_path):
    """torch.compile recompiles for a short last batch (a new shape); the paper's uncompiled loop and
    evaluation still see every clip."""
    rows = pd.DataFrame({"video_id": [str(i) for i in range(11)], "is_viral": [i % 2 for i in range(11)]})
    proxies = {video: tmp_path / f"{video}.mp4" for video in rows["video_id"]}

    def batches(*, compile: bool, train: bool, batch_size: int = 4) -> int:
        config = TrainConfig(tmp_path, batch_size=batch_size, compile=compile)
        loader = loop._loader(config, torch.device("cpu"), loop._Dist(), rows, proxies, "is_viral", None, train=train)
        return len(loader)

    assert batches(compile=False, train=True) == 3  # 4 + 4 + 3 clips
    assert batches(compile=True, train=True) == 2
    assert batches(compile=True, train=False) == batches(compile=False, train=False) == 3
    assert batches(compile=True, train=True, batch_size=16) == 1  # a split shorter than a batch still trains


def test_a_resumed_run_uses_the_fused_adam_of_its_device_not_the_saved_runs(tmp_path):
    """An earlier version's CPU run saved its Adam groups unfused (fused=None); resumed, Adam is this
    version's fused one for the CPU, its progress restored."""
    cpu = torch.device("cpu")
    model = nn.Linear(4, 1)
    saved = torch.optim.Adam(model.parameters(), lr=1e-3)  # as an earlier version built it on the CPU
    model(torch.randn(2, 4)).sum().backward()
    saved.step()
    scheduler = torch.optim.lr_scheduler.StepLR(saved, step_size=7)
    save_checkpoint(tmp_path, model, saved, scheduler, TrainConfig(tmp_path), new_run_state(), best=False, device=cpu)
    checkpoint = read_checkpoint(tmp_path / "last.pt")
    assert all(group["fused"] is None for group in checkpoint["optimizer"]["param_groups"])

    resumed = loop.adam(model.parameters(), 1e-3, cpu)
    restore_run(checkpoint, model, resumed, torch.optim.lr_scheduler.StepLR(resumed, step_size=7), None, cpu)
    assert [group["fused"] for group in resumed.param_groups] == [True]
    model(torch.randn(2, 4)).sum().backward()
    resumed.step()
    assert resumed.state_dict()["state"][0]["step"] == 2


def test_a_finished_run_resumed_to_train_no_epoch_is_refused_saying_what_would_go_on(signal_export, tmp_path):
    """A run that stopped early, resumed with more --epochs, trained nothing (its patience still held),
    wrote the same report again and exited 0 as if it had gone on."""
    cpu = torch.device("cpu")
    run_dir = tmp_path / "run"
    model = nn.Linear(4, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7)
    history = [{"epoch": e, "val_loss": 0.5} for e in (1, 2)]

    def finished(**state) -> None:
        config = TrainConfig(signal_export, epochs=6, patience=1, out=run_dir)
        progress = new_run_state() | {"epoch": 2, "history": history, "best_epoch": 1} | state
        save_checkpoint(run_dir, model, optimizer, scheduler, config, progress, best=False, device=cpu)
        (run_dir / "metrics.json").write_text("{}")

    def resume(**given):
        options = dict(epochs=6, patience=1) | given
        config = TrainConfig(signal_export, resume=True, out=run_dir, given_options=frozenset(given), **options)
        return resumed_config(config, run_dir)[0]

    run_dir.mkdir()
    finished(stale_epochs=1)  # stopped early at epoch 2 of 6, patience 1
    with pytest.raises(ConfigError, match=r"stopped early at epoch 2, .* \(--patience 1\); give --patience above 1"):
        resume(epochs=12)
    assert (resume(epochs=12, patience=3).epochs, resume(patience=2).patience) == (12, 2)
    finished(stale_epochs=0, epoch=6)
    with pytest.raises(ConfigError, match="has trained its 6 epochs; give more --epochs to train on"):
        resume()
    assert resume(epochs=8).epochs == 8
    finished(diverged_epoch=2)
    with pytest.raises(ConfigError, match="stopped when its loss diverged at epoch 2; it cannot train on"):
        resume(epochs=12, patience=9)
    (run_dir / "metrics.json").unlink()  # killed before its report: a resume finishes it
    assert resume().resume is True


def test_each_rank_draws_dropout_masks_of_its_own_each_epoch_and_a_resume_the_same():
    """Every rank started from one seed and drew the same masks for its samples at every step."""
    seeds = {(epoch, rank): rank_epoch_seed(0, epoch, rank) for epoch in (1, 2) for rank in (0, 1)}
    assert len(set(seeds.values())) == 4 and all(0 <= seed < 2**63 for seed in seeds.values())
    assert rank_epoch_seed(0, 2, 1) == seeds[2, 1] != rank_epoch_seed(1, 2, 1)  # the run's seed decides


def test_a_resume_refuses_what_it_would_not_apply(tmp_path, monkeypatch):
    """--resume keeps the saved run's options: one given again with another value that a resume cannot
    change is refused, in one error naming the saved values (it would be dropped, the run recorded as if
    it had been used), and so is another export; the same value again is fine, and the overrides apply."""
    export, run_dir = tmp_path / "export", tmp_path / "run"
    run_dir.mkdir()
    for name, table in (("export", "a"), ("other", "b"), ("copy", "a")):  # an export's identity: its table's hash
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"name": name, "data_sha256": table * 64}))
    model = nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7)
    saved = TrainConfig(export, epochs=3, frames=4, size=16, freeze_backbone=True)
    save_checkpoint(run_dir, model, optimizer, scheduler, saved, new_run_state(), False, device=torch.device("cpu"))

    def resume(export_dir=export, **options):  # as `corpus train` gives them: by name, the export too
        config = TrainConfig(export_dir, resume=True, given_options=frozenset({"export_dir", *options}), **options)
        return resumed_config(config, run_dir)[0]

    with pytest.raises(ConfigError) as refused:
        resume(epochs=4, lr=0.5, frames=8, size=16, batch_size=8, seed=7, freeze_backbone=False, compile=True)
    assert str(refused.value) == (
        f"--resume cannot change --frames, --lr, --freeze-backbone, --compile, --seed: {run_dir} was trained with "
        "--frames 4, --lr 0.001, --freeze-backbone on, --compile off, --seed 0; leave them out (a resume may change "
        "only --epochs, --patience, --device, --amp, --cudnn-benchmark, --workers, --cache-dir) or train a new "
        "run (another --out)"
    )
    with pytest.raises(ConfigError, match="--lr 0.001; "):  # the library, given none: what is not a default
        resumed_config(TrainConfig(export, resume=True, lr=0.5), run_dir)
    with pytest.raises(ConfigError) as elsewhere:
        resume(tmp_path / "other", epochs=4)
    assert str(elsewhere.value).startswith(
        f"--resume: {run_dir} trains on the export {export.resolve()}, not {(tmp_path / 'other').resolve()};"
    )
    monkeypatch.chdir(tmp_path)  # the same export by another path
    again = resume(Path("export"), epochs=4, frames=4, size=16, batch_size=8, freeze_backbone=True)
    assert again.export_dir == export.resolve()  # saved with the run, resumed and reported from anywhere
    assert (again.epochs, again.frames, again.size, again.lr, again.patience) == (4, 4, 16, 1e-3, 5)
    assert resumed_config(TrainConfig(export, resume=True, epochs=5), run_dir)[0].frames == 4
    assert resume(tmp_path / "copy", epochs=4, cache_dir=tmp_path / "cache").cache_dir == tmp_path / "cache"
    shutil.rmtree(export)  # the export the run names is gone: nothing to compare the one named with
    with pytest.raises(ConfigError, match=r"trained on the export .*export \(as named then\), which is not found"):
        resume(tmp_path / "copy", epochs=4)


def test_speed_leaves_the_first_epoch_out_and_names_the_side_that_limits():
    def epoch(seconds: float, clips: int, waited: float, **extra) -> dict:
        return {"train_seconds": seconds, "train_clips_per_s": clips / seconds, "loader_wait_s": waited, **extra}

    # The first epoch (start-up) is slow and waits long; 400 clips in 2 s then 600 in 1 s is 1000 in 3 s.
    fed = training_speed([epoch(9.0, 400, 8.0), epoch(2.0, 400, 0.1), epoch(1.0, 600, 0.1, peak_gpu_mem_gib=3.5)])
    assert fed["train_clips_per_s"] == pytest.approx(1000 / 3, rel=1e-4)  # JSON keeps 3 decimals, 4 for the share
    assert fed["loader_wait_share"] == pytest.approx(0.2 / 3, rel=1e-3)
    assert fed["limited_by"] == "step" and fed["epochs_measured"] == 2 and fed["peak_gpu_mem_gib"] == 3.5
    assert speed_line(fed).startswith(
        "training: 333.3 clips/s over 2 epochs after the first, waiting for the loader 7%"
    )
    starved = training_speed([epoch(4.0, 400, 1.0)])  # one epoch: measured as it is
    assert starved["limited_by"] == "loader" and "peak_gpu_mem_gib" not in starved
    assert "over its only epoch" in speed_line(starved) and "the loader limits" in speed_line(starved)


def test_sampler_is_seeded_sharded_and_balanced():
    labels = np.array([0] * 9 + [1])
    order = list(EpochSampler(labels, seed=3, train=True))
    assert order == list(EpochSampler(labels, seed=3, train=True)) and len(order) == 10
    halves = [list(EpochSampler(labels, seed=3, train=True, rank=r, world_size=2)) for r in (0, 1)]
    assert sorted(k.index for k in halves[0] + halves[1]) == list(range(10))
    balanced = EpochSampler(np.array([0] * 90 + [1] * 10), seed=0, train=True, balanced=True)
    assert 0.3 < np.mean([key.index >= 90 for key in balanced]) < 0.7


def test_ddp_training_shards_wrap_round_and_evaluation_shards_count_each_clip_once():
    """Training ranks must take as many steps (DDP all-reduces every one), so 7 items wrap to 4 + 4; the
    validation loss sums over ranks, so there each clip (7 videos x 2 clips) is on exactly one rank."""
    labels = np.array([0, 1] * 3 + [0])
    train = [EpochSampler(labels, seed=1, train=True, rank=r, world_size=2) for r in (0, 1)]
    assert [len(s) for s in train] == [len(list(s)) for s in train] == [4, 4]
    evaluation = [EpochSampler(labels, seed=1, train=False, eval_clips=2, rank=r, world_size=3) for r in (0, 1, 2)]
    assert [len(s) for s in evaluation] == [len(list(s)) for s in evaluation] == [5, 5, 4]
    keys = [(k.index, k.clip_no) for s in evaluation for k in s]
    assert sorted(keys) == [(i, c) for i in range(7) for c in range(2)]


def _features(n):
    return {name: np.random.default_rng(n).normal(size=(n, 4)) for name in ("train", "val", "test")}


def test_collapsed_model_never_beats_baselines():
    y = np.array([0, 1] * 10)
    metrics = evaluate(
        "binary",
        y_val=y,
        scores_val=np.full(20, 0.3),
        y_test=y,
        scores_test=np.full(20, 0.3),
        train_y=y,
        features=_features(20),
    )
    assert metrics["collapsed"] is True and metrics["beats_baselines"] is False
    assert "collapsed" in metrics["verdict"]
    assert set(metrics["baselines"]) == {"majority", "metadata"}


def test_a_constant_continuous_prediction_has_no_spearman_and_says_why_without_a_warning():
    """A model (or the mean baseline) that predicts the train mean for every video: the mean of 200 equal
    floats is not always their value, so their standard deviation can be 2e-16, not 0; constancy is
    judged on the values themselves, and scipy is never asked for a correlation it would warn about."""
    y = np.random.default_rng(0).uniform(size=200)
    scores = np.full(200, y.mean())
    assert np.std(scores) > 0  # the premise: the floats' rounding, not a spread
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = evaluate(
            "continuous", y_val=y, scores_val=scores, y_test=y, scores_test=scores, train_y=y, features=_features(200)
        )
    assert metrics["model"]["spearman"] is None and metrics["model"]["p_value"] is None
    assert metrics["model"]["spearman_note"] == "undefined: predictions or targets are constant"
    assert metrics["collapsed"] is True and metrics["beats_baselines"] is False


@pytest.mark.parametrize("task", ["binary", "continuous"])
def test_narrow_scores_that_rank_well_are_not_a_collapse(task):
    """ROC-AUC and Spearman ignore scale: the same ranking squeezed into a band of 0.004 (LightGBM after
    one round at a small learning rate) is not called collapsed; a binary one gets the spread one's
    verdict (RMSE, the continuous verdict's metric, does depend on scale)."""
    rng = np.random.default_rng(0)
    y = (np.arange(200) % 2).astype(float) if task == "binary" else rng.uniform(size=200)
    signal = y + rng.normal(scale=0.3, size=200)
    verdicts = {}
    for width in (0.1, 0.001):
        scores = 0.5 + width * (signal - signal.mean())
        metrics = evaluate(
            task, y_val=y, scores_val=scores, y_test=y, scores_test=scores, train_y=y, features=_features(200)
        )
        verdicts[width] = (metrics["collapsed"], metrics["model"]["p_value"] < 0.05, metrics["beats_baselines"])
    assert metrics["model"]["score_std"] < 0.01
    assert verdicts[0.001][:2] == verdicts[0.1][:2] == (False, True)
    if task == "binary":
        assert verdicts[0.001][2] is verdicts[0.1][2] is True


@pytest.mark.parametrize("scores_test", [np.linspace(0, 1, 20), np.full(20, 0.3)], ids=["spread", "constant"])
def test_one_class_test_split_reports_null_auc_with_reason(scores_test):
    """The verdict says why nothing can be claimed, as metrics.json's note does: ROC-AUC is undefined on
    a test split of one class. Near-constant scores there are not called a collapse."""
    y = np.array([0, 1] * 10)
    metrics = evaluate(
        "binary",
        y_val=y,
        scores_val=np.linspace(0, 1, 20),
        y_test=np.zeros(20),
        scores_test=scores_test,
        train_y=y,
        features=_features(20),
    )
    assert metrics["model"]["roc_auc"] is None and "one class" in metrics["model"]["roc_auc_note"]
    assert metrics["beats_baselines"] is False
    assert metrics["verdict"].startswith("Test ROC-AUC is undefined: the test split has one class; nothing can")
    assert "collapsed" not in metrics["verdict"]


def test_a_test_split_with_a_single_positive_claims_nothing():
    """One positive, ranked first: every stratified resample holds it, so the gain over the majority came
    out as certain (interval [0.5, 0.5], p=0.0005) and the verdict claimed a win on one video."""
    y = np.zeros(40)
    y[7] = 1
    scores = np.where(y == 1, 0.9, np.linspace(0.1, 0.5, 40))
    metrics = evaluate(
        "binary",
        y_val=np.array([0, 1] * 10),
        scores_val=np.linspace(0, 1, 20),
        y_test=y,
        scores_test=scores,
        train_y=np.array([0, 1] * 10),
        features=_features(20) | {"test": _features(40)["test"]},
    )
    assert metrics["model"]["roc_auc"] == 1.0 and metrics["model"]["roc_auc_ci"] is None
    assert all(gain["p_value"] is None for gain in metrics["paired"].values())
    assert metrics["beats_baselines"] is False
    assert "has no confidence interval: the test split holds a single video of one class" in metrics["verdict"]


def test_the_auc_interval_stays_defined_on_a_test_split_with_few_positives():
    """3 positives in 60 rows: a resample of the rows loses all three once in 1/e^3 draws or so, and its
    interval came out null; positives and negatives are resampled apart, so each draw has both."""
    y = np.zeros(60)
    y[[5, 25, 45]] = 1
    scores = np.linspace(0, 1, 60) + y * 0.3
    quality = ranking_quality(y, scores)
    low, high = quality["roc_auc_ci"]
    assert low <= quality["roc_auc"] <= high <= 1.0
    gain = paired_comparison("binary", y, scores, np.full(60, 0.5))
    assert gain["p_value"] is not None and gain["difference_ci"][0] <= gain["difference"]
    alone = ranking_quality(np.eye(1, 20, 3).ravel(), np.linspace(0, 1, 20))  # one positive: no resampling it
    assert alone["roc_auc"] is not None and alone["roc_auc_ci"] is None
    assert "one video of a class" in alone["roc_auc_note"]


def _two_scorers(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two scores each the label plus its own unit noise: the baseline's shift is 0.87 (ROC-AUC
    ~0.73 expected), the model's 1.24 (~0.81); at seed 0, 0.786 and 0.846: a margin, both far from chance."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    return y, 1.24 * y + rng.normal(size=n), 0.87 * y + rng.normal(size=n)


def test_the_paired_comparison_resamples_model_and_baseline_together():
    y, model, baseline = _two_scorers(0)
    ahead = paired_comparison("binary", y, model, baseline)
    assert ahead["difference"] == pytest.approx(roc_auc_score(y, model) - roc_auc_score(y, baseline))
    low, high = ahead["difference_ci"]
    assert low < 0 < ahead["difference"] < high and 0.05 < ahead["p_value"] < 0.5
    behind = paired_comparison("binary", y, baseline, model)  # the same resamples, seen from the other side
    assert behind["difference"] == pytest.approx(-ahead["difference"])
    assert behind["p_value"] > 1 - ahead["p_value"] - 0.01
    same = paired_comparison("binary", y, model, model)
    assert same["difference"] == 0 and same["difference_ci"] == [0, 0] and same["p_value"] == 1
    # Continuous: the gain is the RMSE saved; the true values beat their mean on every resample.
    truth = np.linspace(0, 1, 40)
    saved = paired_comparison("continuous", truth, truth, np.full(40, truth.mean()))
    assert saved["difference"] == pytest.approx(np.sqrt(np.mean((truth - truth.mean()) ** 2)))
    assert saved["difference_ci"][0] > 0 and saved["p_value"] < 0.001


def test_a_baseline_as_good_as_the_model_is_beaten_no_more_often_than_the_level_says_with_few_positives():
    """Three viral videos among a hundred test rows: the bootstrap's share of resamples without a gain
    called a baseline exactly as good as the model beaten at p < 0.05 in one run in six; swapping their
    scores at random within each row holds the 5% level."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(3), np.zeros(100)]
    runs, false_claims = 120, 0
    for run in range(runs):
        signal = y + rng.normal(size=len(y))  # the model and the baseline: the same signal, noise of their own
        model, baseline = signal + rng.normal(size=len(y)), signal + rng.normal(size=len(y))
        false_claims += paired_comparison("binary", y, model, baseline, seed=run)["p_value"] < 0.05
    assert false_claims / runs <= 0.07


def test_the_auc_interval_covers_the_true_auc_as_often_as_it_says_with_few_positives():
    """Three viral videos among a hundred, scores one standard deviation and a half apart (true ROC-AUC
    0.856): the percentile bootstrap's interval held it in two runs of three (a resample cannot rank what
    three positives never showed); Newcombe's score interval holds it at the 95% promised."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(3), np.zeros(100)]
    true_auc, runs, covered = 0.8556, 200, 0
    for _ in range(runs):
        scores = np.r_[rng.normal(1.5, 1, 3), rng.normal(0, 1, 100)]
        low, high = ranking_quality(y, scores)["roc_auc_ci"]
        covered += low <= true_auc <= high
    assert covered / runs >= 0.92
    perfect = ranking_quality(y, np.r_[np.ones(3), np.linspace(0, 0.9, 100)])
    assert perfect["roc_auc"] == 1.0 and perfect["roc_auc_ci"][1] == 1.0 and perfect["roc_auc_ci"][0] < 0.9


def test_a_gain_over_a_constant_baseline_is_tested_as_a_ranking_better_than_chance():
    """Swapping ranks with a constant's ties lost power: a perfect ranking of three viral videos among a
    hundred was "not significantly better than majority" (p 0.07) where chance's p was 0.002."""
    y = np.r_[np.ones(3), np.zeros(97)]
    scores = np.r_[np.ones(3), np.linspace(0, 0.9, 97)]
    gain = paired_comparison("binary", y, scores, np.full(100, 0.3))
    assert gain["difference"] == 0.5 and gain["p_value"] == ranking_quality(y, scores)["p_value"] < 0.01


def test_a_margin_over_the_baseline_needs_a_paired_significant_gain():
    """0.846 against 0.786 on 120 rows: a margin over 0.05 and a ranking far from chance, but the paired
    gain's interval holds zero. The metadata baseline is a logistic fit on the baseline's score."""
    y, model, baseline = _two_scorers(0)
    train_y, _, train_baseline = _two_scorers(1)
    features = {"train": train_baseline[:, None], "val": baseline[:, None], "test": baseline[:, None]}
    metrics = evaluate(
        "binary", y_val=y, scores_val=model, y_test=y, scores_test=model, train_y=train_y, features=features
    )
    assert metrics["model"]["roc_auc"] >= metrics["baselines"]["metadata"]["roc_auc"] + 0.05
    assert metrics["model"]["p_value"] < 1e-6 and metrics["paired"]["metadata"]["p_value"] > 0.05
    assert metrics["beats_baselines"] is False
    assert "(not significantly better than metadata)" in metrics["verdict"]
    stronger = evaluate(
        "binary",
        y_val=y,
        scores_val=y + 0.1 * model,
        y_test=y,
        scores_test=y + 0.1 * model,
        train_y=train_y,
        features=features,
    )
    assert stronger["paired"]["metadata"]["p_value"] < 0.01 and stronger["beats_baselines"] is True
    assert "paired against each baseline: largest p=" in stronger["verdict"]


def test_a_paired_gain_whose_interval_reaches_zero_is_no_claim_however_small_its_p():
    """The one-sided paired p (0.043) and the two-sided 95% interval of the gain (from -0.017) disagree
    near the edge: the verdict said "beats every baseline" beside an interval the docs call no claim."""
    rng = np.random.default_rng(14)
    y_train, y_val, y_test = ((rng.random(size) < 0.3).astype(int) for size in (300, 80, 80))
    train, val, test = (rng.normal(size=(len(y), 1)) + 0.6 * y[:, None] for y in (y_train, y_val, y_test))
    scores_val, scores_test = (rng.normal(size=len(y)) + 0.9 * y for y in (y_val, y_test))
    metrics = evaluate(
        "binary",
        y_val=y_val,
        scores_val=scores_val,
        y_test=y_test,
        scores_test=scores_test,
        train_y=y_train,
        features={"train": train, "val": val, "test": test},
    )
    gain = metrics["paired"]["metadata"]
    assert max(paired["p_value"] for paired in metrics["paired"].values()) == gain["p_value"] < 0.05
    assert gain["difference_ci"][0] <= 0 < gain["difference"] - 0.05  # a margin, and an interval reaching 0
    assert metrics["beats_baselines"] is False
    assert "(the gain over metadata has a 95% interval reaching 0)" in metrics["verdict"]


def test_the_reports_table_shows_the_models_gain_over_each_baseline():
    from tiktok_corpus.report.model import P_VALUES, metrics_table

    y, model, baseline = _two_scorers(0)
    train_y, _, train_baseline = _two_scorers(1)
    features = {"train": train_baseline[:, None], "val": baseline[:, None], "test": baseline[:, None]}
    metrics = evaluate(
        "binary", y_val=y, scores_val=model, y_test=y, scores_test=model, train_y=train_y, features=features
    )
    table = metrics_table(metrics)
    gain = metrics["paired"]["metadata"]
    low, high = gain["difference_ci"]
    assert table.loc["metadata", "model's gain (95% CI)"] == f"{gain['difference']:+.3f} ({low:+.3f} - {high:+.3f})"
    assert table.loc["metadata", "paired p"] == gain["p_value"] > 0.05
    assert table.loc["majority", "paired p"] < 0.001 and pd.isna(table.loc["model", "paired p"])
    # The page writes a missing cell (a row without a note) as "-", not "None".
    noted = {**metrics, "baselines": {**metrics["baselines"], "majority": {**metrics["baselines"]["majority"]}}}
    noted["baselines"]["majority"]["note"] = "one class"
    assert "None" not in metrics_table(noted).to_html(na_rep="-", formatters=P_VALUES)
    del metrics["paired"]  # a run made before the paired comparison: the table is what it was
    assert "paired p" not in metrics_table(metrics)


def test_the_metadata_baseline_scores_rows_whose_followers_are_unknown():
    """An export at a moment leaves followers unknown where the author has no count by then (NaN): the
    baseline takes the train split's median and a was-missing indicator instead of failing."""
    y, _, baseline = _two_scorers(2)
    features = {name: np.column_stack([baseline, np.ones(120)]) for name in ("train", "val", "test")}
    for rows in features.values():
        rows[::7, 0] = np.nan
    metrics = evaluate(
        "binary", y_val=y, scores_val=baseline, y_test=y, scores_test=baseline, train_y=y, features=features
    )
    scored = metrics["baselines"]["metadata"]
    assert "note" not in scored and 0.6 < scored["roc_auc"] < 0.9 and metrics["paired"]["metadata"]["p_value"] > 0.05


def test_regression_metrics_and_threshold_tuning():
    y = np.linspace(0, 1, 20)
    metrics = evaluate(
        "continuous", y_val=y, scores_val=y, y_test=y, scores_test=y * 0.9 + 0.05, train_y=y, features=_features(20)
    )
    assert metrics["model"]["spearman"] == pytest.approx(1.0) and metrics["beats_baselines"] is True
    assert set(metrics["model"]) >= {"mse", "rmse", "mae", "spearman"}
    # The mean baseline is a constant, but its error still varies with the resampled rows: a real interval.
    low, high = metrics["baselines"]["mean"]["rmse_ci"]
    assert low < metrics["baselines"]["mean"]["rmse"] < high
    threshold, _ = tune_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4]))
    assert threshold == pytest.approx(0.3)


def test_the_majority_baseline_predicts_the_majority_at_its_tuned_threshold():
    """A constant score has no threshold to tune: max F1 would call every video viral."""
    y = np.array([0] * 16 + [1] * 4)
    metrics = evaluate(
        "binary",
        y_val=y,
        scores_val=np.linspace(0, 1, 20),
        y_test=y,
        scores_test=np.linspace(0, 1, 20),
        train_y=y,
        features=_features(20),
    )
    majority = metrics["baselines"]["majority"]
    assert majority["threshold"] == 0.5 and "constant" in majority["threshold_note"]
    assert majority["at_tuned"]["confusion_matrix"] == [[16, 0], [4, 0]]


def test_the_tuned_threshold_is_sklearns_best_f1_nearest_one_half():
    """Counted F1s pick what scoring each candidate with sklearn's f1_score picks, ties (rounded scores) included."""
    rng = np.random.default_rng(0)
    for trial in range(50):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        scores = np.round(rng.random(n), int(rng.integers(1, 3)))  # few distinct values: many ties
        candidates = np.unique(np.concatenate([scores, [0.5]]))
        f1s = [f1_score(y, (scores >= t).astype(int), zero_division=0) for t in candidates]
        ties = [t for t, f in zip(candidates, f1s) if f == max(f1s)]
        assert tune_threshold(y, scores)[0] == min(ties, key=lambda t: abs(t - 0.5)), trial


def test_weights_that_cannot_be_downloaded_are_one_line_saying_what_to_do():
    """Offline, torchvision's download raises urllib's error from deep inside: the user gets the way out."""
    with pytest.raises(ConfigError, match=r"cannot download the kinetics400 weights of r2plus1d_18 .* --weights PATH"):
        with downloading_weights("r2plus1d_18"):
            raise URLError("[Errno -2] Name or service not known")


def test_torchs_word_of_a_download_goes_to_stderr_where_json_keeps_stdout(capsys):
    """torch's hub writes 'Downloading: ...' on stdout: a --json run's one document had a line before it."""
    with downloading_weights("r2plus1d_18"):
        print('Downloading: "https://download.pytorch.org/models/r2plus1d_18.pth"')
    shown = capsys.readouterr()
    assert shown.out == "" and "Downloading:" in shown.err


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short", b"not torch at all"])
def test_a_weights_file_torch_cannot_read_is_one_line(tmp_path, content):
    """An empty file (a download cut short) raised EOFError, which click turned into a bare "Aborted."; junk
    gave torch's page-long weights_only essay."""
    from tiktok_corpus.features.video import load_backbone

    weights = tmp_path / "r2plus1d_18.pth"
    weights.write_bytes(content)
    for load in (lambda: build_model(str(weights)), lambda: load_backbone("r2plus1d_18", str(weights))):
        with pytest.raises(ConfigError, match="is not a weights file torch can load") as refused:
            load()
        assert "\n" not in refused.value.message


def test_weights_of_another_layout_are_refused_naming_what_does_not_fit(tmp_path):
    """A run's best.pt given as --weights (a whole checkpoint, a natural try at fine-tuning) was refused with
    torch's header line alone, "Error(s) in loading state_dict for VideoResNet:", and nothing after it."""
    from torchvision.models.video import r2plus1d_18

    checkpoint = tmp_path / "best.pt"
    torch.save({"model": {"head.0.weight": torch.zeros(2)}, "epoch": 3}, checkpoint)
    with pytest.raises(ConfigError) as refused:
        build_model(str(checkpoint))
    said = refused.value.message
    assert "of its weights missing" in said and "2 (model, epoch) it does not have" in said, said
    assert "\n" not in said

    reshaped = r2plus1d_18(weights=None).state_dict()
    reshaped["fc.weight"] = torch.zeros(3, 512)
    torch.save(reshaped, tmp_path / "other.pth")
    with pytest.raises(ConfigError, match=r"size mismatch for fc\.weight"):
        build_model(str(tmp_path / "other.pth"))


def test_the_newest_run_is_the_one_written_last_whatever_its_folder_is_called(tmp_path):
    """`--out EXPORT/runs/baseline` sorts after every time-named run: by name, browse, the report and a bare
    --resume took it for the newest for good."""
    from tiktok_corpus.export.runs import latest_run
    from tiktok_corpus.train.config import run_dir_for

    runs = tmp_path / "runs"
    for moment, name in enumerate(["baseline", "20261206-101500", "20261206-093000"], start=1):
        (runs / name).mkdir(parents=True)
        for record in ("metrics.json", "last.pt"):
            (runs / name / record).write_text("{}")
            os.utime(runs / name / record, (1_700_000_000 + moment, 1_700_000_000 + moment))
    assert latest_run(tmp_path) == runs / "20261206-093000"
    assert run_dir_for(TrainConfig(tmp_path, resume=True)) == runs / "20261206-093000"
    os.utime(runs / "baseline" / "metrics.json", (1_800_000_000, 1_800_000_000))
    assert latest_run(tmp_path) == runs / "baseline"
