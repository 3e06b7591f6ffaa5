"""Validation throughput: `run_validate` versus a sequential `ffprobe -count_frames` loop.

Baseline (the naive exact method): one ``ffprobe -count_frames`` per file, one after another - a full
decode of every video. Candidate: :func:`tiktok_corpus.validate.run_validate` end to end on a fresh
SQLite store (claims, sha256, probe, one transaction per file), default workers. Both run in this
process on the same files; the frame counts must be identical on every file or the run fails.

The files are TikTok-shaped (576x1024 H.264, 30 or 25 fps, 8-30 s, with and without AAC audio):
two encoded masters, cut by stream copy into distinct files, cached under bench/results/.

    .venv/bin/python bench/bench_validate.py [--files 200] [--workers N]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import open_store
from tiktok_corpus.store.models import MediaFile, Video
from tiktok_corpus.validate import run_validate

CACHE = Path(__file__).parent / "results" / "validate-media"
MASTERS = {
    "master_30fps_aac.mp4": [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=576x1024:rate=30,noise=alls=8:allf=t",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=44100",
        "-t",
        "30",
        "-c:a",
        "aac",
        "-shortest",
    ],
    "master_25fps.mp4": ["-f", "lavfi", "-i", "testsrc2=size=576x1024:rate=25,noise=alls=10:allf=t", "-t", "30"],
}
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-pix_fmt", "yuv420p"]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_files(count: int) -> list[Path]:
    """``count`` distinct files: stream-copied cuts of the masters (no re-encoding, cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for name, args in MASTERS.items():
        if not (CACHE / name).exists():
            ffmpeg(*args, *X264, str(CACHE / name))
    rng = random.Random(6)
    files = []
    for index in range(count):
        out = CACHE / f"clip_{index:03d}.mp4"
        if not out.exists():
            master = sorted(MASTERS)[index % len(MASTERS)]
            ffmpeg("-i", str(CACHE / master), "-t", f"{rng.uniform(8, 30):.2f}", "-c", "copy", str(out))
        files.append(out)
    return files


def cpu_seconds() -> float:
    """User + system time of this process and its finished children (ffprobe, ffmpeg)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def count_frames(path: Path) -> int:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.strip())


def timed_validate(files: list[Path], workers: int | None) -> tuple[float, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        store = open_store(settings)
        with store.transaction() as session:
            for path in files:
                session.add(Video(id=path.stem.split("_")[1], download_status="downloaded"))
                session.flush()
                session.add(
                    MediaFile(
                        video_id=path.stem.split("_")[1],
                        path=str(path.resolve()),
                        size_bytes=path.stat().st_size,
                        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                    )
                )
        start = time.perf_counter()
        summary = run_validate(settings, workers=workers)
        elapsed = time.perf_counter() - start
        with store.sessions() as session:
            counts = dict(session.execute(select(MediaFile.path, MediaFile.frame_count)).all())
        store.dispose()
    assert summary.probed == len(files), summary
    return elapsed, {Path(p).name: n for p, n in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    files = make_files(args.files)
    for path in files:  # warm the page cache so neither side pays for the first read
        path.read_bytes()

    start, cpu_start = time.perf_counter(), cpu_seconds()
    truth = {path.name: count_frames(path) for path in files}
    baseline_s, baseline_cpu = time.perf_counter() - start, cpu_seconds() - cpu_start

    cpu_start = cpu_seconds()
    candidate_s, found = timed_validate(files, args.workers)
    candidate_cpu = cpu_seconds() - cpu_start

    mismatches = {name: (truth[name], found.get(name)) for name in truth if found.get(name) != truth[name]}
    print(f"files: {len(files)}, frames: {sum(truth.values())}")
    print(f"baseline  sequential ffprobe -count_frames: {len(files) / baseline_s:8.1f} files/s ({baseline_s:.1f} s)")
    print(
        f"candidate run_validate (workers={args.workers or 'cores'}): "
        f"{len(files) / candidate_s:8.1f} files/s ({candidate_s:.1f} s)"
    )
    print(
        f"CPU per file: baseline {1000 * baseline_cpu / len(files):.0f} ms, "
        f"candidate {1000 * candidate_cpu / len(files):.0f} ms "
        f"({baseline_cpu / candidate_cpu:.1f}x less CPU)"
    )
    print(
        f"ratio: {baseline_s / candidate_s:.1f}x   identical frame counts: {len(files) - len(mismatches)}/{len(files)}"
    )
    if mismatches:
        print(f"MISMATCHED frame counts (truth, found): {mismatches}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
