"""``video``: a frozen torchvision video backbone's penultimate embedding, averaged over K clips, and
the frames' low-level statistics.

Clips come from the trainer's decode-once proxy cache through its own reader (the same pixels the
model trains on), K starts spread evenly over the video; several videos' clips share one forward pass
under ``torch.inference_mode()`` (no graph, no backward). Beside the embedding, the statistics that
popularity studies read off frames directly: brightness and contrast (luma mean and spread), the
colour means, colourfulness (Hasler and Suesstrunk's) and motion (the mean change between frames).
They cost nothing next to the forward pass and stay meaningful when the backbone has no trained
weights, where the embedding is only a random projection.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._waits import result_of
from ..errors import ConfigError
from ..export import read_export
from ..export.runs import trained_on_export
from ..train.clips import eval_start, normalize_clips, read_clip
from ..train.device import resolve_device
from ..train.model import downloading_weights, load_weights
from ..train.proxies import build_cache
from .cache import TableParts
from .columns import named
from .options import BACKBONES, FeatureOptions

VERSION = 2  # 2: the frame statistics beside the embedding
RANDOM_INIT_SEED = 0  # `--weights none`: the same random projection on every run, so tables reproduce
ROWS_PER_PART = 256  # videos embedded between two saves of the rows made (what a Ctrl-C may lose)
FRAME_STATISTICS = ("luma_mean", "luma_std", "red_mean", "green_mean", "blue_mean", "colourfulness", "motion")


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
    state = load_weights(path)
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
    with torch.random.fork_rng(devices=[]):  # a random init is always the same one, the caller's RNG untouched
        torch.manual_seed(RANDOM_INIT_SEED)
        with downloading_weights(name):
            model = get_model(name, weights=pretrained)
    setattr(model, spec.head, nn.Identity())
    if weights not in ("none", "kinetics400"):
        missing, _ = model.load_state_dict(_state_dict(Path(weights)), strict=False)  # the old head is dropped
        if missing:
            raise ConfigError(f"{weights} is not a {name} state dict: it lacks {', '.join(missing[:3])} ...")
    return model.eval(), spec.dim


def _refuse_a_network_that_learned_judged_videos(export, weights: str) -> None:
    """A trained run's ``best.pt`` names the export it learned from. Where that export's train videos
    include this one's val or test videos, their embeddings are the network's fit to their labels, and
    the trees would be tuned and judged on videos the network learned (a run of another export, or of
    another split seed): refused, saying how many. A run of this export learned its train videos only."""
    if weights in ("none", "kinetics400"):
        return
    saved = load_weights(Path(weights))
    config = saved.get("config") if isinstance(saved, dict) else None
    if not isinstance(config, dict) or not config.get("export_dir"):
        return  # bare weights: nothing says what they learned from
    learned_on = trained_on_export(Path(weights).parent, config["export_dir"])
    if learned_on is None:
        raise ConfigError(
            f"{weights} is a run trained on {config['export_dir']}, which is not there: nothing shows that its "
            "training videos are not this export's val or test videos (give that export back, or other weights)"
        )
    _, learned = read_export(learned_on)
    learned_ids = set(learned.loc[learned["split"] == "train", "video_id"].astype(str))
    judged = export.table.loc[export.table["split"] != "train", "video_id"].astype(str)
    if overlap := int(judged.isin(learned_ids).sum()):
        raise ConfigError(
            f"{weights} was trained on {overlap} of this export's val and test videos (its export {learned_on}): "
            "their embeddings would be its fit to their labels; use a run of this export's split, or other weights"
        )


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
    try:
        for following in [*chunks[1:], None]:
            current, pending = pending, (submit(following) if following is not None else [])
            yield [result_of(future) for future in current]
    finally:  # stopped early (an error, Ctrl-C): the next batch's reads that have not started never will
        for future in pending:
            future.cancel()


def compute(export, options: FeatureOptions, advance: Callable[[int], None], parts: TableParts) -> pd.DataFrame:
    """One row per video: the mean of its K clip embeddings, columns ``emb_000`` ...; the rows made are
    kept in ``parts`` every :data:`ROWS_PER_PART` videos, and a run stopped before goes on from them."""
    workers = options.workers or os.cpu_count() or 1
    _refuse_a_network_that_learned_judged_videos(export, options.weights)  # before minutes of decoding
    proxy_of = build_cache(export, options.size, options.cache_dir, workers=workers, progress=False)
    proxies = [proxy_of[str(vid)] for vid in export.table["video_id"]]
    model, dim = load_backbone(options.backbone, options.weights)
    columns = [f"emb_{i:03d}" for i in range(dim)] + list(FRAME_STATISTICS)
    embeddings = [parts.done(len(columns))]
    advance(len(embeddings[0]))
    device = resolve_device(options.device)
    model.to(device)
    unsaved: list[np.ndarray] = []
    with ThreadPoolExecutor(workers) as pool, torch.inference_mode():
        for batch in _batches(pool, proxies[parts.saved :], options):
            clips = torch.cat([clips for clips, _ in batch]).to(device)
            valid = torch.cat([valid for _, valid in batch])
            output = model(normalize_clips(clips, valid)).float().cpu()
            embedding = output.view(len(batch), options.clips, dim).mean(dim=1).numpy()
            statistics = frame_statistics(clips.cpu(), valid).view(len(batch), options.clips, -1).mean(dim=1)
            unsaved.append(np.hstack([embedding, statistics.numpy()]))
            if sum(map(len, unsaved)) >= ROWS_PER_PART:
                embeddings.append(parts.save(np.concatenate(unsaved)))
                unsaved = []
            advance(len(batch))
    if unsaved:
        embeddings.append(parts.save(np.concatenate(unsaved)))
    return named(pd.DataFrame(np.concatenate(embeddings), columns=columns), "video")


def frame_statistics(clips: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per clip (uint8 ``(N, C, T, H, W)``, ``valid`` real frames each), :data:`FRAME_STATISTICS` over
    its real frames: luma mean and spread, RGB means, colourfulness, mean absolute change between frames."""
    rgb = clips.float() / 255.0
    frames = torch.arange(clips.shape[2]).view(1, -1)
    real = (frames < valid.view(-1, 1)).float()  # (N, T)
    count = real.sum(dim=1).clamp(min=1)

    def over_frames(values: torch.Tensor) -> torch.Tensor:  # (N, T) -> (N,), real frames only
        return (values * real).sum(dim=1) / count

    red, green, blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    opponent_rg, opponent_yb = red - green, 0.5 * (red + green) - blue
    colourfulness = torch.sqrt(opponent_rg.var(dim=(2, 3)) + opponent_yb.var(dim=(2, 3))) + 0.3 * torch.sqrt(
        opponent_rg.mean(dim=(2, 3)) ** 2 + opponent_yb.mean(dim=(2, 3)) ** 2
    )
    change = (luma[:, 1:] - luma[:, :-1]).abs().mean(dim=(2, 3))  # (N, T-1): frame t+1 against frame t
    pairs = real[:, 1:] * real[:, :-1]
    motion = (change * pairs).sum(dim=1) / pairs.sum(dim=1).clamp(min=1)
    return torch.stack(
        [
            over_frames(luma.mean(dim=(2, 3))),
            over_frames(luma.std(dim=(2, 3))),
            over_frames(red.mean(dim=(2, 3))),
            over_frames(green.mean(dim=(2, 3))),
            over_frames(blue.mean(dim=(2, 3))),
            over_frames(colourfulness),
            motion,
        ],
        dim=1,
    )
