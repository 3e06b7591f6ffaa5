"""Every option of ``corpus train``, without importing torch (the CLI reads defaults and help from it)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path

from .._files import newest_written
from ..config import MAX_SEED, described
from ..errors import ConfigError
from ..export.runs import same_export, trained_on_export
from ..features.options import DEFAULT_DEVICE, DEVICE_HELP, MODALITIES, check_device, parse_modalities

# Options that may change when a run is resumed; everything else must match the saved config. Not --compile:
# a compiled run drops the training split's short last batch, so it decides which clips an epoch trains on.
RESUMABLE_OVERRIDES = ("epochs", "patience", "device", "amp", "cudnn_benchmark", "workers", "cache_dir")
MODELS = ("r2plus1d", "gbdt", "fusion")
FUSION_WITHOUT_SIDE = "--model fusion needs at least one modality besides video (see --modalities)"
# The options only one kind of model reads: the network's (r2plus1d, fusion) and LightGBM's (gbdt).
NETWORK_OPTIONS = (
    "epochs",
    "frames",
    "size",
    "batch_size",
    "lr",
    "lr_scaling",
    "warmup_epochs",
    "step_size",
    "gamma",
    "patience",
    "freeze_backbone",
    "amp",
    "compile",
    "cudnn_benchmark",
    "workers",
    "pos_weight",
    "balanced_sampling",
    "eval_clips",
    "cache_dir",
    "resume",  # a gbdt run is refitted in seconds: there is no epoch to go on from
)
GBDT_OPTIONS = ("rounds", "leaves", "boost_lr")


def options_unused_by(model: str) -> tuple[str, ...]:
    """The options ``model`` ignores: given anyway, they would be recorded in its config as if used
    (the paper's network sees pixels alone, no feature table of --modalities)."""
    if model == "gbdt":
        return NETWORK_OPTIONS
    return (*GBDT_OPTIONS, "modalities") if model == "r2plus1d" else GBDT_OPTIONS


# --lr-scaling: the factor on --lr for a global batch k times the paper's.
LR_SCALINGS: dict[str, Callable[[float], float]] = {"none": lambda k: 1.0, "linear": lambda k: k, "sqrt": math.sqrt}


@dataclass
class TrainConfig:
    """Every option of ``corpus train``; the defaults are the paper's."""

    export_dir: Path
    model: str = described(
        "r2plus1d",
        "r2plus1d: the paper's network on pixels | gbdt: LightGBM on the feature tables of --modalities | "
        "fusion: the paper's network with the other modalities' vectors joined before its head.",
    )
    modalities: str = described(",".join(MODALITIES), "Feature modalities for gbdt and fusion, comma-separated.")
    label: str | None = described(None, "binary (is_viral) | continuous (virality_score); default the export's.")
    rounds: int = described(2000, "gbdt: most boosting rounds (early stopping on val picks fewer).")
    leaves: int = described(4, "gbdt: leaves per tree (few: a corpus of thousands is small data).")
    boost_lr: float = described(0.03, "gbdt: learning rate (shrinkage) per round.")
    epochs: int = described(20, "Maximum epochs.")
    frames: int = described(32, "Consecutive frames per clip.")
    size: int = described(112, "Frame height and width (even).")
    batch_size: int = described(8, "Clips per batch (per process under torchrun).")
    lr: float = described(1e-3, "Adam learning rate (at the paper's batch of 8 clips; see --lr-scaling).")
    lr_scaling: str = described(
        "none",
        "Scale --lr with the global batch (--batch-size x processes) over the paper's 8 clips: none | linear "
        "(x k, Goyal et al.'s rule for SGD) | sqrt (x sqrt k, the usual rule for Adam).",
    )
    warmup_epochs: int = described(
        0,
        "Raise the learning rate linearly, step by step, from 1/steps of it to all of it over the first N "
        "epochs (Goyal et al.'s warm-up for large batches, with --lr-scaling); 0 = none, as in the paper.",
    )
    step_size: int = described(7, "StepLR: epochs between decays.")
    gamma: float = described(0.1, "StepLR: decay factor.")
    patience: int = described(5, "Early stopping: epochs without val improvement.")
    weights: str = described("none", "Backbone init: none | kinetics400 | PATH.")
    freeze_backbone: bool = described(False, "Train only the head.")
    device: str = described(DEFAULT_DEVICE, f"{DEVICE_HELP}.")
    amp: bool = described(False, "bf16 autocast (CUDA only).")
    compile: bool = described(False, "torch.compile the network (falls back to eager where it cannot compile).")
    cudnn_benchmark: bool = described(
        False,
        "CUDA: let cuDNN time its convolution algorithms and keep the fastest, instead of its deterministic "
        "ones (faster; runs are then not bit-for-bit repeatable).",
    )
    workers: int | None = described(None, "Data-loader workers (default: 0 on CPU, up to 8 on CUDA).")
    seed: int = described(0, "Seed of init, order, clip starts and dropout.")
    out: Path | None = described(None, "Run directory (default EXPORT_DIR/runs/<time>).")
    resume: bool = described(False, "Continue the run in --out (or the latest).")
    pos_weight: str = described("none", "BCE class weighting: auto | none.")
    balanced_sampling: bool = described(False, "Draw train clips with both classes equally likely.")
    eval_clips: int = described(1, "Evaluation clips per video (1 = centred).")
    cache_dir: Path | None = described(None, "Decoded-proxy cache (default EXPORT_DIR/cache).")
    progress: bool = field(default=True, compare=False)
    # The options given explicitly (on the command line), by field name; None: those that differ from
    # their defaults, and every one of RESUMABLE_OVERRIDES. With --resume, the overrides given replace the
    # saved run's values (the others keep them, not this config's defaults), and any other given option
    # must equal the saved one (check_resume).
    given_options: frozenset[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.export_dir = Path(self.export_dir)
        self.out = Path(self.out) if self.out else None
        self.cache_dir = Path(self.cache_dir) if self.cache_dir else None
        positive = {
            "epochs": self.epochs,
            "frames": self.frames,
            "size": self.size,
            "batch_size": self.batch_size,
            "step_size": self.step_size,
            "patience": self.patience,
            "eval_clips": self.eval_clips,
            "rounds": self.rounds,
            "leaves": self.leaves,
        }
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.size % 2:
            raise ConfigError(f"--size must be even, got {self.size}")
        if self.lr <= 0:
            raise ConfigError(f"--lr must be positive, got {self.lr:g}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"--gamma must be in (0, 1], got {self.gamma:g}")
        check_device(self.device)
        if self.pos_weight not in ("auto", "none"):
            raise ConfigError(f"--pos-weight must be auto or none, got {self.pos_weight!r}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError("--workers cannot be negative")
        if self.warmup_epochs < 0:
            raise ConfigError("--warmup-epochs cannot be negative")
        if self.model not in MODELS:
            raise ConfigError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.label not in (None, "binary", "continuous"):
            raise ConfigError(f"--label must be binary or continuous, got {self.label!r}")
        if self.lr_scaling not in LR_SCALINGS:
            raise ConfigError(f"--lr-scaling must be one of {', '.join(LR_SCALINGS)}, got {self.lr_scaling!r}")
        if self.boost_lr <= 0:
            raise ConfigError("--boost-lr must be positive")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed must be between 0 and {MAX_SEED}, got {self.seed}")
        self.modalities = ",".join(parse_modalities(self.modalities))
        if self.model == "fusion" and self.modality_list == ("video",):
            raise ConfigError(FUSION_WITHOUT_SIDE)

    @property
    def modality_list(self) -> tuple[str, ...]:
        return tuple(self.modalities.split(","))

    def scaled_lr(self, world_size: int = 1) -> float:
        """Adam's starting learning rate for this run: --lr scaled by how many times larger the global
        batch is than the paper's (more clips per step average out more noise, so a step may go further)."""
        return self.lr * LR_SCALINGS[self.lr_scaling](self.batch_size * world_size / PAPER_BATCH_SIZE)

    def to_json(self) -> dict:
        saved = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        del saved["given_options"]  # how this invocation was given, not part of the run
        return saved

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def explicit_options(self) -> frozenset[str]:
        """The options this config was given: ``given_options``, else those that differ from their defaults."""
        if self.given_options is not None:
            return self.given_options
        return frozenset(
            f.name for f in fields(self) if f.default is not MISSING and getattr(self, f.name) != f.default
        )


# What --resume does not compare field by field with the saved config: the export (compared as a resolved
# path), and what names the run or how this invocation shows it, not how it trains.
NOT_TRAINING_OPTIONS = ("export_dir", "out", "resume", "progress", "given_options")


def check_resume(config: TrainConfig, saved: TrainConfig, run_dir: Path) -> None:
    """Refuse a resume of ``saved`` (the run in ``run_dir``) that ``config`` asks to train otherwise than it
    would: on another export (a copy of its own is the same one), or with an option given explicitly that
    is not one of RESUMABLE_OVERRIDES and differs from the saved one (it would be dropped, and the run
    recorded as if it had not been)."""
    saved_export = trained_on_export(run_dir, saved.export_dir)
    if saved_export is None:  # nothing to compare the named export with: it may be another
        raise ConfigError(
            f"--resume: {run_dir} was trained on the export {saved.export_dir} (as named then), which is not "
            "found from here; resume from the folder it was trained in, or train a new run (another --out)"
        )
    if not same_export(saved_export, config.export_dir):
        raise ConfigError(
            f"--resume: {run_dir} trains on the export {saved_export.resolve()}, not "
            f"{Path(config.export_dir).resolve()}; name its export, or train a new run (another --out)"
        )
    given = config.explicit_options()
    kept = RESUMABLE_OVERRIDES + NOT_TRAINING_OPTIONS
    differing = [
        f.name
        for f in fields(config)
        if f.name in given and f.name not in kept and getattr(config, f.name) != getattr(saved, f.name)
    ]
    if differing:
        was = ", ".join(f"{_flag(name)} {_shown(getattr(saved, name))}" for name in differing)
        may = ", ".join(_flag(name) for name in RESUMABLE_OVERRIDES)
        raise ConfigError(
            f"--resume cannot change {', '.join(_flag(name) for name in differing)}: {run_dir} was trained with "
            f"{was}; leave them out (a resume may change only {may}) or train a new run (another --out)"
        )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown(value: object) -> str:
    """A saved option's value as the command line would give it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "unset"
    return f"{value:g}" if isinstance(value, float) else str(value)


# The batch the paper's --lr was tuned at: --batch-size's default, which --lr-scaling scales from.
PAPER_BATCH_SIZE: int = next(f.default for f in fields(TrainConfig) if f.name == "batch_size")  # type: ignore[assignment]


def run_dir_for(config: TrainConfig) -> Path:
    """``--out``, else the latest run with a checkpoint (``--resume``), else a new ``EXPORT/runs/<time>``."""
    if config.out:
        return config.out
    runs = config.export_dir / "runs"
    if config.resume:
        previous = newest_written(runs.glob("*/last.pt"))
        if previous is None:
            raise ConfigError(f"--resume: no run with a last.pt under {runs}; name one with --out")
        return previous.parent
    return runs / new_run_name()


def refuse_a_used_run_dir(run_dir: Path) -> None:
    """Refuse a new run in a folder that holds a finished run (metrics.json, written last) or one that
    ``--resume`` can take on (last.pt). Any other folder holds at most what a run stopped before its first
    checkpoint left (a gbdt run has none): nothing worth keeping, so the new run writes over it."""
    finished, resumable = (run_dir / "metrics.json").exists(), (run_dir / "last.pt").exists()
    if resumable:
        held = "a finished run" if finished else "an unfinished run (stopped before it wrote metrics.json)"
        to = "continue it (more --epochs)" if finished else "finish it"
        raise ConfigError(f"{run_dir} holds {held}; pass --resume to {to} or pick another --out")
    if finished:
        raise ConfigError(f"{run_dir} already holds a finished run; pick another --out")


def refuse_class_options_without_classes(config: TrainConfig, task: str) -> None:
    """--pos-weight auto and --balanced-sampling weigh viral against not viral: on the continuous label
    there are no classes, and the run's config would record them as if used."""
    if task != "continuous":
        return
    for given, flag in (
        (config.pos_weight != "none", "--pos-weight auto"),
        (config.balanced_sampling, "--balanced-sampling"),
    ):
        if given:
            raise ConfigError(f"{flag} weighs the two classes of the binary label; this run's label is continuous")


def new_run_name(now: datetime | None = None) -> str:
    """A new run's folder name: its start in local time to the microsecond, ``20261206-031900-123456``.
    Names sort by time, after the runs named to the second before (also local time), and two runs
    started in one second (a script's seeds in parallel) never share a folder."""
    return (now or datetime.now()).strftime("%Y%m%d-%H%M%S-%f")
