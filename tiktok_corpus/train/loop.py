"""The training loop: Adam + StepLR, early stopping, per-epoch checkpoints, resume, DDP, honest report.

Run directory layout: ``config.json``, ``history.csv``, ``last.pt`` / ``best.pt`` (model, optimizer,
scheduler, epoch, config, history, RNG state), ``metrics.json``, ``predictions.parquet`` and the
figures. Under ``torchrun`` every rank trains on its shard; rank 0 alone writes.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from .._files import remove_abandoned_scratch, write_text_atomically
from ..errors import ConfigError, TrainingDiverged
from ..speed import training_speed
from . import plots
from .baseline_features import growth_features, metadata_features
from .checkpoints import (
    load_run_model,
    new_run_state,
    refuse_another_world_size,
    refuse_other_side_inputs,
    restore_run,
    resumed_config,
    save_checkpoint,
    side_record,
)
from .clips import ClipDataset, EpochSampler, collate_clips
from .config import TrainConfig, refuse_a_used_run_dir, refuse_class_options_without_classes, run_dir_for
from .device import resolve_device, seed_everything
from .export_table import Export, load_export
from .fusion import SideInputs, side_inputs
from .metrics import evaluate
from .model import build_model, compiled
from .proxies import build_cache
from .scoring import forward_clips, score_split

LOSS_SYNC_STEPS = 20
# How long the other ranks wait at a barrier while rank 0 works alone: building the proxy cache (decoding a
# corpus of thousands of videos) or the report (scoring val and test) takes far longer than NCCL's default
# 10 minutes, after which they gave up and torchrun stopped rank 0 midway.
WAIT_FOR_RANK_ZERO = timedelta(hours=6)


@dataclass
class _Dist:
    rank: int = 0
    world_size: int = 1
    gpu: int = 0  # the CUDA device this process trains on (when it trains on CUDA)

    @property
    def main(self) -> bool:
        return self.rank == 0


def train(config: TrainConfig, side: tuple[pd.DataFrame, dict] | None = None) -> Path:
    """Train on ``config.export_dir`` and write the run directory; returns it.

    ``side`` (fusion): the other modalities' feature table, indexed like the export's, and its provenance.
    """
    dist_info = _init_distributed(config)
    try:
        return _train(config, dist_info, side)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _init_distributed(config: TrainConfig) -> _Dist:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1). Each process trains on
    the GPU of its local rank over NCCL; more processes than GPUs share them over gloo (NCCL wants a GPU
    per process), which is how ``bench/gpu_check.sh`` measures DDP's cost on a one-GPU machine."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return _Dist()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend, gpu = "gloo", 0
    if resolve_device(config.device).type == "cuda":
        gpus = torch.cuda.device_count()
        gpu = local_rank % gpus
        torch.cuda.set_device(gpu)
        if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) <= gpus:
            backend = "nccl"
    dist.init_process_group(backend)
    return _Dist(dist.get_rank(), world_size, gpu)


def reports_results() -> bool:
    """Whether this process speaks for a run: the only one, or rank 0 of those ``torchrun`` started."""
    return int(os.environ.get("RANK", "0")) == 0


def _train(config: TrainConfig, world: _Dist, side_table: tuple[pd.DataFrame, dict] | None) -> Path:
    run_dir = run_dir_for(config)
    checkpoint = None
    if config.resume:
        config, checkpoint = resumed_config(config, run_dir)
        refuse_another_world_size(checkpoint, world.world_size, run_dir)
    else:
        refuse_a_used_run_dir(run_dir)
    device = resolve_device(config.device, world.gpu)
    use_amp = config.amp and device.type == "cuda"
    seed_everything(config.seed, cudnn_benchmark=config.cudnn_benchmark)
    export = load_export(config.export_dir, label=config.label)
    refuse_class_options_without_classes(config, export.task)
    if world.main:  # rank 0 builds the cache; the others wait, then only look their proxies up
        proxies = build_cache(export, config.size, config.cache_dir, progress=config.progress)
    waiting: dist.ProcessGroup | None = None
    if world.world_size > 1:  # on the CPU, with a wait of its own: NCCL's watchdog gives up after 10 minutes
        group = dist.new_group(backend="gloo", timeout=WAIT_FOR_RANK_ZERO)
        assert isinstance(group, dist.ProcessGroup)  # every rank is in it
        waiting = group
        dist.barrier(group=waiting)
    if not world.main:
        proxies = build_cache(export, config.size, config.cache_dir, progress=False)

    splits = {name: export.split(name) for name in ("train", "val", "test")}
    side = side_inputs(export, *side_table) if side_table is not None else None
    if checkpoint is not None and side is not None:
        refuse_other_side_inputs(checkpoint, side, run_dir)

    def side_of(split: str) -> np.ndarray | None:
        return side.vectors[split] if side else None

    target = export.target_column
    loaders = {
        name: _loader(config, device, world, splits[name], proxies, target, side_of(name), train=name == "train")
        for name in ("train", "val")
    }

    # A resumed run's weights come from its checkpoint: the ones it started from need not be at hand.
    model = build_model("none" if checkpoint is not None else config.weights, side.width if side else 0)
    if world.main:  # only now: a run refused above (a missing file, unreadable weights) leaves no folder
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_abandoned_scratch(run_dir)  # the half-written checkpoint of a run killed in this folder
        write_text_atomically(run_dir / "config.json", json.dumps(config.to_json(), indent=2) + "\n")
        # Unfinished again until its new report: the old metrics.json would vouch for checkpoints that move
        # on, and (stopped partway) for predictions already rewritten.
        (run_dir / "metrics.json").unlink(missing_ok=True)
    if config.freeze_backbone:
        model.freeze_backbone()
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    optimizer = adam([p for p in model.parameters() if p.requires_grad], config.scaled_lr(world.world_size), device)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    warmup = _warmup(optimizer, config.warmup_epochs * len(loaders["train"]))
    loss_fn = _loss(export, splits["train"][target], config, device)

    state = new_run_state()
    if checkpoint is not None:
        state = restore_run(checkpoint, model, optimizer, scheduler, warmup, device)
    trained: nn.Module = nn.parallel.DistributedDataParallel(model) if world.world_size > 1 else model
    if config.compile:
        trained = compiled(trained)

    batches = None  # the next epoch's, once asked for
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["stale_epochs"] >= config.patience or state["diverged_epoch"]:
            break
        if world.world_size > 1:  # dropout masks of each rank's own (one seed drew them alike on every rank)
            torch.manual_seed(rank_epoch_seed(config.seed, epoch, world.rank))
        started = time.perf_counter()
        batches = batches if batches is not None else _epoch_batches(loaders["train"], epoch)
        train_loss, clips, loader_wait = _train_epoch(
            trained, batches, len(loaders["train"]), epoch, optimizer, warmup, loss_fn, device, use_amp, config, world
        )
        train_seconds = time.perf_counter() - started  # _train_epoch reads the loss, so the GPU is done
        # The next epoch's first batches load while validation runs: each epoch's workers started on an empty
        # pipeline, and its first step waited for a whole batch to be decoded (a tenth of a short epoch).
        batches = _epoch_batches(loaders["train"], epoch + 1) if epoch < config.epochs else None
        val_loss = _validation_loss(model, loaders["val"], loss_fn, device, use_amp, world)
        seconds = time.perf_counter() - started
        state["history"].append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": round(seconds, 3),
                "train_seconds": round(train_seconds, 3),
                "train_clips_per_s": round(clips * world.world_size / train_seconds, 3),
                "loader_wait_s": round(loader_wait, 3),
            }
        )
        if device.type == "cuda":
            state["history"][-1]["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
        scheduler.step()
        # A NaN compares false with everything: it must neither count as an improvement nor become the
        # best loss (min() would keep it, and no later epoch could then improve on it).
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            state["diverged_epoch"] = epoch
        improved = not state["diverged_epoch"] and val_loss < state["best_val_loss"]
        if improved:
            state["best_val_loss"], state["best_epoch"] = val_loss, epoch
        state["stale_epochs"] = 0 if improved else state["stale_epochs"] + 1
        state["epoch"] = epoch
        if world.main:
            saved = {**state, **side_record(side), "world_size": world.world_size}
            save_checkpoint(
                run_dir, model, optimizer, scheduler, config, saved, best=improved, device=device, warmup=warmup
            )
    batches = None  # with the loaders: their workers stop (an epoch asked for but never run, validation's)
    loaders.clear()
    if state["diverged_epoch"] and not state["best_epoch"]:
        raise TrainingDiverged(
            f"training diverged: the loss is not finite at epoch {state['diverged_epoch']} and no epoch before "
            f"it improved on validation, so there is no model (try a lower --lr; run kept in {run_dir})"
        )
    if world.main:
        _report(run_dir, config, export, splits, proxies, side, device, use_amp, state)
    if waiting is not None:
        dist.barrier(group=waiting)
    return run_dir


def rank_epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of one rank's epoch under torchrun: drawn afresh each epoch from the run's seed, so a
    resumed run draws what the uninterrupted one did without each rank's generator state in the checkpoint."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1, np.uint64)[0] >> 1)


FUSED_ADAM_DEVICES = ("cpu", "cuda")


def adam(parameters, lr: float, device: torch.device) -> torch.optim.Adam:
    """Fused Adam (one kernel for every parameter) where torch has one: the same update as the paper's
    per-tensor loop (equal to float32 rounding), its step five times as fast on the CPU (22 ms against
    104 ms for R(2+1)D-18's 31M weights). A resumed run takes this choice for its device, not the saved
    run's."""
    return torch.optim.Adam(parameters, lr=lr, fused=True if device.type in FUSED_ADAM_DEVICES else None)


def _loader(
    config: TrainConfig,
    device: torch.device,
    world: _Dist,
    rows: pd.DataFrame,
    proxies: dict[str, Path],
    target: str,
    side: np.ndarray | None,
    *,
    train: bool,
    shard: bool = True,
) -> DataLoader:
    dataset = ClipDataset(
        [proxies[v] for v in rows["video_id"]], rows[target].tolist(), config.frames, config.eval_clips, side=side
    )
    sampler = EpochSampler(
        rows[target].tolist(),
        seed=config.seed,
        train=train,
        balanced=train and config.balanced_sampling,
        eval_clips=config.eval_clips,
        rank=world.rank if shard else 0,
        world_size=world.world_size if shard else 1,
    )
    workers = (
        config.workers if config.workers is not None else (min(8, os.cpu_count() or 1) if device.type == "cuda" else 0)
    )
    # Training skips a lone last clip (BatchNorm breaks on one value per channel at small sizes) and,
    # compiled, a short last batch (a recompile); evaluation and the paper's loop keep every clip.
    lone_last = train and len(sampler) > 1 and len(sampler) % config.batch_size == 1
    short_last = train and config.compile and len(sampler) > config.batch_size
    return DataLoader(
        dataset,
        # Its own generator: a loader draws a seed from the global one for every new iterator (every
        # epoch, or once with persistent workers), which moved dropout's stream with the worker count.
        generator=torch.Generator().manual_seed(config.seed),
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=workers,
        drop_last=lone_last or short_last,
        collate_fn=collate_clips,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
    )


def _loss(export: Export, train_targets: pd.Series, config: TrainConfig, device: torch.device):
    """BCE on the sigmoid output for is_viral (optionally class-weighted), MSE for virality_score."""
    if export.task == "continuous":
        mse = nn.MSELoss()
        return lambda logits, y: mse(torch.sigmoid(logits), y)
    pos_weight = None
    if config.pos_weight == "auto":
        positives = float(train_targets.sum())
        if positives == 0:
            raise ConfigError("--pos-weight auto: the train split has no positive (viral) video")
        pos_weight = torch.tensor((len(train_targets) - positives) / positives, device=device)
    return nn.BCEWithLogitsLoss(pos_weight=pos_weight)


def _warmup(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LinearLR | None:
    """Per-step linear warm-up. It scales the optimizer's current rate as StepLR does (both chainable),
    so the two compose: StepLR acts at epoch ends, the warm-up after each of its first ``steps`` steps."""
    if steps < 1:
        return None
    return torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / steps, total_iters=steps)


def _epoch_batches(loader: DataLoader, epoch: int) -> Iterator:
    """The training loader's batches of ``epoch``, its workers set going."""
    loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
    return iter(loader)


def _train_epoch(
    model, batches, steps, epoch, optimizer, warmup, loss_fn, device, use_amp, config, world
) -> tuple[float, int, float]:
    """One pass over the training split (``steps`` batches): its mean loss, its clips, and the seconds the
    step waited for the loader (near zero when the loader keeps up; near the whole pass when decoding
    limits)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    model.train()
    columns = (
        TextColumn(f"epoch {epoch}/{config.epochs}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    # The loss is summed on the device and read back at the first step and every LOSS_SYNC_STEPS steps
    # after only: a read per step would make the host wait for the GPU to finish each batch before it
    # can queue the next. Before the first read the bar shows no number.
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    with Progress(
        *columns, console=Console(stderr=True), disable=not (config.progress and world.main), transient=True
    ) as bar:
        task = bar.add_task("train", total=steps, loss="…")
        loader_wait = 0.0
        asked = time.perf_counter()
        for step, (clips, valid, targets, _, side) in enumerate(batches, start=1):
            loader_wait += time.perf_counter() - asked
            targets = targets.to(device, non_blocking=True)
            loss = loss_fn(forward_clips(model, clips, valid, device, use_amp, side), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if warmup is not None and warmup.last_epoch < warmup.total_iters:
                warmup.step()
            total += loss.detach().double() * len(targets)
            count += len(targets)
            if step == 1 or step % LOSS_SYNC_STEPS == 0 or step == steps:
                bar.update(task, loss=f"{total.item() / count:.4f}")
            bar.advance(task)
            asked = time.perf_counter()
    total_loss = float(total.item())
    return _all_reduce_mean(total_loss, count, device, world), count, loader_wait


def _validation_loss(model, loader, loss_fn, device, use_amp, world) -> float:
    _, mean_loss = score_split(model, loader, device, use_amp, loss_fn)
    return _all_reduce_mean(mean_loss * len(loader.sampler), len(loader.sampler), device, world)


def _all_reduce_mean(total: float, count: int, device: torch.device, world: _Dist) -> float:
    if world.world_size > 1:
        both = torch.tensor([total, float(count)], device=device, dtype=torch.float64)
        dist.all_reduce(both)
        total, count = both.tolist()
    return total / max(count, 1)


def _report(
    run_dir: Path,
    config: TrainConfig,
    export: Export,
    splits: dict[str, pd.DataFrame],
    proxies: dict[str, Path],
    side: SideInputs | None,
    device: torch.device,
    use_amp: bool,
    state: dict[str, Any],
) -> None:
    """Score val and test with the best epoch's weights; write predictions, figures and, last, metrics."""
    history = state["history"]
    model, _ = load_run_model(run_dir, device)
    target = export.target_column
    scored = {}
    for name in ("val", "test"):
        side_vectors = side.vectors[name] if side else None
        loader = _loader(config, device, _Dist(), splits[name], proxies, target, side_vectors, train=False, shard=False)
        scores, _ = score_split(model, loader, device, use_amp)
        scored[name] = splits[name].assign(score=scores, target=splits[name][target].astype(float))
    metrics = evaluate(
        export.task,
        y_val=scored["val"]["target"],
        scores_val=scored["val"]["score"],
        y_test=scored["test"]["target"],
        scores_test=scored["test"]["score"],
        train_y=splits["train"][target],
        features={name: metadata_features(rows) for name, rows in splits.items()},
        growth=growth_features(export),
        test_authors=export.test_authors(),
    )
    metrics["run"] = {
        "model": config.model,
        **({"modalities": ["video", *side.modalities], "features": side.provenance} if side else {}),
        "export": str(export.root),
        "export_name": export.manifest.get("name"),
        "export_version": export.manifest.get("version"),
        "best_epoch": state["best_epoch"],
        "epochs_run": len(history),
        "diverged_at_epoch": state["diverged_epoch"] or None,
    }
    metrics["speed"] = training_speed(history)

    threshold = metrics["model"]["threshold"]
    predictions = pd.concat([scored["val"].assign(split="val"), scored["test"].assign(split="test")])
    predictions = predictions[["video_id", "split", "target", "score"]].reset_index(drop=True)
    if threshold is not None:
        predictions["label"] = (predictions["score"] >= threshold).astype(int)
    predictions.to_parquet(run_dir / "predictions.parquet", index=False)

    plots.loss_curves(pd.DataFrame(history), run_dir / "loss_curves.png")
    if export.task == "binary":
        plots.confusion(metrics["model"]["at_tuned"]["confusion_matrix"], threshold, run_dir / "confusion_matrix.png")
    plots.best_worst_strip(scored["test"], export.root, run_dir / "best_worst.png")
    # Last, and whole or not at all: its presence is what makes the run finished (latest_run, the report).
    write_text_atomically(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
