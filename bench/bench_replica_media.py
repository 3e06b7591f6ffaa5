"""Replica media generation: batched one-second loops (ours) vs. encoding every frame, one ffmpeg per file.

Baseline: the obvious method - one ffmpeg process per file that draws and encodes every frame.
Run: .venv/bin/python bench/bench_replica_media.py [N_FILES]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ffmpeg

from tiktok_corpus.replica.catalog import build_catalog
from tiktok_corpus.replica.media import _canvases, _command, _drawn, _encoder, ensure_media


def encode_every_frame(spec, output: Path) -> None:
    streams = [_drawn(_canvases([spec], spec.duration_s + 1)[0], spec)]
    audio: dict[str, object] = {}
    if spec.has_audio:
        tone = f"sine=f={spec.audio_hz or 440}:sample_rate=22050:d={spec.duration_s}"
        streams.append(ffmpeg.input(tone, format="lavfi").audio)
        audio = {"c:a": "aac", "b:a": "32k", "ac": 1}
    subprocess.run(
        _command(
            ffmpeg.output(
                *streams,
                str(output),
                **{"frames:v": spec.frames},
                **_encoder(spec, round(spec.fps)),
                **audio,
                movflags="+faststart",
                format="mp4",
            )
        ),
        check=True,
    )


def main(count: int) -> None:
    specs = [v.media for v in build_catalog(300, seed=11).playable() if not v.media.vfr][:count]
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda ix: encode_every_frame(ix[1], Path(scratch) / f"{ix[0]}.mp4"), enumerate(specs)))
        baseline = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        ensure_media(specs, Path(scratch), workers=2)
        ours = time.perf_counter() - started
    frames = sum(spec.frames for spec in specs)
    print(f"{len(specs)} files, {frames} frames, 2 workers")
    print(f"baseline (every frame, one ffmpeg per file): {baseline:.1f} s")
    print(f"replica (1 s loops, batched):                {ours:.1f} s")
    print(f"speed-up: {baseline / ours:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
