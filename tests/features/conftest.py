"""A small export with sound, built with real ffmpeg: 24 tiny videos whose audio, caption, author and
posting hour follow the label, as the replica's per-modality signals will.

Viral videos carry a 1760 Hz tone, the others 440 Hz (two rows: a silent track and no audio stream);
viral captions say "sunny", others "rainy", and only test captions say "zebracorn"; authors post
several videos each; viral videos are posted at 18:00 UTC, the others at 06:00. 64x64 at 10 fps for
1.2 s keeps the whole build to a few seconds on two cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.media_files import encode_lavfi

SPLITS = ["train"] * 14 + ["val"] * 4 + ["test"] * 6
LOW_HZ, HIGH_HZ = 440, 1760
SILENT_ROW, MUTE_ROW = 2, 3  # a track of digital silence; a file without an audio stream
DAY = 1_700_006_400  # a midnight, UTC


def _make_video(path: Path, level: int, sound: str | None, seconds: float = 1.2) -> None:
    source = f"color=c=0x{level:02x}{level:02x}{level:02x}:s=64x64:r=10:d={seconds}"
    audio = None if sound is None else f"{sound}:duration={seconds}" if sound.startswith("sine") else sound
    encode_lavfi(path, source, audio=audio, preset="ultrafast", t=seconds, **{"c:a": "aac"})


def build_sound_export(root: Path, splits: list[str] = SPLITS) -> Path:
    """Videos under ``root/videos``, ``videos.parquet`` and ``manifest.json`` (binary label)."""
    (root / "videos").mkdir(parents=True)
    n = len(splits)
    viral = np.arange(n) % 2
    sounds: list[str | None] = [f"sine=frequency={HIGH_HZ if v else LOW_HZ}:sample_rate=16000" for v in viral]
    sounds[SILENT_ROW], sounds[MUTE_ROW] = "anullsrc=r=16000:cl=mono", None
    files = [f"videos/{7100000000000000000 + i}.mp4" for i in range(n)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(lambda i: _make_video(root / files[i], 60 + 120 * int(viral[i]), sounds[i]), range(n)))
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "video_id": [f.split("/")[1].removesuffix(".mp4") for f in files],
            "author_id": [str(500 + i % 5) for i in range(n)],
            "author_unique_id": [f"user{i % 5}" for i in range(n)],
            "create_time": DAY + np.arange(n) * 86_400 + np.where(viral == 1, 18, 6) * 3600,
            "desc": [
                ("sunny day @friend 😀 " if v else "rainy day ") + ("zebracorn" if split == "test" else "")
                for v, split in zip(viral, splits)
            ],
            "hashtags": [["sunny", "fyp"] if v else ["fyp"] for v in viral],
            "play_count": np.where(viral == 1, 50_000, 500) + rng.integers(0, 100, n),
            "like_count": rng.integers(0, 1000, n),
            "comment_count": rng.integers(0, 100, n),
            "share_count": rng.integers(0, 50, n),
            "collect_count": rng.integers(0, 50, n),
            "follower_count": 1000 * (1 + np.arange(n) % 5),
            "stats_captured_at": pd.Timestamp("2024-01-01", tz="UTC"),
            "duration_s": 1.2,
            "fps": 10.0,
            "frame_count": 12,
            "width": 64,
            "height": 64,
            "has_audio": [s is not None for s in sounds],
            "file": files,
            "sha256": [hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files],
            "virality_score": np.where(viral == 1, 0.8, 0.2) + rng.normal(0, 0.01, n),
            "is_viral": viral,
            "split": splits,
            "following_count": 10 * (1 + np.arange(n) % 5),
            "heart_count": 10_000 * (1 + np.arange(n) % 5),
            "video_count": 20 + np.arange(n) % 5,
            "verified": np.arange(n) % 5 == 0,
            "music_title": ["original sound - user" if v else "Song - Band" for v in viral],
            "music_original": viral == 1,
        }
    )
    table.to_parquet(root / "videos.parquet", index=False)
    (root / "manifest.json").write_text(json.dumps({"name": root.name, "version": 1, "label": "binary"}))
    return root


@pytest.fixture(scope="session")
def sound_export_source(tmp_path_factory) -> Path:
    return build_sound_export(tmp_path_factory.mktemp("sound-export"))


@pytest.fixture
def sound_export(tmp_path, sound_export_source) -> Path:
    """A private copy of the export, so each test starts without a feature cache: the videos hard-linked,
    the table and manifest copied (a test that rewrites its table must not rewrite everyone's)."""
    root = tmp_path / "export"
    (root / "videos").mkdir(parents=True)
    for name in ("manifest.json", "videos.parquet"):
        shutil.copyfile(sound_export_source / name, root / name)
    for video in (sound_export_source / "videos").iterdir():
        os.link(video, root / "videos" / video.name)
    return root
