"""Training inputs: the export table, the decoded-once proxy cache, and clip sampling.

Decoding a full-resolution original for every clip costs ~270 ms; the paper's model only ever sees
``size x size`` frames. So each video is decoded *once* into a proxy: an H.264 file already resized to
``size x size`` with a keyframe every :data:`PROXY_GOP` frames and no B-frames, so reading any 32
consecutive frames decodes at most ``32 + PROXY_GOP`` tiny frames. Proxies are keyed by the original's
sha256 and the size, live beside the export (or in ``--cache-dir``) and are reused by every run.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import ffmpeg
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from .._files import fsync_path, sha256_file
from .._waits import wait_first
from ..errors import ConfigError, MediaError
from ..export import GROWTH_COLUMNS, LABEL_COLUMNS, read_export

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
PROXY_GOP = 8
PROXY_VERSION = "v1"  # bump when the proxy encoding changes, so stale caches are never reused
FFMPEG_TIMEOUT_S = 300
REQUIRED_COLUMNS = ("video_id", "file", "split")


@dataclass(frozen=True)
class Export:
    """One export directory: its manifest, its table and the training task it defines."""

    root: Path
    manifest: dict
    table: pd.DataFrame

    @property
    def task(self) -> str:
        """``binary`` (BCE on is_viral) or ``continuous`` (MSE on virality_score)."""
        return self.manifest["label"]

    @property
    def target_column(self) -> str:
        return LABEL_COLUMNS[self.task]

    def split(self, name: str) -> pd.DataFrame:
        return self.table[self.table["split"] == name].reset_index(drop=True)


def load_export(root: Path, *, label: str | None = None) -> Export:
    """Read ``manifest.json`` and ``videos.parquet`` (or ``videos.csv``), checking what training needs.

    ``label`` (``--label``): train on that label instead of the one the export was made for (an export
    carries both label columns).
    """
    root = Path(root)
    manifest, table = read_export(root)
    if label is not None:
        manifest = {**manifest, "label": label}
    if manifest.get("label") not in LABEL_COLUMNS:
        raise ConfigError(
            f"{root / 'manifest.json'}: label must be one of {sorted(LABEL_COLUMNS)}, got {manifest.get('label')!r}"
        )
    missing = [c for c in (*REQUIRED_COLUMNS, LABEL_COLUMNS[manifest["label"]]) if c not in table.columns]
    if missing:
        raise ConfigError(f"{root}: the video table lacks column(s) {', '.join(missing)}")
    table = table.copy()
    table["video_id"] = table["video_id"].astype(str)
    for name in ("train", "val", "test"):
        if not (table["split"] == name).any():
            raise ConfigError(f"{root}: the {name!r} split is empty; training needs train, val and test")
    return Export(root=root, manifest=manifest, table=table)


# --- the proxy cache ----------------------------------------------------------------------------


def proxy_dir(cache_root: Path, size: int) -> Path:
    return Path(cache_root) / f"proxies-{PROXY_VERSION}-{size}px"


def encode_proxy(source: Path, target: Path, size: int) -> Path:
    """Decode ``source`` once and write a ``size x size`` short-GOP proxy to ``target`` (atomically).

    Single-threaded x264 keeps the output byte-identical for the same input, so training, evaluation
    and ``corpus predict`` see exactly the same pixels. Only the first video stream is mapped (out of the
    filter graph), so the proxy keeps none of the original's audio, subtitles or stream tags.
    """
    if size % 2:
        raise ConfigError(f"--size must be even (H.264 4:2:0), got {size}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    from ..media import FFMPEG, run_tool  # here, not at the top: training from a built cache needs no PyAV

    command = (
        ffmpeg.input(str(source), threads=1)["v:0"]
        .filter("scale", size, size, flags="area")
        .filter("format", "yuv420p")
        .output(
            str(partial),
            **{"c:v": "libx264"},
            preset="veryfast",
            crf=20,
            threads=1,
            g=PROXY_GOP,
            keyint_min=PROXY_GOP,
            sc_threshold=0,
            bf=0,
            format="mp4",
        )
        .global_args("-nostdin", "-v", "error")
        .compile(cmd=FFMPEG, overwrite_output=True)
    )
    try:
        run_tool(command, timeout=FFMPEG_TIMEOUT_S, what=f"decode {source}")
        if not partial.is_file() or partial.stat().st_size == 0:
            raise MediaError(f"{source}: cannot decode (no video frames)")
    except MediaError as exc:  # an input ffmpeg cannot decode is a corrupt video (timeouts stay timeouts)
        partial.unlink(missing_ok=True)
        raise MediaError(exc.message, kind="timeout" if exc.kind == "timeout" else "corrupt") from None
    fsync_path(partial)
    partial.replace(target)
    return target


def build_cache(
    export: Export, size: int, cache_root: Path | None = None, workers: int | None = None, progress: bool = True
) -> dict[str, Path]:
    """Make sure every video of the export has its proxy; returns ``video_id -> proxy path``.

    Proxies already present are reused (the key is the original's sha256, so a re-export of the same
    file shares them). Undecodable originals are reported together in one :class:`MediaError` after
    all the others were built, so a rerun only redoes what failed.
    """
    directory = proxy_dir(cache_root or export.root / "cache", size)
    jobs: dict[str, tuple[Path, Path]] = {}
    for row in export.table.itertuples(index=False):
        source = export.root / str(row.file)
        if not source.is_file():
            raise ConfigError(f"{export.root}: video {row.video_id} has no file at {row.file}")
        digest = getattr(row, "sha256", None)
        digest = digest if isinstance(digest, str) and digest else sha256_file(source)[1]
        jobs[str(row.video_id)] = (source, directory / f"{digest}.mp4")
    # One job per proxy: byte-identical originals (reposts) share one, and two encoders writing the
    # same ``.part`` file would race (one renames it away under the other).
    todo = {dst: src for src, dst in jobs.values() if not dst.is_file()}
    failures: list[str] = []
    if todo:
        from rich.console import Console
        from rich.progress import Progress

        with (
            Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar,
            ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool,
        ):
            task = bar.add_task(f"decoding {len(todo)} videos into {size}px proxies", total=len(todo))
            pending = {pool.submit(encode_proxy, src, dst, size) for dst, src in todo.items()}
            try:
                while pending:
                    finished, pending = wait_first(pending)
                    for future in finished:
                        try:
                            future.result()
                        except MediaError as exc:
                            failures.append(exc.message)
                        bar.advance(task)
            except BaseException:
                for future in pending:  # Ctrl-C: the proxies being made finish, no new one starts
                    future.cancel()
                raise
    if failures:
        raise MediaError(f"{len(failures)} video(s) could not be decoded: " + "; ".join(failures[:5]))
    return {vid: dst for vid, (_, dst) in jobs.items()}


# --- clips --------------------------------------------------------------------------------------


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
        decoder = VideoDecoder(str(proxy), seek_mode="exact", num_ffmpeg_threads=1)
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
        n_frames = len(VideoDecoder(str(proxy), seek_mode="exact"))
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
        per_rank = math.ceil(len(order) / self.world_size)
        order = (order * self.world_size)[: per_rank * self.world_size] if self.world_size > 1 else order
        return iter(order[self.rank :: self.world_size])

    def __len__(self) -> int:
        total = len(self.labels) * (1 if self.train else self.eval_clips)
        return math.ceil(total / self.world_size)


def collate_clips(batch):
    clips, valid, targets, index, side = zip(*batch)
    return torch.stack(clips), torch.tensor(valid), torch.stack(targets), torch.tensor(index), torch.stack(side)


# --- baseline features (metadata-only and early-views baselines) -------------------------------


def _hashtag_count(value) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return len(json.loads(text))
            except ValueError:
                pass
        return len([t for t in text.replace("#", " ").replace(",", " ").split() if t])
    return len(value)


def metadata_features(table: pd.DataFrame) -> np.ndarray:
    """log1p(followers), duration, caption length, hashtag count: what a model sees without pixels.

    Unknown followers (an export at a moment where the author had no count by then, or a table without
    the column) stay NaN: the baseline imputes them from the train split.
    """

    def column(name, default=0.0):
        return (
            pd.to_numeric(table[name], errors="coerce").fillna(default)
            if name in table
            else pd.Series(default, index=table.index)
        )

    desc = table["desc"].fillna("").astype(str) if "desc" in table else pd.Series("", index=table.index)
    hashtags = table["hashtags"] if "hashtags" in table else pd.Series([None] * len(table), index=table.index)
    return np.column_stack(
        [
            np.log1p(column("follower_count", default=np.nan).clip(lower=0)),
            column("duration_s"),
            desc.str.len(),
            [_hashtag_count(v) for v in hashtags],
        ]
    ).astype(np.float64)


def growth_features(export: Export) -> dict[str, pd.DataFrame] | None:
    """Per split, the early-views baseline's inputs: log1p(plays at each early age) and the growth rates.

    ``None`` when the export has no ``play_count_at_*`` column (made without ``--at-age``). Missing
    values stay NaN: the baseline imputes them from the train split.
    """
    table = export.table
    present = [name for name in GROWTH_COLUMNS if name in table]
    early_counts = [name for name in present if name.startswith("play_count_at_")]
    if not early_counts:
        return None
    values = table[present].apply(pd.to_numeric, errors="coerce").astype("float64")
    values[early_counts] = np.log1p(values[early_counts].clip(lower=0))
    return {name: values[table["split"] == name].reset_index(drop=True) for name in ("train", "val", "test")}
