"""Benchmark: export (database -> labelled, split Parquet) must scale linearly.

Builds SQLite corpora of 100k and 1M synthetic exportable videos (with authors, two stats snapshots per
video, probed media rows and their files, empty, and hashtags), then times ``run_export`` on each. The
baseline is the 100k export measured in the same run; the check is ``time(1M) / time(100k) <= 12``.

    .venv/bin/python bench/bench_export.py [--sizes 100000,1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from tiktok_corpus.config import Settings
from tiktok_corpus.export import ExportOptions, run_export
from tiktok_corpus.store.db import open_store

MAX_RATIO = 12.0
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def build_corpus(settings: Settings, n: int, seed: int = 0) -> None:
    """Bulk-insert ``n`` exportable videos with raw executemany (setup, not timed)."""
    rng = np.random.default_rng(seed)
    ids = [str(7_000_000_000_000_000_000 + i) for i in range(n)]
    authors = rng.integers(0, max(n // 20, 1), n)
    counts = rng.lognormal(mean=[8, 6, 3, 2], sigma=2.0, size=(n, 4)).astype(np.int64)
    frames = rng.integers(100, 1800, n)
    media = settings.data_dir / "media"  # an export refuses rows whose file is gone: one empty file, linked
    media.mkdir(parents=True, exist_ok=True)
    (media / "empty.mp4").touch()
    for vid in ids:
        os.link(media / "empty.mp4", media / f"{vid}.mp4")
    probed = _stamp(datetime.now(UTC))
    store = open_store(settings)
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        cur.executemany(
            "INSERT INTO authors (id, unique_id, follower_count, updated_at) VALUES (?, ?, ?, ?)",
            ((f"a{a}", f"user{a}", int(a) * 7, _stamp(T0)) for a in range(max(n // 20, 1))),
        )
        cur.executemany(
            'INSERT INTO videos (id, author_id, "desc", create_time, item_kind, download_status, probe_status, '
            "first_seen_at, last_seen_at, depth) VALUES (?, ?, ?, ?, 'video', 'downloaded', 'valid', ?, ?, ?)",
            (
                (vid, f"a{a}", f"video {vid} #tag{a % 50}", 1_700_000_000 + i, _stamp(T0), _stamp(T0), i % 6)
                for i, (vid, a) in enumerate(zip(ids, authors))
            ),
        )
        cur.executemany(
            "INSERT INTO media_files (video_id, path, size_bytes, sha256, downloaded_at, width, height, avg_fps, "
            "duration_s, frame_count, has_audio, probed_sha256, probed_at) "
            "VALUES (?, ?, 0, ?, ?, 576, 1024, 30.0, ?, ?, 1, ?, ?)",
            (  # probed after the empty file below was made, as validate leaves them (an export checks)
                (vid, f"media/{vid}.mp4", f"{vid:0>64}", _stamp(T0), float(f) / 30.0, int(f), f"{vid:0>64}", probed)
                for vid, f in zip(ids, frames)
            ),
        )
        for day, scale in ((1, 0.5), (0, 1.0)):  # an older snapshot, then the latest
            cur.executemany(
                "INSERT INTO stats_snapshots (video_id, captured_at, play_count, like_count, comment_count, "
                "share_count, collect_count, exact) VALUES (?, ?, ?, ?, ?, ?, 0, 1)",
                (
                    (
                        vid,
                        _stamp(T0 - timedelta(days=day)),
                        int(c[0] * scale),
                        int(c[1] * scale),
                        int(c[2] * scale),
                        int(c[3] * scale),
                    )
                    for vid, c in zip(ids, counts)
                ),
            )
        cur.executemany("INSERT INTO hashtags (id, name) VALUES (?, ?)", ((t, f"tag{t}") for t in range(50)))
        cur.executemany(
            "INSERT INTO video_hashtags (video_id, hashtag_id) VALUES (?, ?)",
            ((vid, int(a) % 50) for vid, a in zip(ids, authors)),
        )
        cur.execute("COMMIT")
    finally:
        raw.close()
        store.dispose()


def time_export(n: int, root: Path) -> float:
    settings = Settings(data_dir=root / f"n{n}")
    build_corpus(settings, n)
    started = time.perf_counter()
    run_export(settings, ExportOptions(label="binary", group_by="author", stratify=True))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="baseline size, then the large size")
    parser.add_argument("--keep", type=Path, help="keep the corpora in this directory")
    args = parser.parse_args()
    small, large = (int(s) for s in args.sizes.split(","))
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-export-"))
    try:
        baseline = time_export(small, root)
        measured = time_export(large, root)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    ratio = measured / baseline
    print(f"baseline export of {small:,} rows: {baseline:.2f} s ({small / baseline:,.0f} rows/s)")
    print(f"export of {large:,} rows: {measured:.2f} s ({large / measured:,.0f} rows/s)")
    print(f"ratio time({large:,}) / time({small:,}) = {ratio:.2f} (rows x{large / small:g}; must be <= {MAX_RATIO})")
    if ratio > MAX_RATIO * large / small / 10:
        raise SystemExit("FAIL: export time grows faster than linearly")
    print("OK")


if __name__ == "__main__":
    main()
