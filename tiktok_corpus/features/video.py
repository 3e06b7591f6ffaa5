"""``video``: a frozen torchvision video backbone's penultimate embedding, averaged over K clips.

Clips come from the trainer's decode-once proxy cache through its own reader (the same pixels the
model trains on), K starts spread evenly over the video; several videos' clips share one forward pass
under ``torch.inference_mode()`` (no graph, no backward).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError
from ..train.data import build_cache, eval_start, normalize_clips, read_clip
from .columns import named
from .options import BACKBONES, FeatureOptions

VERSION = 1


def settings(options: FeatureOptions) -> dict:
    weights = options.weights
    if weights not in ("none", "kinetics400"):  # a file: its content, not its name, decides the output
        with open(weights, "rb") as handle:
            weights = "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
    return {
        "version": VERSION,
        "backbone": options.backbone,
        "weights": weights,
        "random_init": options.random_init,
        "clips": options.clips,
        "frames": options.frames,
        "size": options.size,
    }


def _state_dict(path: Path) -> dict:
    """A state dict from a weights file: bare, wrapped (``state_dict`` / ``model``), or a trained run's
    ``best.pt`` (whose backbone keys start with ``backbone.``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"{path} is not a weights file torch can load: {exc}") from exc
    while isinstance(state, dict) and any(k in state for k in ("state_dict", "model")):
        state = state.get("state_dict", state.get("model"))
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds no state dict")
    return {k.removeprefix("backbone."): v for k, v in state.items()}


def load_backbone(name: str, weights: str) -> tuple[nn.Module, int]:
    """The backbone without its classification head (Identity in its place) and the embedding size."""
    from torchvision.models import get_model, get_model_weights

    spec = BACKBONES[name]
    pretrained = get_model_weights(name).KINETICS400_V1 if weights == "kinetics400" else None
    model = get_model(name, weights=pretrained)
    setattr(model, spec.head, nn.Identity())
    if weights not in ("none", "kinetics400"):
        missing, _ = model.load_state_dict(_state_dict(Path(weights)), strict=False)  # the old head is dropped
        if missing:
            raise ConfigError(f"{weights} is not a {name} state dict: it lacks {', '.join(missing[:3])} ...")
    return model.eval(), spec.dim


def _device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but torch sees no CUDA device")
    return torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")


def _video_clips(proxy: Path, options: FeatureOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """The K evaluation clips of one proxy, uint8 (K, C, T, H, W), and their real frame counts."""
    read = [
        read_clip(proxy, options.frames, start=eval_start(proxy, options.frames, options.clips, clip_no))
        for clip_no in range(options.clips)
    ]
    return torch.stack([clip for clip, _ in read]), torch.tensor([valid for _, valid in read])


def _batches(
    pool: ThreadPoolExecutor, proxies: Sequence[Path], options: FeatureOptions
) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Videos' clips, a forward pass's worth at a time; the next batch is read while this one runs."""
    per_batch = max(1, options.batch_size // options.clips)
    chunks = [proxies[i : i + per_batch] for i in range(0, len(proxies), per_batch)]

    def submit(chunk: Sequence[Path]) -> list[Future]:
        return [pool.submit(_video_clips, proxy, options) for proxy in chunk]

    pending = submit(chunks[0]) if chunks else []
    for following in [*chunks[1:], None]:
        current, pending = pending, (submit(following) if following is not None else [])
        yield [future.result() for future in current]


def compute(export, options: FeatureOptions, advance: Callable[[int], None]) -> pd.DataFrame:
    """One row per video: the mean of its K clip embeddings, columns ``emb_000`` ...."""
    workers = options.workers or os.cpu_count() or 1
    proxy_of = build_cache(export, options.size, options.cache_dir, workers=workers, progress=False)
    proxies = [proxy_of[str(vid)] for vid in export.table["video_id"]]
    model, dim = load_backbone(options.backbone, options.weights)
    device = _device(options.device)
    model.to(device)
    embeddings = []
    with ThreadPoolExecutor(workers) as pool, torch.inference_mode():
        for batch in _batches(pool, proxies, options):
            clips = torch.cat([clips for clips, _ in batch]).to(device)
            valid = torch.cat([valid for _, valid in batch])
            output = model(normalize_clips(clips, valid)).float().cpu()
            embeddings.append(output.view(len(batch), options.clips, dim).mean(dim=1).numpy())
            advance(len(batch))
    values = np.concatenate(embeddings) if embeddings else np.zeros((0, dim))
    return named(pd.DataFrame(values, columns=[f"emb_{i:03d}" for i in range(dim)]), "video")
