"""GPU check of the real training loop (``bench/gpu_check.sh`` runs it in seven stages).

A bare GPU box has PyTorch but no FFmpeg, so by default this script swaps the two media functions of
the data layer - ``build_cache`` and ``read_clip`` - for an in-memory generator of uint8 clips
(brightness = label) and runs the unchanged ``train()``: DataLoader workers, pinned memory, on-device
normalisation, channels_last_3d, bf16 autocast, fused Adam, checkpoints, evaluation and plots.
``--real-decode`` keeps them: the export's videos are real H.264 files in the proxy format, written
with PyAV, and the loader workers decode them with TorchCodec. Before training, the two sides alone:
the loader (batches moved to the device, no model; epochs after the first) and the step (forward,
backward and Adam on one batch already on the device), so the report says which side limits. It prints
those three clips/s (the loader's and the step's as soon as measured), the loader wait, GPU utilisation
(nvidia-smi samples) and peak memory; ``--compile`` adds torch.compile and says how many graphs it made
(none: it fell back to eager); ``--device cpu`` dry-runs the script itself.

    PYTHONPATH=. python bench/gpu_loop_check.py [--videos 256] [--epochs 3] [--batch-size 32] [--real-decode]
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

from tiktok_corpus.speed import speed_line
from tiktok_corpus.train import clips as train_clips
from tiktok_corpus.train import loop
from tiktok_corpus.train.device import resolve_device, seed_everything
from tiktok_corpus.train.export_table import load_export
from tiktok_corpus.train.loop import TrainConfig, train
from tiktok_corpus.train.proxies import PROXY_GOP, proxy_dir
from tiktok_corpus.train.scoring import forward_clips


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


def write_proxy_videos(export_dir: Path, size: int, frames: int) -> None:
    """``--real-decode``: each video of the export as a real H.264 file already in the proxy format
    (``size`` px, a keyframe every PROXY_GOP frames, no B-frames; brightness = label, under noise that
    makes decoding the worst case), made with PyAV so no FFmpeg program is needed, and placed in the
    proxy cache under its sha256: the unchanged ``build_cache`` finds every proxy made, and the loader
    workers decode them with TorchCodec."""
    from concurrent.futures import ThreadPoolExecutor

    import av

    from tiktok_corpus._files import sha256_file

    table = pd.read_parquet(export_dir / "videos.parquet")
    cache = proxy_dir(export_dir / "cache", size)
    cache.mkdir(parents=True)
    (export_dir / "videos").mkdir()

    def encode(number: int, file: str, viral: int) -> None:
        path = export_dir / file
        base = 80 + 90 * viral
        pixels = np.random.default_rng(number).integers(base - 40, base + 40, (frames, size, size, 3), dtype=np.uint8)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=30)
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "20", "preset": "veryfast", "g": str(PROXY_GOP), "bf": "0"}
            for frame in pixels:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        os.link(path, cache / f"{sha256_file(path)[1]}.mp4")

    with ThreadPoolExecutor(os.cpu_count()) as pool:  # PyAV encodes without the GIL
        list(pool.map(encode, range(len(table)), table["file"], table["is_viral"].astype(int)))


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loader_only_clips_per_s(config: TrainConfig, export_dir: Path, epochs: int = 3) -> float:
    """The training loader alone, each batch moved to the device, nothing else: clips/s over the epochs
    after the first (as the loop's rate is), so the workers' start and imports are not counted."""
    device = resolve_device(config.device)
    export = load_export(export_dir)
    rows = export.split("train")
    proxies = loop.build_cache(export, config.size)
    loader = loop._loader(config, device, loop._Dist(), rows, proxies, export.target_column, None, train=True)
    clips_seen, seconds = 0, 0.0
    for epoch in range(1, epochs + 1):
        loader.sampler.set_epoch(epoch)
        started, epoch_clips = time.perf_counter(), 0
        for clips, valid, _, _, _ in loader:
            clips.to(device, non_blocking=True)
            epoch_clips += len(valid)
        _synchronize(device)
        if epoch > 1:  # the first epoch also starts the workers
            clips_seen, seconds = clips_seen + epoch_clips, seconds + time.perf_counter() - started
    return clips_seen / seconds


def step_only_clips_per_s(config: TrainConfig, steps: int = 20) -> float:
    """Forward, BCE, backward and Adam on one batch already on the device (the loop's own step, under
    the loop's cuDNN settings: deterministic algorithms unless ``--cudnn-benchmark``)."""
    from tiktok_corpus.train.model import build_model, compiled

    seed_everything(config.seed, cudnn_benchmark=config.cudnn_benchmark)
    device = resolve_device(config.device)
    model = build_model("none").to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    trained = compiled(model) if config.compile else model
    optimizer = loop.adam(model.parameters(), config.scaled_lr(), device)
    clips = torch.randint(0, 255, (config.batch_size, 3, config.frames, config.size, config.size), dtype=torch.uint8)
    # Both on the device before timing: a pageable host tensor copied each step can wait on the stream.
    clips, valid = clips.to(device), torch.full((config.batch_size,), config.frames, device=device)
    targets = torch.randint(0, 2, (config.batch_size,), device=device).float()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for step in range(steps + 3):  # three warm-up steps (cuDNN plans, compilation) are not timed
        if step == 3:
            _synchronize(device)
            started = time.perf_counter()
        loss = loss_fn(forward_clips(trained, clips, valid, device, config.amp), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _synchronize(device)
    return steps * config.batch_size / (time.perf_counter() - started)


def compiled_graphs() -> int:
    """Graphs torch.compile has made in this process: none after a compiled step means Dynamo fell back
    to eager (``compiled`` suppresses its errors), so the run's --compile bought nothing."""
    if "torch._dynamo" not in sys.modules:  # nothing compiled yet: its import alone takes a second
        return 0
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


def decode_only(export_dir: Path, size: int, frames: int) -> None:
    """Each proxy's first clip decoded in this process and nothing else, on the CPU with one thread: what
    one loader worker can feed, to set against the step's rate (PyPI's TorchCodec has no CUDA decoder)."""
    from torchcodec.decoders import VideoDecoder

    proxies = sorted(proxy_dir(export_dir / "cache", size).glob("*.mp4"))

    def one(path: Path) -> torch.Tensor:
        decoder = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=1)
        return decoder.get_frames_in_range(0, min(frames, len(decoder))).data

    one(proxies[0])  # the decoder's start-up is not timed
    started = time.perf_counter()
    for path in proxies:
        one(path)
    rate = len(proxies) / (time.perf_counter() - started)
    cores = os.cpu_count() or 1
    print(f"decode alone, {len(proxies)} proxies, one {frames}-frame clip each, one CPU thread:")
    print(f"  {rate:.1f} clips/s (x {cores} cores: {rate * cores:.0f})")


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
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="cuDNN's timed fastest algorithms")
    parser.add_argument("--lr-scaling", default="none", help="none | linear | sqrt: --lr for the global batch")
    parser.add_argument("--warmup-epochs", type=int, default=0, help="epochs of per-step linear warm-up")
    parser.add_argument(
        "--real-decode",
        action="store_true",
        help="decode real H.264 proxies with TorchCodec in the loader workers instead of making clips in memory",
    )
    parser.add_argument(
        "--decode-only",
        action="store_true",
        help="write the real proxies, then time decoding them alone on one CPU thread; no training",
    )
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: this is a GPU check")

    def fake_cache(export, size, cache_root=None, workers=None, progress=True):
        return {
            row.video_id: Path(f"/synthetic/{size}px/{row.video_id}_{int(row.is_viral)}")
            for row in export.table.itertuples(index=False)
        }

    if not args.real_decode:
        loop.build_cache = fake_cache
        train_clips.read_clip = synthetic_read_clip

    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export"
        write_export(export, args.videos)
        if args.real_decode or args.decode_only:  # under torchrun each process writes its own temporary export
            write_proxy_videos(export, args.size, frames=args.frames + PROXY_GOP)
        if args.decode_only:
            decode_only(export, args.size, args.frames)
            return
        config = TrainConfig(
            export_dir=export,
            epochs=args.epochs,
            frames=args.frames,
            size=args.size,
            batch_size=args.batch_size,
            lr_scaling=args.lr_scaling,
            warmup_epochs=args.warmup_epochs,
            device=args.device,
            amp=args.device == "cuda",
            compile=args.compile,
            cudnn_benchmark=args.cudnn_benchmark,
            workers=args.workers,
            patience=args.epochs,
            out=Path(tmp) / "run",
            progress=False,
        )
        main_rank = loop.reports_results()
        if main_rank:  # each printed once measured: a stage cut at its cap, or a run that fails, still shows it
            loader_rate = loader_only_clips_per_s(config, export)
            print(f"loader only: {loader_rate:.1f} clips/s", flush=True)
            step_rate = step_only_clips_per_s(config)
            made = f"; torch.compile made {compiled_graphs()} graph(s)" if args.compile else ""
            print(f"step only: {step_rate:.1f} clips/s{made}", flush=True)
        if args.device == "cuda":  # the loop's own peak, not the step-only measurement's
            torch.cuda.reset_peak_memory_stats()
        samples: list = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_gpu, args=(samples, stop), daemon=True)
        sampler.start()
        started = time.perf_counter()
        run = train(config)
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
        if not main_rank:  # under torchrun, rank 0 alone writes the run
            return
        history = pd.read_csv(run / "history.csv")
        metrics = json.loads((run / "metrics.json").read_text())
    print(history.to_string(index=False))
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}")
    speed = metrics["speed"]  # the run's own account: epochs after the first, which warms up
    print(speed_line(speed))
    print(
        f"full loop: {speed['train_clips_per_s'] / step_rate:.2f}x the step-only rate (goal >= 0.9); "
        f"the loader is {loader_rate / step_rate:.2f}x the step"
    )
    compile_note = ""
    if args.compile:  # the loop reuses the step-only measurement's graphs (same code), so count them all
        graphs = compiled_graphs()
        compile_note = f"compiled ({graphs} graphs), " if graphs else "compile fell back to eager, "
    print(
        f"train clips/s (epochs after the first): {speed['train_clips_per_s']:.1f}  "
        f"[{args.frames}x{args.size}x{args.size}, batch {args.batch_size}, "
        f"{'bf16 autocast, channels_last_3d, ' if args.device == 'cuda' else ''}"
        f"{'cuDNN benchmark, ' if args.cudnn_benchmark else ''}{compile_note}"
        f"{os.environ.get('WORLD_SIZE', '1')} process(es), {args.workers} workers]"
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
