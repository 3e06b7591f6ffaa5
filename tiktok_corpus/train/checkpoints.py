"""A run's checkpoints: written atomically every epoch, read back to resume, to report and to predict."""

from __future__ import annotations

import os
import pickle
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from .._files import replacing
from ..errors import ConfigError
from .config import RESUMABLE_OVERRIDES, TrainConfig, check_resume
from .fusion import SideInputs
from .model import FusionModel, ViralityModel, build_model


def read_checkpoint(path: Path) -> dict:
    """A checkpoint this package wrote: tensors and plain values only (``weights_only``: a hostile file
    cannot run code), or a clear error when the file is damaged."""
    try:
        found = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"{path} is not a readable checkpoint ({str(exc).splitlines()[0][:200]})") from None
    if not isinstance(found, dict) or not isinstance(found.get("config"), dict) or "model" not in found:
        raise ConfigError(f"{path} is no checkpoint of `corpus train`: it holds no model and config")
    return found


def resumed_config(config: TrainConfig, run_dir: Path) -> tuple[TrainConfig, dict]:
    """The saved run's config, with the overridable options ``config`` was given (``given_options``), and
    its checkpoint; refused (:func:`.config.check_resume`) when ``config`` asks for anything else."""
    last = run_dir / "last.pt"
    if not last.is_file():
        raise ConfigError(f"--resume: {last} does not exist")
    checkpoint = read_checkpoint(last)
    saved = TrainConfig.from_json(checkpoint["config"])
    check_resume(config, saved, run_dir)
    names = RESUMABLE_OVERRIDES if config.given_options is None else config.given_options
    overrides = {name: getattr(config, name) for name in names if name in RESUMABLE_OVERRIDES}
    # The export as named now (check_resume found it the run's own), not as the run first spelled it;
    # absolute, as the run saves it: typed relative, it was found from the resume's folder alone.
    resumed = replace(
        saved,
        **overrides,
        export_dir=Path(config.export_dir).resolve(),
        progress=config.progress,
        out=run_dir,
        resume=True,
    )
    if (run_dir / "metrics.json").exists():  # an unfinished run's resume finishes its report, if nothing more
        _refuse_a_resume_that_trains_nothing(checkpoint, resumed, run_dir)
    return resumed, checkpoint


def _refuse_a_resume_that_trains_nothing(checkpoint: dict, resumed: TrainConfig, run_dir: Path) -> None:
    """A finished run resumed would train no epoch: it stopped early (the patience it stopped at still
    holds), its loss diverged, or it has trained every epoch asked for. Said, rather than the same report
    written again and exit 0 as if it had gone on."""
    epoch, stale = checkpoint.get("epoch", 0), checkpoint.get("stale_epochs", 0)
    if checkpoint.get("diverged_epoch"):
        raise ConfigError(
            f"--resume: {run_dir} stopped when its loss diverged at epoch {checkpoint['diverged_epoch']}; it "
            "cannot train on: train a new run (another --out), with a lower --lr"
        )
    if stale >= resumed.patience and epoch < resumed.epochs:
        raise ConfigError(
            f"--resume: {run_dir} stopped early at epoch {epoch}, its validation loss no better for {stale} "
            f"epoch(s) (--patience {resumed.patience}); give --patience above {stale} to train on"
        )
    if epoch >= resumed.epochs:
        raise ConfigError(f"--resume: {run_dir} has trained its {epoch} epochs; give more --epochs to train on")


def refuse_another_world_size(checkpoint: dict, world_size: int, run_dir: Path) -> None:
    """A run resumes with as many processes as it trained with: the batch of a step is ``--batch-size``
    per process and the restored optimizer keeps the learning rate scaled for it, so another count would
    train on with a batch its rate was not set for. A checkpoint of an earlier version did not say."""
    trained = checkpoint.get("world_size")
    if trained is not None and trained != world_size:
        how = "without torchrun" if trained == 1 else f"with torchrun --nproc-per-node {trained} (in all)"
        raise ConfigError(
            f"--resume: {run_dir} trained in {trained} process{'es' if trained > 1 else ''}, this resume runs in "
            f"{world_size}; resume it {how}, or train a new run (another --out)"
        )


def side_record(side: SideInputs | None) -> dict:
    """What a fusion run's checkpoint keeps of its side inputs: their width (to build the model again),
    their columns and the settings of the tables they came from (to resume on the same ones)."""
    if side is None:
        return {"side_features": 0}
    settings = {modality: about.get("settings", {}) for modality, about in side.provenance.items()}
    return {"side_features": side.width, "side_columns": list(side.columns), "side_settings": settings}


def refuse_other_side_inputs(checkpoint: dict, side: SideInputs, run_dir: Path) -> None:
    """A fusion run resumes on the side inputs it started with: the newest feature tables may have been
    made since with other settings (more text components: another width, which the saved weights do not
    fit; a new extractor version: other values under the same names). A checkpoint of an earlier version
    did not say."""
    saved = side_record(side)
    for key, what in (("side_features", "width"), ("side_columns", "columns"), ("side_settings", "settings")):
        if key in checkpoint and checkpoint[key] != saved[key]:
            raise ConfigError(
                f"--resume: {run_dir} trained on side inputs of other {what} than the export's feature tables "
                f"now give ({_first_difference(checkpoint[key], saved[key])}); resume with the tables it started "
                "from, or train a new run (another --out)"
            )


def _first_difference(was, now) -> str:
    if isinstance(was, dict) and isinstance(now, dict):
        key = next(k for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k))
        return f"{key}: {was.get(key)!r} then, {now.get(key)!r} now"
    if isinstance(was, list) and isinstance(now, list):
        return f"{len(was)} then, {len(now)} now"
    return f"{was!r} then, {now!r} now"


def save_checkpoint(
    run_dir: Path,
    model: nn.Module,
    optimizer,
    scheduler,
    config: TrainConfig,
    state: dict,
    best: bool,
    *,
    device: torch.device,
    warmup=None,
) -> None:
    """Write history.csv, then last.pt (and best.pt when validation improved) atomically (``warmup``: the
    run's per-step warm-up schedule, when it has one).

    best.pt is a second name for the file just written, not a second save: each save is a new file
    renamed into place, so best.pt keeps its bytes when last.pt moves on.
    """
    payload = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "warmup": warmup.state_dict() if warmup is not None else None,
        "config": config.to_json(),
        **rng_state(device),
        **state,
    }
    # history.csv first: killed in between, it is one epoch ahead of last.pt, and the resume that runs
    # that epoch again writes it anew; written last, it could lag the checkpoint for good.
    # Through a scratch file too: a reader (the report, a plot) never sees a half-written table.
    with replacing(run_dir / "history.csv") as partial_history:
        pd.DataFrame(state["history"]).to_csv(partial_history, index=False)
    # Each file fsynced before its rename (:func:`replacing`): after a power cut a last.pt is a whole
    # checkpoint, never a name for bytes that had not reached the disk.
    with replacing(run_dir / "last.pt") as partial:
        torch.save(payload, partial)
        # best.pt first: killed between the two renames, last.pt is still the epoch before, whose resume
        # runs this epoch again; the other order left a last.pt naming as best an epoch best.pt never got.
        if best:
            with replacing(run_dir / "best.pt") as second:
                try:
                    os.link(partial, second)
                except OSError:  # a filesystem without hard links
                    shutil.copyfile(partial, second)


def new_run_state() -> dict[str, Any]:
    """A run's progress before its first epoch, as every checkpoint carries it."""
    return {
        "epoch": 0,
        "history": [],
        "best_val_loss": float("inf"),
        "best_epoch": 0,
        "stale_epochs": 0,
        "diverged_epoch": 0,  # the epoch whose loss went non-finite, 0 while none has
    }


def restore_run(checkpoint: dict, model: nn.Module, optimizer, scheduler, warmup, device: torch.device) -> dict:
    """Put a resumed run's weights, optimizer, schedules and generators back; returns its progress."""
    model.load_state_dict(checkpoint["model"])
    # A saved group would bring back the fused flag of the run that saved it (an earlier version's
    # unfused CPU run, a GPU run resumed on a device without fused Adam); the freshly built optimizer's
    # choice for this device stands, and loading places Adam's step counts by it.
    saved = checkpoint["optimizer"]
    groups = [{**old, "fused": new.get("fused")} for old, new in zip(saved["param_groups"], optimizer.param_groups)]
    optimizer.load_state_dict({**saved, "param_groups": groups})
    scheduler.load_state_dict(checkpoint["scheduler"])
    if warmup is not None:
        warmup.load_state_dict(checkpoint["warmup"])
    restore_rng(checkpoint, device)
    state = new_run_state()
    state |= {k: checkpoint[k] for k in state if k in checkpoint}
    if "best_epoch" not in checkpoint:  # a checkpoint of an earlier version
        state["best_epoch"] = min(state["history"], key=lambda h: h["val_loss"])["epoch"]
    return state


def rng_state(device: torch.device) -> dict:
    """The generators dropout draws from: the CPU's, and the GPU's on a GPU (seeding it again at resume
    would repeat the first epochs' dropout masks). Every rank starts from one seed, so rank 0's stands
    for all."""
    state = {"rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(checkpoint: dict, device: torch.device) -> None:
    """Put back what :func:`rng_state` saved (the GPU's only where a GPU run resumes on a GPU)."""
    torch.set_rng_state(checkpoint["rng"])
    if device.type == "cuda" and checkpoint.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)


def load_run_model(
    run_dir: Path, device: torch.device, checkpoint: str = "best.pt"
) -> tuple[ViralityModel | FusionModel, TrainConfig]:
    """The trained model of a run (best validation epoch by default) and its config."""
    path = Path(run_dir) / checkpoint
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a finished training run: no {checkpoint}")
    saved = read_checkpoint(path)
    config = TrainConfig.from_json(saved["config"])
    side_features = saved.get("side_features", 0)
    with torch.device("meta"):  # shapes only: a random init (0.2 s of the CPU) the saved weights replace
        model = build_model("none", side_features)
    model.load_state_dict(saved["model"], assign=True)
    return model.to(device).eval(), config
