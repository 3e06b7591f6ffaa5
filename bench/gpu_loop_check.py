"""GPU check of the real training loop with synthetic decoded clips (no ffmpeg / TorchCodec needed).

``bench/gpu_check.sh`` checks the whole path (export -> proxy cache -> decode -> train) on a machine
with the project installed. A bare GPU box with only PyTorch (such as a rented node before set-up)
has no FFmpeg to decode with, so this script swaps the two media functions of the data layer -
``build_cache`` and ``read_clip`` - for an in-memory generator of uint8 clips (brightness = label) and
runs the unchanged ``train()``: DataLoader workers, pinned memory, on-device normalisation,
channels_last_3d, bf16 autocast, checkpoints, evaluation and plots. It prints train clips/s, GPU
utilisation (nvidia-smi samples) and peak memory, ``--device cpu`` dry-runs the script itself.

    PYTHONPATH=. python bench/gpu_loop_check.py [--videos 256] [--epochs 3] [--batch-size 32]
    torchrun --nproc_per_node 2 bench/gpu_loop_check.py --device cpu ...   # DDP (gloo) dry run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tiktok_corpus.train import data, loop, plots
from tiktok_corpus.train.loop import TrainConfig, train


def synthetic_read_clip(proxy: Path, clip_frames: int, start=None, seed=None):
    """A clip whose brightness encodes the video's label (its name ends in _0 or _1)."""
    label = int(str(proxy).rsplit("_", 1)[-1])
    size = int(str(proxy).split("px")[0].rsplit("/", 1)[-1])
    gen = torch.Generator().manual_seed(zlib.crc32(str(proxy).encode()))
    base = 80 + 90 * label
    clip = torch.randint(base - 40, base + 40, (3, clip_frames, size, size), dtype=torch.uint8, generator=gen)
    return clip, clip_frames


def write_export(root: Path, videos: int) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, videos)
    splits = np.array(["train"] * videos)
    splits[int(videos * 0.7) : int(videos * 0.85)] = "val"
    splits[int(videos * 0.85) :] = "test"
    table = pd.DataFrame(
        {
            "video_id": [str(7_000_000_000 + i) for i in range(videos)],
            "author_id": "1",
            "author_unique_id": "a",
            "desc": "",
            "hashtags": [[] for _ in range(videos)],
            "follower_count": rng.integers(10, 10**6, videos),
            "duration_s": 10.0,
            "fps": 30.0,
            "frame_count": 300,
            "width": 576,
            "height": 1024,
            "has_audio": True,
            "file": [f"videos/{i}.mp4" for i in range(videos)],
            "sha256": "",
            "virality_score": labels.astype(float),
            "is_viral": labels,
            "split": splits,
        }
    )
    root.mkdir(parents=True)
    table.to_parquet(root / "videos.parquet")
    (root / "manifest.json").write_text(
        json.dumps({"label": "binary", "version": 1, "name": "gpu-check", "data_file": "videos.parquet"})
    )


def sample_gpu(samples: list, stop: threading.Event) -> None:
    if shutil.which("nvidia-smi") is None:
        return
    while not stop.is_set():
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
        )
        if out.returncode == 0 and out.stdout.strip():
            util, mem = out.stdout.strip().splitlines()[0].split(", ")
            samples.append((float(util), float(mem)))
        stop.wait(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--device", default="cuda", help="cpu only for a dry run of this script")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: this is a GPU check")

    def fake_cache(export, size, cache_root=None, workers=None, progress=True):
        return {
            row.video_id: Path(f"/synthetic/{size}px/{row.video_id}_{int(row.is_viral)}")
            for row in export.table.itertuples(index=False)
        }

    loop.build_cache = fake_cache
    data.read_clip = plots.read_clip = synthetic_read_clip

    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export"
        write_export(export, args.videos)
        samples: list = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_gpu, args=(samples, stop), daemon=True)
        sampler.start()
        started = time.perf_counter()
        run = train(
            TrainConfig(
                export_dir=export,
                epochs=args.epochs,
                frames=args.frames,
                size=args.size,
                batch_size=args.batch_size,
                device=args.device,
                amp=args.device == "cuda",
                workers=args.workers,
                patience=args.epochs,
                out=Path(tmp) / "run",
                progress=False,
            )
        )
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 alone writes the run
            return
        history = pd.read_csv(run / "history.csv")
        metrics = json.loads((run / "metrics.json").read_text())
    print(history.to_string(index=False))
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}")
    steady = history["train_clips_per_s"].iloc[1:] if len(history) > 1 else history["train_clips_per_s"]
    print(
        f"train clips/s (epochs after the first): {steady.mean():.1f}  "
        f"[{args.frames}x{args.size}x{args.size}, batch {args.batch_size}, "
        f"{'bf16 autocast, channels_last_3d, ' if args.device == 'cuda' else ''}{args.workers} workers]"
    )
    utils = [u for u, _ in samples]
    busy = [u for u in utils if u > 0]
    print(
        f"GPU utilisation: mean {np.mean(utils) if utils else 0:.0f}% over {len(utils)} samples, "
        f"{np.mean(busy) if busy else 0:.0f}% while busy, max {max(utils) if utils else 0:.0f}%"
    )
    peak = history["peak_gpu_mem_gib"].max() if "peak_gpu_mem_gib" in history else float("nan")
    print(f"peak memory: torch {peak:.2f} GiB, nvidia-smi {max((m for _, m in samples), default=0) / 1024:.2f} GiB")
    print(
        f"test ROC-AUC on the synthetic brightness task: {metrics['model'].get('roc_auc')}; "
        f"verdict: {metrics['verdict']}"
    )
    print(f"whole run (incl. evaluation, checkpoints, plots): {wall:.1f} s")


if __name__ == "__main__":
    main()
