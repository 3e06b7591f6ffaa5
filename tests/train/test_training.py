"""End to end on CPU: the exact model learns from pixels, stays honest on noise, resumes, and predicts.

Inputs are kept tiny (8 frames of 16x16) so R(2+1)D-18 trains in seconds on two shared cores; the
model itself is the paper's.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from rich.progress import Progress, TextColumn
from typer.testing import CliRunner

from tests.media_files import encode_lavfi
from tests.waiting import interrupt_when
from tiktok_corpus.cli import app
from tiktok_corpus.errors import ConfigError
from tiktok_corpus.train import TrainConfig, loop, train
from tiktok_corpus.train.clips import EpochSampler
from tiktok_corpus.train.predict import predict

pytestmark = pytest.mark.slow(120)

TINY = dict(frames=8, size=16, batch_size=8, seed=0, progress=False)
RUN_FILES = (
    "config.json",
    "history.csv",
    "metrics.json",
    "predictions.parquet",
    "best.pt",
    "last.pt",
    "loss_curves.png",
    "confusion_matrix.png",
    "best_worst.png",
)


@pytest.fixture(scope="module")
def signal_run(signal_export, tmp_path_factory):
    # At the paper's lr (1e-3) 32 training videos let some seeds memorise them in 2-3 epochs (the val loss
    # blows up, the best epoch is barely trained), and which seeds depends on the CPU's float kernels;
    # at 3e-4 every seed tried learns the brightness (test ROC-AUC 1.0, seeds 0-5).
    config = TrainConfig(signal_export, epochs=5, lr=3e-4, out=tmp_path_factory.mktemp("run") / "signal", **TINY)
    return train(config)


def test_learns_brightness_from_pixels(signal_run, signal_export):
    assert all((signal_run / name).is_file() for name in RUN_FILES)
    metrics = json.loads((signal_run / "metrics.json").read_text())
    assert metrics["model"]["roc_auc"] >= 0.8, metrics["verdict"]
    assert metrics["collapsed"] is False and metrics["beats_baselines"] is True
    assert metrics["baselines"]["metadata"]["roc_auc"] < metrics["model"]["roc_auc"]
    for threshold in ("at_0.5", "at_tuned"):
        assert set(metrics["model"][threshold]) >= {"accuracy", "precision", "recall", "f1", "confusion_matrix"}
    history = pd.read_csv(signal_run / "history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4, 5] and history["train_loss"].notna().all()
    assert (history["train_seconds"] < history["seconds"]).all()  # clips/s counts the training pass alone
    train_clips = (pd.read_parquet(signal_export / "videos.parquet")["split"] == "train").sum()
    assert history["train_clips_per_s"].to_numpy() == pytest.approx(train_clips / history["train_seconds"], rel=0.01)
    # No loader workers on the CPU: every clip is decoded while the step waits, and the wait is counted.
    assert ((history["loader_wait_s"] > 0) & (history["loader_wait_s"] < history["train_seconds"])).all()
    speed, after_first = metrics["speed"], history.iloc[1:]  # the run's own account of its speed
    assert speed["train_clips_per_s"] == pytest.approx(train_clips * 4 / after_first["train_seconds"].sum(), rel=0.01)
    share = after_first["loader_wait_s"].sum() / after_first["train_seconds"].sum()
    assert speed["loader_wait_share"] == pytest.approx(share, abs=1e-4)
    assert speed["limited_by"] in ("loader", "step") and speed["epochs_measured"] == 4


def test_predict_agrees_with_evaluation_and_survives_a_bad_file(signal_run, signal_export, tmp_path):
    """Scores as evaluation did; a file validation would call corrupt (noise, or a download cut short,
    which ffmpeg would encode as far as it goes) is an error line, and one shorter than the export's
    --min-frames is scored with a warning."""
    predictions = pd.read_parquet(signal_run / "predictions.parquet")
    videos = pd.read_parquet(signal_export / "videos.parquet").set_index("video_id")
    tested = predictions[predictions["split"] == "test"].head(2)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    # Its index first (faststart), as the site serves: cut, the frames it still has decode without an error.
    whole = encode_lavfi(tmp_path / "whole.mp4", "testsrc=s=128x128:r=30:d=6", movflags="+faststart").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) * 3 // 4])
    min_frames = json.loads((signal_export / "manifest.json").read_text())["selection"]["min_frames"]
    short = encode_lavfi(tmp_path / "short.mp4", f"color=c=gray:s=64x64:r=10:d={(min_frames - 4) / 10}")
    paths = [
        str(signal_export / videos.loc[tested.iloc[0].video_id, "file"]),
        str(bad),
        str(signal_export / videos.loc[tested.iloc[1].video_id, "file"]),
        str(cut),
        str(short),
    ]
    result = CliRunner().invoke(app, ["predict", *paths, "--run", str(signal_run), "--device", "cpu"])
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert result.exit_code == 1 and len(lines) == 5
    assert lines[1]["path"] == str(bad) and lines[1]["error"] == "corrupt" and "score" not in lines[1]
    for line, row in zip((lines[0], lines[2]), tested.itertuples()):
        assert line["score"] == pytest.approx(row.score, abs=1e-4)
        assert line["label"] == row.label and line["warning"] is None
    assert lines[3]["error"] == "corrupt" and "'mdat' box needs" in lines[3]["message"], lines[3]
    assert f"{min_frames - 4} frames < {min_frames}: shorter than every video" in lines[4]["warning"]
    assert 0 <= lines[4]["score"] <= 1


def test_predict_keeps_no_proxy_of_a_file_once_it_is_scored(signal_run, signal_export, tmp_path, monkeypatch):
    """Every file's proxy stayed in the temporary folder until the last was scored: a corpus's worth filled
    a small /tmp, and each file after that was called corrupt."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    videos = sorted((signal_export / "videos").glob("*.mp4"))[:2]
    scoring = predict(videos, signal_run, device="cpu")
    for video in videos:
        assert next(scoring)["path"] == str(video)
        [scratch] = tmp_path.glob("corpus-predict-*")
        assert list(scratch.iterdir()) == []
    assert next(scoring, None) is None


def test_a_run_stopped_before_its_report_scores_without_labels(signal_run, signal_export, tmp_path):
    """No metrics.json, so no threshold tuned on validation: 0.5 was used silently; now no label."""
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(signal_run / "best.pt", unfinished / "best.pt")
    video = next((signal_export / "videos").glob("*.mp4"))
    result = CliRunner().invoke(app, ["predict", str(video), "--run", str(unfinished), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    [line] = [json.loads(text) for text in result.stdout.strip().splitlines()]
    assert line["label"] is None and line["threshold"] is None and 0 <= line["score"] <= 1
    assert "stopped before its report" in result.stderr
    folder = CliRunner().invoke(app, ["predict", str(video.parent), "--run", str(unfinished), "--device", "cpu"])
    assert folder.exit_code == 1 and json.loads(folder.stdout)["error"] == "not_a_file"


def test_noise_is_not_claimed_and_resume_continues(noise_export, tmp_path):
    run_dir = tmp_path / "noise"
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(noise_export),
            "--epochs",
            "1",
            "--frames",
            "8",
            "--size",
            "16",
            "--out",
            str(run_dir),
            "--device",
            "cpu",
            "--pos-weight",
            "auto",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)  # for scripts: the run and its metrics, nothing else on stdout
    assert printed == {"run_dir": str(run_dir), **json.loads((run_dir / "metrics.json").read_text())}
    first = pd.read_csv(run_dir / "history.csv")
    again = CliRunner().invoke(app, ["train", str(noise_export), "--out", str(run_dir)])
    assert again.exit_code == 1 and "--resume" in again.output  # an existing run is never overwritten

    train(TrainConfig(noise_export, epochs=2, out=run_dir, resume=True, **TINY))
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["epoch"]) == [1, 2]
    pd.testing.assert_frame_equal(history.head(1), first)
    assert torch.load(run_dir / "last.pt", weights_only=False)["epoch"] == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["beats_baselines"] is False and "does not beat" in metrics["verdict"]


def test_warmup_climbs_step_by_step_and_resumes_where_it_stopped(noise_export, tmp_path):
    """--warmup-epochs 2: the rate climbs linearly over two epochs' steps (half-way plus one step's worth
    after the first), then holds; a run resumed after epoch 1 goes on from the saved warm-up position."""
    run_dir = tmp_path / "warmup"
    tiny = ["--frames", "8", "--size", "16", "--device", "cpu", "--out", str(run_dir)]
    result = CliRunner().invoke(app, ["train", str(noise_export), "--epochs", "1", "--warmup-epochs", "2", *tiny])
    assert result.exit_code == 0, result.output
    assert "clips/s over its only epoch, waiting for the loader" in result.output  # the summary's speed line
    train(TrainConfig(noise_export, epochs=3, out=run_dir, resume=True, **TINY))
    rates = pd.read_csv(run_dir / "history.csv")["lr"].to_numpy() / 1e-3
    assert 0.5 < rates[0] < 0.6
    assert rates[1:] == pytest.approx([1.0, 1.0], rel=1e-9)
    assert json.loads((run_dir / "config.json").read_text())["warmup_epochs"] == 2


def test_label_trains_the_network_on_the_other_label_of_the_export(noise_export, tmp_path):
    """The export was made for is_viral; --label continuous trains and reports on virality_score (MSE)."""
    run_dir = train(TrainConfig(noise_export, epochs=1, label="continuous", out=tmp_path / "regression", **TINY))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task"] == "continuous" and {"rmse", "spearman"} <= set(metrics["model"])
    assert set(metrics["baselines"]) >= {"mean", "metadata"}
    # The class options have no classes to weigh there: refused, not recorded in the run as if used.
    for class_option in ({"pos_weight": "auto"}, {"balanced_sampling": True}):
        refused = TrainConfig(noise_export, label="continuous", out=tmp_path / "refused", **class_option, **TINY)
        with pytest.raises(ConfigError, match="weighs the two classes of the binary label; this run's label is"):
            train(refused)
    assert not (tmp_path / "refused").exists()


def test_best_checkpoint_keeps_its_epoch_when_last_moves_on(tmp_path):
    from tiktok_corpus.train.checkpoints import save_checkpoint

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    config = TrainConfig(export_dir=tmp_path)
    for epoch, improved in ((1, True), (2, False)):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        state = {"epoch": epoch, "history": []}
        save_checkpoint(tmp_path, model, optimizer, scheduler, config, state, improved, device=torch.device("cpu"))
    best, last = (torch.load(tmp_path / name, weights_only=False) for name in ("best.pt", "last.pt"))
    assert (best["epoch"], last["epoch"]) == (1, 2)
    assert best["model"]["weight"].eq(1.0).all() and last["model"]["weight"].eq(2.0).all()
    assert not list(tmp_path.glob("*.part"))


def test_a_checkpoint_reaches_the_disk_before_its_name(tmp_path, monkeypatch):
    """Each checkpoint file is fsynced before it is renamed into place, and the folder after: a power cut
    leaves last.pt and best.pt whole (this epoch's or the one before), never a name for lost bytes."""
    from tiktok_corpus.train.checkpoints import save_checkpoint

    events: list[tuple] = []
    fsync, replace = os.fsync, Path.replace

    def recorded_fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        fsync(fd)

    def recorded_replace(self, target):
        events.append(("rename", os.stat(self).st_ino, Path(target).name))
        return replace(self, target)

    monkeypatch.setattr(os, "fsync", recorded_fsync)
    monkeypatch.setattr(Path, "replace", recorded_replace)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1)
    state = {"epoch": 1, "history": []}
    config = TrainConfig(tmp_path)
    save_checkpoint(tmp_path, model, optimizer, scheduler, config, state, True, device=torch.device("cpu"))

    renames = [event for event in events if event[0] == "rename"]
    assert [name for *_, name in renames] == ["history.csv", "best.pt", "last.pt"]
    for rename in renames:
        assert ("fsync", rename[1]) in events[: events.index(rename)]
    assert events[-1] == ("fsync", tmp_path.stat().st_ino)


def test_a_run_stopped_before_its_metrics_is_unfinished_and_resume_finishes_it(
    noise_export, tmp_path, predictions_unwritable
):
    """metrics.json is written last, and a resume takes it away until it writes its own: a run stopped
    in its report (or in a resume's epochs) is never the export's latest finished run, is refused as
    unfinished when started again, and --resume finishes it."""
    from tiktok_corpus.export.runs import latest_run

    export_dir = tmp_path / "export"
    export_dir.mkdir()
    for name in ("videos.parquet", "manifest.json"):
        shutil.copy(noise_export / name, export_dir / name)
    (export_dir / "videos").symlink_to(noise_export / "videos")
    run_dir = export_dir / "runs" / "stopped"
    options = dict(out=run_dir, cache_dir=noise_export / "cache", **TINY)
    with predictions_unwritable(), pytest.raises(OSError, match="No space left"):
        train(TrainConfig(export_dir, epochs=1, **options))
    assert (run_dir / "last.pt").is_file() and not (run_dir / "metrics.json").exists()
    assert latest_run(export_dir) is None

    with pytest.raises(ConfigError, match=r"holds an unfinished run .*--resume to finish it"):
        train(TrainConfig(export_dir, epochs=1, **options))
    train(TrainConfig(export_dir, epochs=1, resume=True, **options))
    assert latest_run(export_dir) == run_dir and (run_dir / "predictions.parquet").is_file()

    with predictions_unwritable(), pytest.raises(OSError, match="No space left"):
        train(TrainConfig(export_dir, epochs=2, resume=True, **options))
    assert latest_run(export_dir) is None and not list(run_dir.glob("*.part"))


def test_two_processes_under_torchrun_train_one_run_on_their_shards(signal_export, tmp_path):
    """DDP on CPU (gloo): each rank trains on its shard, rank 0 alone writes the run, every video scored
    once; --lr-scaling counts both processes' clips in the global batch (2 x 8 = twice the paper's)."""
    out = tmp_path / "ddp"
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"),
        str(Path(sys.executable).with_name("corpus")),
        *("train", str(signal_export), "--epochs", "2", "--frames", "8", "--size", "16", "--batch-size", "8"),
        *("--lr", "1e-3", "--lr-scaling", "linear", "--device", "cpu", "--out", str(out)),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.stdout.count("run written to") == 1  # rank 0 alone reports
    assert all((out / name).is_file() for name in RUN_FILES)
    assert not list(out.parent.glob("ddp?*"))  # one run directory, not one per rank
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [1, 2] and history["val_loss"].notna().all()
    assert history["lr"].iloc[0] == pytest.approx(2e-3)
    predictions = pd.read_parquet(out / "predictions.parquet")
    videos = pd.read_parquet(signal_export / "videos.parquet")
    for split in ("val", "test"):
        scored = predictions.loc[predictions["split"] == split, "video_id"]
        assert sorted(scored) == sorted(videos.loc[videos["split"] == split, "video_id"])
    # One process cannot go on with a run of two: its steps' batch and rate were set for two.
    resumed = CliRunner().invoke(app, ["train", str(signal_export), "--resume", "--epochs", "3", "--out", str(out)])
    assert resumed.exit_code == 1 and "trained in 2 processes, this resume runs in 1" in resumed.stderr, resumed.output
    assert "torchrun --nproc-per-node 2" in resumed.stderr
    assert list(pd.read_csv(out / "history.csv")["epoch"]) == [1, 2]


def test_a_diverged_run_stops_with_one_clear_error(signal_export, tmp_path):
    """--lr 1e9 makes the first epoch's losses NaN (Adam's steps are about --lr: the activations overflow;
    at 1000 some CPUs' kernels still keep them finite, near 1e36): the run stops there, saying so,
    instead of training on NaN weights and then failing for want of a best.pt."""
    run_dir = tmp_path / "diverged"
    tiny = ["--frames", "8", "--size", "16", "--device", "cpu", "--out", str(run_dir)]
    result = CliRunner().invoke(app, ["train", str(signal_export), "--epochs", "3", "--lr", "1e9", *tiny])
    assert result.exit_code == 1, result.output
    assert "training diverged: the loss is not finite at epoch 1" in result.stderr
    assert "Traceback" not in result.output
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == [1]


def test_a_refused_run_leaves_no_run_folder(signal_export, tmp_path):
    run_dir = tmp_path / "refused"
    tiny = ["--frames", "8", "--size", "16", "--device", "cpu", "--out", str(run_dir)]
    result = CliRunner().invoke(app, ["train", str(signal_export), "--weights", str(tmp_path / "missing.pth"), *tiny])
    assert result.exit_code == 1 and "missing.pth" in result.stderr, result.output
    assert not run_dir.exists()


def test_a_resume_needs_no_longer_the_weights_the_run_started_from(signal_export, tmp_path):
    """The checkpoint holds every weight: a --weights file moved away (or kinetics400 offline) must not
    stop the run from going on."""
    from torchvision.models.video import r2plus1d_18

    weights = tmp_path / "start.pt"
    torch.save(r2plus1d_18(weights=None).state_dict(), weights)
    run_dir = tmp_path / "run"
    train(TrainConfig(signal_export, epochs=1, weights=str(weights), out=run_dir, patience=50, **TINY))
    weights.unlink()
    train(TrainConfig(signal_export, epochs=2, resume=True, out=run_dir, progress=False))
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == [1, 2]


def test_resume_keeps_the_saved_options_not_given_again(noise_export, signal_export, tmp_path):
    """--resume with only --epochs: the run's --patience 7 stays (the command's default 5 replaced it).
    An option a resume cannot change, given with another value, or another export, is refused in one
    line naming what the run was trained with, before anything is trained or written; the same values
    again (--frames 8 --size 16 below), and a copy of its export, are fine."""
    run_dir = tmp_path / "resumed"
    tiny = ["--frames", "8", "--size", "16", "--device", "cpu", "--out", str(run_dir)]
    first = CliRunner().invoke(app, ["train", str(noise_export), "--epochs", "1", "--patience", "7", *tiny])
    assert first.exit_code == 0, first.output
    written = {path.name: path.stat().st_mtime_ns for path in run_dir.iterdir()}
    changed = ["--epochs", "2", "--resume", "--lr", "0.5", "--batch-size", "2", "--seed", "7", "--out", str(run_dir)]
    refused = CliRunner().invoke(app, ["train", str(noise_export), *changed, "--frames", "4", "--size", "16"])
    assert refused.exit_code == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.output
    assert (
        "error: --resume cannot change --frames, --batch-size, --lr, --seed: "
        f"{run_dir} was trained with --frames 8, --batch-size 8, --lr 0.001, --seed 0;"
    ) in refused.stderr
    elsewhere = CliRunner().invoke(app, ["train", str(signal_export), "--epochs", "2", "--resume", *tiny])
    assert elsewhere.exit_code == 1, elsewhere.output
    assert f"trains on the export {noise_export.resolve()}, not {signal_export.resolve()};" in elsewhere.stderr
    assert {path.name: path.stat().st_mtime_ns for path in run_dir.iterdir()} == written
    copy = tmp_path / "copy-of-the-export"  # the same export elsewhere (its video table's hash) is its own
    shutil.copytree(noise_export, copy, ignore=shutil.ignore_patterns("runs"))
    again = CliRunner().invoke(app, ["train", str(copy), "--epochs", "2", "--resume", *tiny])
    assert again.exit_code == 0, again.output
    saved = json.loads((run_dir / "config.json").read_text())
    assert (saved["epochs"], saved["patience"]) == (2, 7)


def test_the_progress_bar_shows_the_loss_from_an_epochs_first_step(noise_export, tmp_path, monkeypatch):
    """The bar reads the loss back at an epoch's first step and every LOSS_SYNC_STEPS steps after (not at
    every step: a read waits for the GPU), and shows no number before its first read, never a NaN that
    looks like divergence. Here 4 steps an epoch (32 clips of 8), a read every 3: at steps 1, 3 and 4."""
    shown: list[str] = []

    def text(bar: Progress, task_id) -> str:
        task = bar._tasks[task_id]
        return " ".join(str(column.render(task)) for column in bar.columns if isinstance(column, TextColumn))

    add_task, advance = Progress.add_task, Progress.advance

    def adding(bar, *args, **kwargs):
        task_id = add_task(bar, *args, **kwargs)
        shown.append(text(bar, task_id))
        return task_id

    def advancing(bar, task_id, *args):  # what the bar shows once the step's update is made
        shown.append(text(bar, task_id))
        advance(bar, task_id, *args)

    monkeypatch.setattr(Progress, "add_task", adding)
    monkeypatch.setattr(Progress, "advance", advancing)
    monkeypatch.setattr(loop, "LOSS_SYNC_STEPS", 3)
    train(TrainConfig(noise_export, epochs=2, out=tmp_path / "bar", **{**TINY, "frames": 4, "progress": True}))
    for epoch in (1, 2):
        bar = [line for line in shown if line.startswith(f"epoch {epoch}/2")]
        assert len(bar) == 5 and bar[0] == f"epoch {epoch}/2 loss …", bar
        losses = [line.removeprefix(f"epoch {epoch}/2 loss ") for line in bar[1:]]
        assert all(re.fullmatch(r"\d+\.\d{4}", loss) for loss in losses), bar
        assert losses[1] == losses[0] != losses[2]  # step 2 reads nothing: step 1's loss stays


def test_data_loader_workers_do_not_change_the_run(noise_export, tmp_path):
    """Clips and their starts come from (seed, epoch) alone, and the loaders keep their own generator:
    two workers train exactly what the main process alone does (dropout's stream included)."""
    histories = [
        pd.read_csv(
            train(TrainConfig(noise_export, epochs=2, workers=workers, out=tmp_path / f"w{workers}", **TINY))
            / "history.csv"
        )
        for workers in (0, 2)
    ]
    assert histories[0]["train_loss"].tolist() == histories[1]["train_loss"].tolist()
    assert histories[0]["val_loss"].tolist() == histories[1]["val_loss"].tolist()


def test_the_next_epochs_batches_load_while_validation_runs(noise_export, tmp_path, monkeypatch):
    """Each epoch's loader workers started on an empty pipeline once its training began, and the first
    step waited for a whole batch (a tenth of a short GPU epoch); the next epoch's batches are asked for
    before validation, so the workers decode them meanwhile. The last epoch asks for none after it, and
    the workers stop before the report (an early stop's asked-for epoch decoded on while it scored)."""
    events: list[str] = []
    validation, order = loop._validation_loss, EpochSampler.__iter__

    def noting_validation(*args, **kwargs):
        events.append("validate")
        return validation(*args, **kwargs)

    def noting_order(sampler):
        if sampler.train:
            events.append(f"train {sampler.epoch}")
        return order(sampler)

    report = loop._report

    def noting_workers(*args, **kwargs):  # the loaders' workers are gone before the report scores the splits
        events.append(f"{len(multiprocessing.active_children())} workers")
        return report(*args, **kwargs)

    monkeypatch.setattr(loop, "_validation_loss", noting_validation)
    monkeypatch.setattr(EpochSampler, "__iter__", noting_order)
    monkeypatch.setattr(loop, "_report", noting_workers)
    train(TrainConfig(noise_export, epochs=3, workers=1, out=tmp_path / "run", **TINY))
    assert events[:7] == ["train 1", "train 2", "validate", "train 3", "validate", "validate", "0 workers"]


def test_ctrl_c_says_how_to_go_on_and_resume_does(noise_export, tmp_path):
    """Ctrl-C mid-run: exit 130, no traceback, a line naming the run and the command that continues it;
    that command then trains the epochs left. Stopped before its first epoch ended, the run says the same
    command starts again, and it does, over the folder left behind."""
    run_dir = tmp_path / "stopped"
    tiny = ["--frames", "8", "--size", "16", "--device", "cpu", "--patience", "50", "--out", str(run_dir)]
    command = [str(Path(sys.executable).with_name("corpus")), "train", str(noise_export), *tiny, "--epochs", "50"]
    early = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    stderr = interrupt_when(early, lambda: (run_dir / "config.json").is_file(), "the run's folder")
    if (run_dir / "last.pt").exists():  # the first epoch won the race: nothing to tell apart
        shutil.rmtree(run_dir)
    else:
        assert early.returncode == 130 and "Traceback" not in stderr, stderr
        assert "no epoch was kept; the proxies made so far are cached, and the same command starts" in " ".join(
            stderr.split()
        )
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    stderr = interrupt_when(proc, lambda: (run_dir / "last.pt").is_file(), "a first finished epoch")
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert f"--resume --out {run_dir}" in " ".join(stderr.split()), stderr
    done = torch.load(run_dir / "last.pt", weights_only=False)["epoch"]  # the epochs a resume goes on from
    assert done < 50
    resumed = subprocess.run([*command[:-1], str(done + 1), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert list(pd.read_csv(run_dir / "history.csv")["epoch"]) == list(range(1, done + 2))
