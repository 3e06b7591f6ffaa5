"""The decoded-once proxy cache: each video as a tiny short-GOP H.264 file, so clips decode cheaply.

Decoding a full-resolution original for every clip costs ~270 ms; the paper's model only ever sees
``size x size`` frames. So each video is decoded *once* into a proxy: an H.264 file already resized to
``size x size`` with a keyframe every :data:`PROXY_GOP` frames and no B-frames, so reading any 32
consecutive frames decodes at most ``32 + PROXY_GOP`` tiny frames. Proxies are keyed by the original's
sha256 and the size, live beside the export (or in ``--cache-dir``) and are reused by every run.
"""

from __future__ import annotations

import errno
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ffmpeg

from .._files import media_path, remove_abandoned_scratch, replacing, sha256_file
from .._waits import wait_first
from ..errors import ConfigError, DiskFull, MediaError
from .export_table import Export

PROXY_GOP = 8
PROXY_VERSION = "v1"  # bump when the proxy encoding changes, so stale caches are never reused
FFMPEG_TIMEOUT_S = 300
NO_SPACE = os.strerror(errno.ENOSPC)  # how ffmpeg, in its stderr, says a write found the disk full


def proxy_dir(cache_root: Path, size: int) -> Path:
    return Path(cache_root) / f"proxies-{PROXY_VERSION}-{size}px"


def encode_proxy(source: Path, target: Path, size: int) -> Path:
    """Decode ``source`` once and write a ``size x size`` short-GOP proxy to ``target`` (atomically, through
    a scratch file of its own: another trainer making the same proxy at the same time makes an equal one).

    Single-threaded x264 keeps the output byte-identical for the same input, so training, evaluation
    and ``corpus predict`` see exactly the same pixels. Only the first video stream is mapped (out of the
    filter graph), so the proxy keeps none of the original's audio, subtitles or stream tags.
    """
    if size % 2:
        raise ConfigError(f"--size must be even (H.264 4:2:0), got {size}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # here, not at the top: training from a cache needs no PyAV
    from ..media import FFMPEG, as_corrupt, run_tool, video_codec

    try:
        with replacing(target) as partial:
            command = (
                ffmpeg.input(media_path(source), threads=1)["v:0"]
                .filter("scale", size, size, flags="area")
                .filter("format", "yuv420p")
                .output(
                    media_path(partial),
                    **{"c:v": "libx264"},
                    preset="veryfast",
                    crf=20,
                    threads=1,
                    g=PROXY_GOP,
                    keyint_min=PROXY_GOP,
                    sc_threshold=0,
                    bf=0,
                    format="mp4",
                )
                .global_args("-nostdin", "-v", "error")
                .compile(cmd=FFMPEG, overwrite_output=True)
            )
            done = run_tool(command, timeout=FFMPEG_TIMEOUT_S, what=f"decode {source}")
            if NO_SPACE in done.stderr:  # ffmpeg exits 0 when the disk fills as it writes the mp4's index
                raise MediaError(f"{source}: {done.stderr.strip()}")
            if not partial.is_file() or partial.stat().st_size == 0:
                raise MediaError(f"{source}: cannot decode (no video frames)")
            video_codec(partial)  # a proxy ffmpeg left unfinished, with exit 0 all the same, is never kept
    except MediaError as exc:  # an input ffmpeg cannot decode is a corrupt video (timeouts stay timeouts)
        if NO_SPACE in exc.message:  # the proxy's disk, not the video: every file after it would fail alike
            raise DiskFull(f"no space left on the disk writing {target}: {exc.message}") from None
        raise as_corrupt(exc) from None
    return target


def build_cache(
    export: Export, size: int, cache_root: Path | None = None, workers: int | None = None, progress: bool = True
) -> dict[str, Path]:
    """Make sure every video of the export has its proxy; returns ``video_id -> proxy path``.

    Proxies already present are reused (the key is the original's sha256, so a re-export of the same
    file shares them). Undecodable originals are reported together in one :class:`MediaError` after
    all the others were built, so a rerun only redoes what failed. The scratch files of encoders killed
    before (on this host) are removed first.
    """
    directory = proxy_dir(cache_root or export.root / "cache", size)
    remove_abandoned_scratch(directory)
    jobs: dict[str, tuple[Path, Path]] = {}
    for source, row in zip(export.media_files(), export.table.itertuples(index=False), strict=True):
        digest = getattr(row, "sha256", None)
        digest = digest if isinstance(digest, str) and digest else sha256_file(source)[1]
        jobs[str(row.video_id)] = (source, directory / f"{digest}.mp4")
    # One job per proxy: byte-identical originals (reposts) share one, encoded once.
    todo = {dst: src for src, dst in jobs.values() if not dst.is_file()}
    failures: list[str] = []
    if todo:
        from rich.console import Console
        from rich.progress import Progress

        with (
            Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar,
            ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool,
        ):
            task = bar.add_task(f"decoding {len(todo)} videos into {size}px proxies", total=len(todo))
            pending = {pool.submit(encode_proxy, src, dst, size) for dst, src in todo.items()}
            try:
                while pending:
                    finished, pending = wait_first(pending)
                    for future in finished:
                        try:
                            future.result()
                        except MediaError as exc:
                            failures.append(exc.message)
                        bar.advance(task)
            except BaseException:
                for future in pending:  # Ctrl-C: the proxies being made finish, no new one starts
                    future.cancel()
                raise
    if failures:
        raise MediaError(f"{len(failures)} video(s) could not be decoded: " + "; ".join(failures[:5]))
    return {vid: dst for vid, (_, dst) in jobs.items()}
