"""gbdt training time against the paper's R(2+1)D training time on the same export, on this CPU.

Baseline: the paper's schedule (20 epochs over the train split, 32-frame clips at 112 px, batch 2 here
to fit memory) timed from the trainer's own step rate on the export's proxies: train rows x 20 / clips
per second. That is a lower bound (no evaluation, no data loading beyond the clip reads), so the ratio
is conservative. Candidate: ``corpus train --model gbdt`` on every modality, the feature tables already
cached (their one-off extraction is printed too). Goal: >= 50x faster.

    .venv/bin/python bench/bench_gbdt.py EXPORT_DIR [--train-clips 6] [--threads 2] [--frames 8 --size 16 --clips 2]

The feature tables' settings do not change the fit's size (the same columns), only their one-off cost:
small ones keep a CPU run short.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from bench_features import SIZE, trainer_clips_per_s

from tiktok_corpus.features import FeatureOptions, extract_features, load_features
from tiktok_corpus.train import TrainConfig
from tiktok_corpus.train.export_table import load_export
from tiktok_corpus.train.gbdt import fit_gbdt
from tiktok_corpus.train.proxies import build_cache

PAPER_EPOCHS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("--train-clips", type=int, default=6, help="clips timed for the trainer's step rate")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--frames", type=int, default=FeatureOptions.frames, help="feature clips' frames")
    parser.add_argument("--size", type=int, default=FeatureOptions.size, help="feature clips' size")
    parser.add_argument("--clips", type=int, default=FeatureOptions.clips, help="feature clips per video")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    export = load_export(args.export_dir)
    train_rows = int((export.table["split"] == "train").sum())

    options = FeatureOptions(frames=args.frames, size=args.size, clips=args.clips, device="cpu", progress=False)
    started = time.perf_counter()
    summary = extract_features(args.export_dir, options)
    print(f"feature tables: {time.perf_counter() - started:.1f} s ({summary.rows} rows; cached ones reused)")
    features = load_features(args.export_dir, options.modalities, options)
    config = TrainConfig(args.export_dir, model="gbdt", device="cpu", progress=False)
    started = time.perf_counter()
    fit = fit_gbdt(features, load_export(args.export_dir, label=config.label), config)
    gbdt_s = time.perf_counter() - started
    print(f"gbdt: {gbdt_s:.2f} s ({features.shape[1]} features, {fit.best_iteration} rounds kept)")

    proxies = list(build_cache(export, SIZE, progress=False).values())
    rate = trainer_clips_per_s(proxies, args.train_clips)
    network_s = train_rows * PAPER_EPOCHS / rate
    schedule = f"{rate:.3f} clips/s x {train_rows} rows x {PAPER_EPOCHS} epochs"
    print(f"R(2+1)D-18, paper schedule: {schedule} = {network_s:.0f} s")
    print(f"gbdt is {network_s / gbdt_s:.0f}x faster (goal >= 50x)")


if __name__ == "__main__":
    main()
