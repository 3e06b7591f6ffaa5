"""Real video files for the replica's catalog, made with ffmpeg and cached on disk.

Each file is named by the hash of its :class:`MediaSpec`, so repeated runs (and every test session)
reuse what an earlier run made. Content is flat and synthetic - a solid background whose luma is the
signal property, plus a small moving box - so files are tiny and encode at ~1,000 fps.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import MediaError
from ..media import FFMPEG as FFMPEG_BINARY, run_tool
from .catalog import VFR_SOURCE_FPS, VFR_SOURCE_FRAMES, MediaSpec

CACHE_ENV = "CORPUS_REPLICA_CACHE"
FFMPEG_TIMEOUT_S = 300
FFMPEG = [FFMPEG_BINARY, "-nostdin", "-v", "error", "-y"]
BATCH = 8  # files per ffmpeg run: process start-up is a large part of the cost


def default_cache_dir() -> Path:
    """``$CORPUS_REPLICA_CACHE``, else ``~/.cache/tiktok-corpus/replica-media``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "tiktok-corpus" / "replica-media"


def media_file(cache_dir: Path, spec: MediaSpec) -> Path:
    return cache_dir / f"{spec.cache_key}.mp4"


def ensure_media(specs: Iterable[MediaSpec], cache_dir: Path, *, workers: int | None = None,
                 on_progress: Callable[[int, int], None] | None = None) -> None:
    """Make every missing file, in parallel batches (one ffmpeg thread per worker, one worker per core).

    ``on_progress(done, total)`` is called as files land (for a progress bar).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = list({spec.cache_key: spec for spec in specs
                    if not media_file(cache_dir, spec).exists()}.values())
    total, done = len(missing), 0
    if on_progress:
        on_progress(0, total)
    if not missing:
        return
    for hz in sorted({spec.audio_hz for spec in missing if spec.has_audio}):
        _audio_loop(cache_dir, hz)
    batches = [[spec] for spec in missing if spec.vfr]
    looped = [spec for spec in missing if not spec.vfr]
    batches += [looped[i:i + BATCH] for i in range(0, len(looped), BATCH)]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        for made in pool.map(lambda batch: _generate(batch, cache_dir), batches):
            done += made
            if on_progress:
                on_progress(done, total)


def _audio_loop(cache_dir: Path, hz: int) -> Path:
    """One second of AAC (a tone, or silence for 0 Hz), shared by every file with that tone."""
    path = cache_dir / "loops" / f"audio-{hz}.m4a"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        tone = f"sine=f={hz}:sample_rate=22050:d=1" if hz else "anullsrc=r=22050:cl=mono:d=1"
        _run_atomic([path], lambda parts: [*FFMPEG, "-f", "lavfi", "-i", tone, "-c:a", "aac", "-b:a", "32k",
                                           "-ac", "1", "-f", "mp4", str(parts[0])])
    return path


def _video_filters(spec: MediaSpec) -> str:
    """Flat background at the spec's luma and hue, and a small moving box of a contrasting tone."""
    box = spec.width // 8
    box_color = "white" if spec.luma < 128 else "black"
    filters = [
        "format=yuv420p",
        f"lutyuv=y={spec.luma}:u={spec.u}:v={spec.v}",
        f"drawbox=x='mod(t*{spec.box_speed}+{spec.salt % 97},{spec.width - box})':y={spec.height // 3}"
        f":w={box}:h={box}:color={box_color}:t=fill",
    ]
    if spec.vfr:  # every frame for the first half, then every third: variable frame rate
        half = VFR_SOURCE_FRAMES // 2
        filters.append(f"select='lt(n,{half})+not(mod(n,3))'")
    return ",".join(filters)


def _encoder(spec: MediaSpec, gop: int) -> list[str]:
    if spec.codec == "hevc":
        return ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "36", "-tag:v", "hvc1",
                "-x265-params", f"log-level=error:pools=1:frame-threads=1:keyint={gop}"]
    return ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "36", "-threads", "1", "-g", str(gop)]


def _source(spec: MediaSpec, seconds: float) -> list[str]:
    fps = VFR_SOURCE_FPS if spec.vfr else spec.fps
    return ["-f", "lavfi", "-i", f"color=c=black:s={spec.width}x{spec.height}:r={fps:g}:d={seconds}"]


def _finish_args(spec: MediaSpec, output: Path) -> list[str]:
    return ["-frames:v", str(spec.frames), "-t", f"{spec.duration_s:.6f}", "-map_metadata", "-1",
            "-metadata", f"comment=replica {spec.salt}", "-movflags", "+faststart", "-f", "mp4", str(output)]


def _generate(batch: list[MediaSpec], cache_dir: Path) -> int:
    """Make one batch of files; returns how many landed.

    Constant-rate files are one second of encoded video, stream-copied in a loop to full length
    (encoding every frame of every file would take minutes): one ffmpeg run encodes the batch's
    seconds, a second one loops them with the shared audio loops. The VFR file is encoded whole.
    """
    finals = [media_file(cache_dir, spec) for spec in batch]
    if batch[0].vfr:
        spec = batch[0]
        _run_atomic(finals, lambda parts: [
            *FFMPEG, *_source(spec, spec.duration_s + 1), *_audio_input(spec, cache_dir, loop=False),
            "-vf", _video_filters(spec), "-fps_mode", "vfr", *_encoder(spec, VFR_SOURCE_FPS),
            *_audio_codec(spec), *_finish_args(spec, parts[0])])
        return 1
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="segments-") as scratch:
        segments = [Path(scratch) / f"{i}.mp4" for i in range(len(batch))]
        encode = [*FFMPEG]
        for spec in batch:
            encode += _source(spec, 2)
        for i, (spec, segment) in enumerate(zip(batch, segments)):
            gop = max(1, round(spec.fps))
            encode += ["-map", f"{i}:v", "-vf", _video_filters(spec), "-frames:v", str(gop),
                       *_encoder(spec, gop), str(segment)]
        _run(encode)

        def loop_args(parts: list[Path]) -> list[str]:
            args, outputs, index = [*FFMPEG], [], 0
            for spec, segment, part in zip(batch, segments, parts):
                args += ["-stream_loop", "-1", "-i", str(segment)]
                maps = ["-map", f"{index}:v"]
                index += 1
                if spec.has_audio:
                    args += _audio_input(spec, cache_dir, loop=True)
                    maps += ["-map", f"{index}:a"]
                    index += 1
                outputs += [*maps, "-c", "copy", *_finish_args(spec, part)]
            return args + outputs

        _run_atomic(finals, loop_args)
    return len(batch)


def _audio_input(spec: MediaSpec, cache_dir: Path, *, loop: bool) -> list[str]:
    if not spec.has_audio:
        return []
    return [*(["-stream_loop", "-1"] if loop else []), "-i", str(_audio_loop(cache_dir, spec.audio_hz))]


def _audio_codec(spec: MediaSpec) -> list[str]:
    return ["-c:a", "copy"] if spec.has_audio else []


def _run_atomic(finals: list[Path], build: Callable[[list[Path]], list[str]]) -> None:
    """Write to ``.part`` files and rename: a crash never leaves a half file under a real name."""
    parts = [final.with_name(f"{final.name}.{os.getpid()}.{threading.get_ident()}.part") for final in finals]
    try:
        _run(build(parts))
        for part, final in zip(parts, finals):
            os.replace(part, final)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)


def _run(args: list[str]) -> None:
    """Replica media that ffmpeg cannot make is a bug of ours, not the user's input: not expected."""
    try:
        run_tool(args, timeout=FFMPEG_TIMEOUT_S, what="make replica media")
    except MediaError as exc:
        raise MediaError(exc.message, expected=False) from None
