"""The network's inputs: clips cut from the proxies, normalised on the device, and served to a DataLoader.

A clip's start depends only on the video's length and a seed (training) or the clip's number
(evaluation), so any worker layout draws the same clips, and evaluation, the video features and
``corpus predict`` read the same frames. Only uint8 crosses the host-device link: normalisation runs
on the training device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .._files import media_path
from ..errors import MediaError

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def clip_starts(n_frames: int, clip_frames: int, n_clips: int) -> list[int]:
    """Evaluation clip starts: one centred clip, or ``n_clips`` spread uniformly over the video."""
    room = max(0, n_frames - clip_frames)
    if n_clips == 1:
        return [room // 2]
    return [int(round(x)) for x in np.linspace(0, room, n_clips)]


def random_start(n_frames: int, clip_frames: int, seed: Sequence[int]) -> int:
    """Training clip start, drawn from ``seed`` alone so any worker layout gives the same clip."""
    room = max(0, n_frames - clip_frames)
    return int(np.random.default_rng(list(seed)).integers(0, room + 1))


def read_clip(
    proxy: Path, clip_frames: int, start: int | None = None, seed: Sequence[int] | None = None
) -> tuple[torch.Tensor, int]:
    """``clip_frames`` consecutive frames as uint8 (C, T, H, W), zero-padded in time; and how many are real.

    Give ``start`` (or ``-1`` for the centred clip) or a ``seed`` for a random start.
    """
    from torchcodec.decoders import VideoDecoder

    try:
        decoder = VideoDecoder(media_path(proxy), seek_mode="exact", num_ffmpeg_threads=1)
        n_frames = len(decoder)
        if seed is not None:
            start = random_start(n_frames, clip_frames, seed)
        elif start is None or start < 0:
            start = clip_starts(n_frames, clip_frames, 1)[0]
        frames = decoder.get_frames_in_range(start, min(n_frames, start + clip_frames)).data
    except (RuntimeError, ValueError) as exc:
        raise MediaError(f"{proxy}: cannot read frames ({exc})") from exc
    valid = frames.shape[0]
    if valid < clip_frames:
        frames = torch.cat([frames, frames.new_zeros((clip_frames - valid, *frames.shape[1:]))])
    return frames.permute(1, 0, 2, 3).contiguous(), valid


def eval_start(proxy: Path, clip_frames: int, eval_clips: int, clip_no: int) -> int:
    """Start of evaluation clip ``clip_no``; ``-1`` (centred, resolved by :func:`read_clip`) for one clip."""
    if eval_clips == 1:
        return -1
    from torchcodec.decoders import VideoDecoder

    try:
        n_frames = len(VideoDecoder(media_path(proxy), seek_mode="exact"))
    except (RuntimeError, ValueError) as exc:
        raise MediaError(f"{proxy}: cannot read frames ({exc})") from exc
    return clip_starts(n_frames, clip_frames, eval_clips)[clip_no]


def normalize_clips(clips: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, T, H, W) -> Kinetics-normalised float; frames past ``valid`` are zero (padding).

    Runs on the training device, so only uint8 crosses the host-device link.
    """
    scaled = clips.float() / 255.0
    mean, std = _kinetics_stats(scaled.device, scaled.dtype)
    normed = (scaled - mean) / std
    in_clip = torch.arange(clips.shape[2], device=clips.device).view(1, 1, -1, 1, 1)
    return normed * (in_clip < valid.to(clips.device, non_blocking=True).view(-1, 1, 1, 1, 1))


@functools.cache
def _kinetics_stats(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The Kinetics mean and std as (1, 3, 1, 1, 1) tensors, made once per device and dtype: a tensor
    built from Python floats on a GPU is a copy from the host that waits on the GPU, at every step."""
    mean = torch.tensor(KINETICS_MEAN, device=device, dtype=dtype).view(1, 3, 1, 1, 1)
    std = torch.tensor(KINETICS_STD, device=device, dtype=dtype).view(1, 3, 1, 1, 1)
    return mean, std


class ClipKey(NamedTuple):
    """What a sampler asks for: a row, and either a random-start seed or an evaluation clip number."""

    index: int  # type: ignore[assignment]  # the row number; shadows tuple.index, which nothing calls
    seed: tuple[int, ...] | None = None
    clip_no: int = 0


class ClipDataset(Dataset):
    """Rows of one split, read from their proxies; items are ``(clip, valid, target, index, side)``.

    ``side`` is the row's vector of other modalities for the fusion model (an empty vector otherwise).
    """

    def __init__(
        self,
        proxies: Sequence[Path],
        targets: Sequence[float],
        clip_frames: int,
        eval_clips: int = 1,
        side: np.ndarray | None = None,
    ) -> None:
        self.proxies = list(proxies)
        self.targets = torch.tensor(np.asarray(targets, dtype=np.float32))
        self.clip_frames = clip_frames
        self.eval_clips = eval_clips
        empty = np.zeros((len(self.proxies), 0), dtype=np.float32)
        self.side = torch.from_numpy(np.asarray(side if side is not None else empty, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.proxies)

    def __getitem__(self, key: ClipKey):
        proxy = self.proxies[key.index]
        if key.seed is not None:
            clip, valid = read_clip(proxy, self.clip_frames, seed=key.seed)
        else:
            start = eval_start(proxy, self.clip_frames, self.eval_clips, key.clip_no)
            clip, valid = read_clip(proxy, self.clip_frames, start=start)
        return clip, valid, self.targets[key.index], key.index, self.side[key.index]


class EpochSampler(Sampler[ClipKey]):
    """Per-epoch order and clip seeds, derived from (seed, epoch) only: resumable and worker-independent.

    ``train`` shuffles and gives each item a random-start seed; ``balanced`` draws rows with replacement,
    each class equally likely; under DDP each rank takes every ``world_size``-th item of the same order.
    """

    def __init__(
        self,
        labels: Sequence[float],
        *,
        seed: int,
        train: bool,
        balanced: bool = False,
        eval_clips: int = 1,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.labels = np.asarray(labels)
        self.seed, self.train, self.balanced = seed, train, balanced
        self.eval_clips, self.rank, self.world_size = eval_clips, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[ClipKey]:
        n = len(self.labels)
        if not self.train:
            return [ClipKey(i, None, c) for i in range(n) for c in range(self.eval_clips)]
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.balanced:
            classes, counts = np.unique(self.labels, return_counts=True)
            weight = {c: 1.0 / k for c, k in zip(classes, counts)}
            p = np.array([weight[x] for x in self.labels])
            rows = rng.choice(n, size=n, replace=True, p=p / p.sum())
        else:
            rows = rng.permutation(n)
        return [ClipKey(int(i), (self.seed, self.epoch, position), 0) for position, i in enumerate(rows)]

    def __iter__(self) -> Iterator[ClipKey]:
        order = self._order()
        if self.train and self.world_size > 1:  # wrapped round so every rank takes as many steps
            order = (order * self.world_size)[: len(self) * self.world_size]
        return iter(order[self.rank :: self.world_size])

    def __len__(self) -> int:
        """Training: as many items on every rank (DDP's steps all-reduce together; the last ones wrap
        round to the first). Evaluation: each item once over all ranks, so the validation loss, summed
        across them, counts no clip twice."""
        total = len(self.labels) * (1 if self.train else self.eval_clips)
        if self.train:
            return math.ceil(total / self.world_size)
        return len(range(self.rank, total, self.world_size))


def collate_clips(batch):
    clips, valid, targets, index, side = zip(*batch)
    return torch.stack(clips), torch.tensor(valid), torch.stack(targets), torch.tensor(index), torch.stack(side)
