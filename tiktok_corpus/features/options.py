"""Every option of ``corpus features`` and its summary, without importing torch (the CLI reads them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..config import described
from ..errors import ConfigError

MODALITIES = ("video", "audio", "text", "author", "time")
DEVICES = ("auto", "cpu", "cuda")  # auto: CUDA where torch sees it, else the CPU
DEFAULT_DEVICE = DEVICES[0]
DEVICE_HELP = " | ".join(DEVICES)


def check_device(name: str) -> None:
    """A ConfigError unless ``name`` is one of :data:`DEVICES` (before any model is built)."""
    if name not in DEVICES:
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {name!r}")


NAMED_WEIGHTS = ("none", "kinetics400")


class Backbone(NamedTuple):
    """A torchvision video classifier used frozen: the head to drop, the embedding it leaves, its input needs."""

    head: str  # the attribute holding the classification head (replaced by Identity)
    dim: int
    min_frames: int = 1
    min_size: int = 2
    exact_input: bool = False  # mvit_v2_s's position embeddings fix its input at min_frames x min_size


BACKBONES = {
    "r2plus1d_18": Backbone("fc", 512),
    "r3d_18": Backbone("fc", 512),
    "mc3_18": Backbone("fc", 512),
    "s3d": Backbone("classifier", 1024, min_frames=16, min_size=224),
    "mvit_v2_s": Backbone("head", 768, min_frames=16, min_size=224, exact_input=True),
    "swin3d_t": Backbone("head", 768),
}


@dataclass
class FeatureOptions:
    """Every option of ``corpus features``. The video defaults are for CPUs: the paper's 32-frame clip costs
    twice a 16-frame one per forward pass, so K=4 clips of 16 frames at the trainer's 112 px (its proxies are
    shared) see 64 frames per video for about the cost of two training clips' forward passes."""

    modalities: tuple[str, ...] = described(MODALITIES, "Modalities, comma-separated: " + ", ".join(MODALITIES) + ".")
    backbone: str = described("r2plus1d_18", "Frozen video backbone: " + ", ".join(BACKBONES) + ".")
    weights: str = described(
        "none", "Backbone weights: kinetics400 (torchvision's cache or download) | PATH | none (random: tests only)."
    )
    clips: int = described(4, "Clips per video (K), spread over it; their embeddings are averaged.")
    frames: int = described(16, "Consecutive frames per clip (16 on CPU; the paper trains on 32).")
    size: int = described(112, "Frame height and width (even; the trainer's proxies at this size are reused).")
    text_components: int = described(16, "TruncatedSVD dimensions of the caption+hashtag TF-IDF.")
    device: str = described(DEFAULT_DEVICE, f"{DEVICE_HELP} (the video backbone).")
    batch_size: int = described(8, "Clips per backbone forward pass.")
    workers: int | None = described(None, "Threads decoding videos and audio (default: cores).")
    cache_dir: Path | None = described(None, "Decoded-proxy cache (default EXPORT_DIR/cache, the trainer's).")
    progress: bool = field(default=True, compare=False)
    # Take the table the export already has for a modality (one of real weights before a random network's,
    # the newest first), whatever its settings but the ``pinned`` ones (settings a command was given, by
    # their names in a table's settings): `corpus train --model gbdt` uses what `corpus features` made.
    reuse_cached: bool = field(default=False, compare=False)
    pinned: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        self.modalities = parse_modalities(self.modalities)
        self.cache_dir = Path(self.cache_dir) if self.cache_dir else None
        for name in ("clips", "frames", "size", "text_components", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {self.workers}")
        if self.size % 2:
            raise ConfigError(f"--size must be even (H.264 4:2:0 proxies), got {self.size}")
        check_device(self.device)
        if self.weights not in NAMED_WEIGHTS and not Path(self.weights).is_file():
            raise ConfigError(f"--weights must be none, kinetics400 or a weights file; {self.weights} is none of them")
        self._check_backbone()

    def _check_backbone(self) -> None:
        spec = BACKBONES.get(self.backbone)
        if spec is None:
            raise ConfigError(f"unknown --backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        if "video" not in self.modalities:
            return
        if spec.exact_input and (self.frames, self.size) != (spec.min_frames, spec.min_size):
            raise ConfigError(
                f"{self.backbone} takes exactly {spec.min_frames} frames of {spec.min_size} px "
                f"(--frames {spec.min_frames} --size {spec.min_size})"
            )
        if self.frames < spec.min_frames or self.size < spec.min_size:
            raise ConfigError(
                f"{self.backbone} needs at least {spec.min_frames} frames of {spec.min_size} px "
                f"(--frames/--size), got {self.frames} x {self.size}"
            )

    @property
    def random_init(self) -> bool:
        """A video embedding from an untrained network: only good for tests, flagged in every output."""
        return self.weights == "none"


def parse_modalities(modalities: str | Sequence[str]) -> tuple[str, ...]:
    """``"audio, text"`` (or a sequence) -> ``("audio", "text")`` in :data:`MODALITIES` order; an
    unknown modality, or none, is a ConfigError."""
    asked = [m.strip() for m in (modalities.split(",") if isinstance(modalities, str) else modalities)]
    asked = [m for m in asked if m]
    check_modalities(asked)
    return tuple(m for m in MODALITIES if m in asked)


def check_modalities(modalities: Sequence[str]) -> None:
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities:
        raise ConfigError(
            f"unknown modality {', '.join(map(repr, unknown)) or '(none given)'}; choose from {', '.join(MODALITIES)}"
        )


@dataclass
class ModalityResult:
    """One modality's table: where it is cached, what it holds, whether this run computed it."""

    modality: str
    cache_file: Path
    columns: int
    seconds: float
    cache_hit: bool
    random_init: bool = False
    details: dict = field(default_factory=dict)  # the modality's own account of its table

    def to_dict(self) -> dict:
        return {
            "modality": self.modality,
            "cache_file": str(self.cache_file),
            "columns": self.columns,
            "seconds": round(self.seconds, 3),
            "cache_hit": self.cache_hit,
            "random_init": self.random_init,
            "details": self.details,
        }


@dataclass
class FeatureSummary:
    """What ``extract_features`` did: rows of the export, one result per modality."""

    export_dir: Path
    rows: int
    results: list[ModalityResult] = field(default_factory=list)

    @property
    def random_init(self) -> bool:
        return any(r.random_init for r in self.results)

    def to_dict(self) -> dict:
        return {
            "export_dir": str(self.export_dir),
            "rows": self.rows,
            "modalities": {r.modality: r.to_dict() for r in self.results},
            "random_init": self.random_init,
        }
