"""Small real video files for tests, encoded by the real ffmpeg from its lavfi sources (via ffmpeg-python),
their ``media_files`` rows, and the damage a test does to one on disk."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import ffmpeg

from tiktok_corpus._files import sha256_file
from tiktok_corpus.store.models import MediaFile


def encode_lavfi(path: Path, video: str, *, audio: str | None = None, **output_options) -> Path:
    """Write ``path``: the lavfi ``video`` source (and ``audio``, when given) as H.264 / yuv420p.

    ``output_options``: further ffmpeg output options, ffmpeg-python style (``t=1``, ``preset="ultrafast"``,
    ``**{"c:a": "aac"}``).
    """
    inputs = [ffmpeg.input(video, format="lavfi")]
    if audio is not None:
        inputs.append(ffmpeg.input(audio, format="lavfi"))
    command = (
        ffmpeg.output(*inputs, str(path), **{"c:v": "libx264", "pix_fmt": "yuv420p", **output_options})
        .global_args("-nostdin", "-v", "error")
        .compile(overwrite_output=True)
    )
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return path


def zero_middle(path: Path, length: int) -> None:
    """Damage a file in place, its size kept: ``length`` zero bytes over its middle (see :func:`date_now`)."""
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        handle.write(bytes(length))
    date_now(path)


def date_now(path: Path) -> None:
    """Date a file's last write by the system clock: the file system's clock is a few ms coarse, and could
    date a write made just after a probe before it (a change the next run would then not see)."""
    now = time.time()
    os.utime(path, (now, now))


def media_file_row(video_id: str, data_dir: Path, path: Path) -> MediaFile:
    """The ``media_files`` row a download would write for ``path`` (under ``data_dir``) as it is now."""
    size, digest = sha256_file(path)
    return MediaFile(video_id=video_id, path=str(path.relative_to(data_dir)), size_bytes=size, sha256=digest)
