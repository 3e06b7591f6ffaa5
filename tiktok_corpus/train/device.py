"""Which torch device a process computes on, and seeding every RNG for a reproducible run.

Training, ``corpus predict`` and the video features all pick their device here, so none of them
imports the training loop for it, and ``--device`` means the same thing everywhere.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from ..errors import ConfigError
from ..features.options import check_device


def resolve_device(name: str, gpu: int = 0) -> torch.device:
    """The torch device ``name`` (auto, cpu or cuda) means here; a ConfigError for an unknown name, or for
    CUDA where torch sees none."""
    check_device(name)
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but no CUDA device is available")
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", gpu)
    return torch.device("cpu")


def seed_everything(seed: int, *, cudnn_benchmark: bool = False) -> None:
    """Seed every RNG; cuDNN runs its deterministic algorithms unless the run chose its timed fastest."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = not cudnn_benchmark
    torch.backends.cudnn.benchmark = cudnn_benchmark
