"""Training-input clips per second: the decoded-once proxy cache vs decoding the originals per clip.

Baseline (same run): open the TikTok-sized original with TorchCodec, decode 32 consecutive frames at a
random start and resize them to 112x112 - what a naive Dataset does for every clip. Candidate: the
same clip read from the 112x112 short-GOP proxy. Also prints the cache's size against the originals'.

    .venv/bin/python bench/bench_train_data.py [--videos 4] [--seconds 8] [--clips 24]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ffmpeg
import pandas as pd
import torch
import torch.nn.functional as F

from tiktok_corpus.train.clips import random_start, read_clip
from tiktok_corpus.train.export_table import Export
from tiktok_corpus.train.proxies import build_cache

FRAMES, SIZE = 32, 112


def make_original(path: Path, seconds: int, seed: int) -> None:
    """A 576x1024 (9:16), 30 fps, ~1.5 Mbit/s H.264 file: TikTok's usual shape and bitrate."""
    source = f"testsrc2=s=576x1024:r=30:d={seconds},hue=h={seed * 40},noise=alls=8:allf=t"
    encode = {"c:v": "libx264", "preset": "veryfast", "b:v": "1500k", "pix_fmt": "yuv420p"}
    ffmpeg.input(source, format="lavfi").output(str(path), **encode).global_args("-nostdin", "-v", "error").run(
        overwrite_output=True
    )


def naive_clip(original: Path, seed: tuple[int, ...]) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(str(original), seek_mode="exact")
    start = random_start(len(decoder), FRAMES, seed)
    frames = decoder.get_frames_in_range(start, min(len(decoder), start + FRAMES)).data
    return F.interpolate(frames.float(), size=(SIZE, SIZE), mode="area").to(torch.uint8)


def clips_per_second(read, sources: list[Path], clips: int) -> float:
    started = time.perf_counter()
    for i in range(clips):
        read(sources[i % len(sources)], (0, 0, i))
    return clips / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--clips", type=int, default=24)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        originals = [root / f"{i}.mp4" for i in range(args.videos)]
        for seed, path in enumerate(originals):
            make_original(path, args.seconds, seed)
        table = pd.DataFrame(
            {
                "video_id": [p.stem for p in originals],
                "file": [p.name for p in originals],
                "split": "train",
                "is_viral": 0,
            }
        )
        export = Export(root, {"label": "binary"}, table)
        started = time.perf_counter()
        proxies = list(build_cache(export, SIZE, progress=False).values())
        build_s = time.perf_counter() - started

        naive = clips_per_second(naive_clip, originals, args.clips)
        cached = clips_per_second(lambda p, s: read_clip(p, FRAMES, seed=s), proxies, args.clips * 4)
        original_bytes = sum(p.stat().st_size for p in originals)
        cache_bytes = sum(p.stat().st_size for p in proxies)
    print(f"videos: {args.videos} x {args.seconds}s 576x1024@30fps; clips of {FRAMES}x{SIZE}x{SIZE}")
    print(f"one-off cache build: {build_s:.1f}s ({build_s / args.videos:.2f}s per video)")
    print(f"baseline  naive per-clip decode of originals: {naive:8.1f} clips/s ({1000 / naive:.0f} ms/clip)")
    print(f"candidate proxy cache:                        {cached:8.1f} clips/s ({1000 / cached:.1f} ms/clip)")
    print(f"speed-up: {cached / naive:.1f}x (goal >= 25x)")
    print(f"cache size: {cache_bytes / original_bytes:.1%} of the originals (goal <= 10%)")


if __name__ == "__main__":
    main()
