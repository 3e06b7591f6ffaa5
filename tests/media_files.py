"""Small real video files for tests, encoded by the real ffmpeg from its lavfi sources (via ffmpeg-python)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import ffmpeg


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
