"""The paper's model: torchvision's R(2+1)D-18 with a three-layer MLP head and one sigmoid output."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError

BACKBONE_FEATURES = 512


def virality_head(in_features: int = BACKBONE_FEATURES) -> nn.Sequential:
    """Linear(512, 512), ReLU, Dropout(0.5), Linear(512, 128), ReLU, Dropout(0.5), Linear(128, 1).

    The fusion model widens only the first layer's input (the backbone's 512 plus its side vector).
    """
    return nn.Sequential(
        nn.Linear(in_features, 512),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(512, 128),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(128, 1),
    )


class _OnBackbone(nn.Module):
    """A model on the R(2+1)D-18 ``backbone`` whose backbone can be frozen."""

    backbone: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self.frozen = False

    def freeze_backbone(self) -> None:
        """Train only the head (useful with Kinetics weights and little data): the backbone's weights take no
        gradient, and its BatchNorm layers keep their running statistics, which in train mode would move
        with every batch of the new data."""
        for name, parameter in self.backbone.named_parameters():
            parameter.requires_grad = name.startswith("fc.")  # the paper's head sits at the backbone's fc
        self.frozen = True
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            for name, part in self.backbone.named_children():
                if name != "fc":
                    part.eval()
        return self


class ViralityModel(_OnBackbone):
    """R(2+1)D-18 + head. ``forward`` returns logits (B,); ``sigmoid`` of them is the model's output.

    Logits rather than probabilities leave the network so BCE can be computed stably
    (``BCEWithLogitsLoss`` is BCE on the sigmoid output, without its overflow).
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        backbone.fc = virality_head()
        self.backbone = backbone

    @property
    def head(self) -> nn.Sequential:
        head = self.backbone.fc
        assert isinstance(head, nn.Sequential)
        return head

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.backbone(clips).squeeze(1)


class FusionModel(_OnBackbone):
    """The paper's network with the other modalities' vector joined to the backbone's 512 before its head.

    Trained end to end like the paper's model; ``forward(clips, side)`` returns logits (B,).
    """

    def __init__(self, backbone: nn.Module, side_features: int) -> None:
        super().__init__()
        backbone.fc = nn.Identity()
        self.backbone = backbone
        # The side vectors arrive standardised; the embedding is brought to the same scale, so neither
        # part drowns the other at the head's input (a random-init backbone's can be orders larger).
        self.embedding_norm = nn.LayerNorm(BACKBONE_FEATURES, elementwise_affine=False)
        self.head = virality_head(BACKBONE_FEATURES + side_features)

    def forward(self, clips: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        embedding = self.embedding_norm(self.backbone(clips))
        return self.head(torch.cat([embedding, side.to(embedding.dtype)], dim=1)).squeeze(1)


def build_model(weights: str = "none", side_features: int = 0) -> ViralityModel | FusionModel:
    """The paper's model, or with ``side_features`` the fusion model, on an R(2+1)D-18 backbone with
    ``none`` (random init), ``kinetics400`` (torchvision download) or a path to those weights offline."""
    backbone = _backbone(weights)
    return FusionModel(backbone, side_features) if side_features else ViralityModel(backbone)


@contextmanager
def downloading_weights(name: str) -> Iterator[None]:
    """torchvision fetches pretrained weights on first use: where it cannot (offline), one line that says
    how to give them instead of urllib's traceback. torch's hub tells of the download on stdout, which
    ``--json`` keeps for its one document: to stderr."""
    try:
        with redirect_stdout(sys.stderr):
            yield
    except OSError as exc:  # URLError, a refused connection, a failed name lookup
        raise ConfigError(
            f"cannot download the kinetics400 weights of {name} ({exc}): put the file in torch's cache "
            f"({torch.hub.get_dir()}/checkpoints) or pass its path with --weights PATH"
        ) from None


def _backbone(weights: str) -> nn.Module:
    from torchvision.models.video import R2Plus1D_18_Weights, r2plus1d_18

    if weights == "none":
        return r2plus1d_18(weights=None)
    if weights == "kinetics400":
        with downloading_weights("r2plus1d_18"):
            return r2plus1d_18(weights=R2Plus1D_18_Weights.KINETICS400_V1)
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"--weights must be none, kinetics400 or a weights file; {weights} is none of them")
    backbone = r2plus1d_18(weights=None)
    state = load_weights(path)
    try:
        fit = backbone.load_state_dict(
            state.get("state_dict", state) if isinstance(state, dict) else state, strict=False
        )
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:  # a weight of another shape
        reasons = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()] or [_first_line(exc)]
        raise ConfigError(f"{path} is not an R(2+1)D-18 state dict: {'; '.join(reasons)[:400]}") from None
    if fit.missing_keys or fit.unexpected_keys:  # torch's own error named none of them on its first line
        raise ConfigError(
            f"{path} is not an R(2+1)D-18 state dict: {_some(fit.missing_keys)} of its weights missing, "
            f"{_some(fit.unexpected_keys)} it does not have"
        )
    return backbone


def _some(names: list[str]) -> str:
    """How many names, and the first three: ``2 (fc.weight, fc.bias)``."""
    return f"{len(names)} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})" if names else "none"


def load_weights(path: Path) -> object:
    """What a ``--weights`` file holds; ConfigError in one line where torch cannot read it (junk, or a
    download cut short: an empty file's EOFError read as click's own "Aborted.")."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"{path} is not a weights file torch can load: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    """An exception's first line (torch's weights_only errors run to a page)."""
    return next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def compiled(model: nn.Module) -> nn.Module:
    """``torch.compile`` with Dynamo's own fallback: a graph it cannot compile runs eagerly, with a warning."""
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    optimized = torch.compile(model)
    assert isinstance(optimized, nn.Module)  # compiling a module gives a module (OptimizedModule)
    return optimized
