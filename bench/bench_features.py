"""Feature extraction per modality in videos/s; the video embedding against the trainer's own clip rate.

Baseline (same run, same 112 px proxies, same threads): the trainer's step, R(2+1)D-18 forward and
backward and an Adam step on 32-frame clips, in clips/s. Candidate: ``corpus features`` with its
defaults (frozen backbone, K=4 clips of 16 frames, inference mode), in videos/s. Goal: >= 1x (one
video embedded for each clip the trainer learns from), since it does no backward pass. Text, author
and time run on the table only; audio decodes each file's soundtrack.

    .venv/bin/python bench/bench_features.py [--videos 6] [--seconds 8] [--threads 2] [--train-clips 4]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import ffmpeg
import numpy as np
import pandas as pd
import torch

from tiktok_corpus.features import MODALITIES, FeatureOptions, extract_features
from tiktok_corpus.train.clips import normalize_clips, read_clip
from tiktok_corpus.train.export_table import load_export
from tiktok_corpus.train.model import build_model
from tiktok_corpus.train.proxies import build_cache

TRAIN_FRAMES, SIZE = 32, 112


def make_video(path: Path, seconds: int, seed: int) -> None:
    """A 360x640 (9:16) 30 fps H.264 file with an AAC tone: a TikTok's shape, smaller."""
    picture = ffmpeg.input(f"testsrc2=s=360x640:r=30:d={seconds},hue=h={seed * 40}", format="lavfi")
    tone = ffmpeg.input(f"sine=frequency={220 * (1 + seed % 4)}:duration={seconds}", format="lavfi")
    encode = {"c:v": "libx264", "preset": "veryfast", "pix_fmt": "yuv420p", "c:a": "aac", "shortest": None}
    ffmpeg.output(picture, tone, str(path), **encode).global_args("-nostdin", "-v", "error").run(overwrite_output=True)


def make_export(root: Path, videos: int, seconds: int) -> Path:
    (root / "videos").mkdir(parents=True)
    files = [f"videos/{7200000000000000000 + i}.mp4" for i in range(videos)]
    for i, name in enumerate(files):
        make_video(root / name, seconds, i)
    splits = (["train", "val", "test"] * videos)[:videos]
    pd.DataFrame(
        {
            "video_id": [f.split("/")[1].removesuffix(".mp4") for f in files],
            "author_id": [str(i % 3) for i in range(videos)],
            "create_time": 1_700_000_000 + 3600 * np.arange(videos),
            "desc": [f"clip number {i} #bench" for i in range(videos)],
            "hashtags": [["bench"]] * videos,
            "play_count": 1000 * (1 + np.arange(videos)),
            "follower_count": 10_000,
            "stats_captured_at": 1_700_900_000,
            "duration_s": float(seconds),
            "fps": 30.0,
            "width": 360,
            "height": 640,
            "has_audio": True,
            "file": files,
            "sha256": [hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files],
            "virality_score": np.linspace(0, 1, videos),
            "is_viral": np.arange(videos) % 2,
            "split": splits,
        }
    ).to_parquet(root / "videos.parquet", index=False)
    (root / "manifest.json").write_text(json.dumps({"name": "bench", "version": 1, "label": "binary"}))
    return root


def trainer_clips_per_s(proxies: list[Path], clips: int) -> float:
    """The trainer's step on batches of 2 random 32-frame clips: forward, BCE, backward, Adam."""
    model = build_model("none").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    for step in range(0, clips, 2):
        read = [read_clip(proxies[(step + i) % len(proxies)], TRAIN_FRAMES, seed=(0, step, i)) for i in range(2)]
        batch = normalize_clips(torch.stack([c for c, _ in read]), torch.tensor([v for _, v in read]))
        optimizer.zero_grad()
        loss_fn(model(batch), torch.tensor([0.0, 1.0])).backward()
        optimizer.step()
    return clips / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch and the decoders")
    parser.add_argument("--train-clips", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_export(Path(tmp) / "export", args.videos, args.seconds)
        proxies = list(build_cache(load_export(root), SIZE, workers=args.threads, progress=False).values())
        baseline = trainer_clips_per_s(proxies, args.train_clips)
        print(f"trainer (R(2+1)D-18 fwd+bwd, {TRAIN_FRAMES}x{SIZE}px): {baseline:.3f} clips/s")
        for modality in MODALITIES:
            shutil.rmtree(root / "features", ignore_errors=True)
            options = FeatureOptions(modalities=(modality,), workers=args.threads, device="cpu", progress=False)
            seconds = extract_features(root, options).results[0].seconds
            rate = args.videos / seconds
            line = f"{modality:<6}: {rate:9.2f} videos/s ({seconds:.2f} s for {args.videos})"
            if modality == "video":
                line += f"; vs trainer clips/s: {rate / baseline:.2f}x (goal >= 1x)"
            print(line, flush=True)


if __name__ == "__main__":
    main()
