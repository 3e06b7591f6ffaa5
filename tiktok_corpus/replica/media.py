"""Real video files for the replica's catalog, made with ffmpeg and cached on disk.

Each file is named by the hash of its :class:`MediaSpec`, so repeated runs (and every test session)
reuse what an earlier run made. Content is flat and synthetic - a solid background whose luma is the
visual signal's property, plus a small moving box, over a tone whose pitch is the audio signal's - so
files are tiny and encode at ~1,000 fps.

Command lines are built with ffmpeg-python and run through :func:`tiktok_corpus.media.run_tool`
(timeouts, stderr in errors). Ctrl-C during generation kills the running ffmpeg processes at once
instead of waiting for their batches; their ``.part`` files are removed, never renamed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import ffmpeg

from .._waits import wait_first
from ..errors import MediaError
from ..media import FFMPEG, run_tool
from .media_spec import VFR_SOURCE_FPS, VFR_SOURCE_FRAMES, MediaSpec

CACHE_ENV = "CORPUS_REPLICA_CACHE"
FFMPEG_TIMEOUT_S = 300
BATCH = 8  # files per ffmpeg run: process start-up is a large part of the cost


def default_cache_dir() -> Path:
    """``$CORPUS_REPLICA_CACHE``, else ``~/.cache/tiktok-corpus/replica-media``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "tiktok-corpus" / "replica-media"


def media_file(cache_dir: Path, spec: MediaSpec) -> Path:
    return cache_dir / f"{spec.cache_key}.mp4"


class _Runs:
    """The ffmpeg processes of one :func:`ensure_media` call, so stopping it can kill them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: weakref.WeakSet[subprocess.Popen] = weakref.WeakSet()
        self._stopping = False

    def started(self, process: subprocess.Popen) -> None:
        """A run that starts after :meth:`stop` is killed at once (its worker had not seen the stop)."""
        with self._lock:
            self._live.add(process)
            if self._stopping:
                process.kill()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            for process in self._live:
                process.kill()

    def run(self, args: list[str]) -> None:
        """Replica media that ffmpeg cannot make is a bug of ours, not the user's input: not expected."""
        try:
            run_tool(args, timeout=FFMPEG_TIMEOUT_S, what="make replica media", started=self.started)
        except MediaError as exc:
            raise MediaError(exc.message, expected=False) from None


def ensure_media(
    specs: Iterable[MediaSpec],
    cache_dir: Path,
    *,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Make every missing file, in parallel batches (one ffmpeg thread per worker, one worker per core).

    ``on_progress(done, total)`` is called as files land (for a progress bar). Whatever ends the call
    early (Ctrl-C, a failed batch) kills the other batches' ffmpeg processes rather than waiting for them.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    missing = list({spec.cache_key: spec for spec in specs if not media_file(cache_dir, spec).exists()}.values())
    total, done = len(missing), 0
    if on_progress:
        on_progress(0, total)
    if not missing:
        return
    runs = _Runs()
    for hz in sorted({spec.audio_hz for spec in missing if spec.has_audio}):
        _audio_loop(cache_dir, hz, runs)
    batches = [[spec] for spec in missing if spec.vfr]
    looped = [spec for spec in missing if not spec.vfr]
    batches += [looped[i : i + BATCH] for i in range(0, len(looped), BATCH)]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        pending: set[Future[int]] = set()
        try:  # from the first submit on: a Ctrl-C while submitting must stop the runs already started
            for batch in batches:
                pending.add(pool.submit(_generate, batch, cache_dir, runs))
            while pending:
                finished, pending = wait_first(pending)
                for future in finished:
                    done += future.result()
                    if on_progress:
                        on_progress(done, total)
        except BaseException:
            runs.stop()
            for future in pending:
                future.cancel()
            raise


def _command(stream: ffmpeg.Stream) -> list[str]:
    """The argv of an output (or merged outputs), quiet, overwriting, never reading stdin."""
    return stream.global_args("-nostdin", "-v", "error").compile(cmd=FFMPEG, overwrite_output=True)


def _audio_loop(cache_dir: Path, hz: int, runs: _Runs) -> Path:
    """One second of AAC (a tone, or silence for 0 Hz), shared by every file with that tone."""
    path = cache_dir / "loops" / f"audio-{hz}.m4a"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        tone = f"sine=f={hz}:sample_rate=22050:d=1" if hz else "anullsrc=r=22050:cl=mono:d=1"
        _run_atomic(
            [path],
            runs,
            lambda parts: _command(
                ffmpeg.input(tone, format="lavfi").output(
                    str(parts[0]), format="mp4", ac=1, **{"c:a": "aac", "b:a": "32k"}
                )
            ),
        )
    return path


def _canvases(batch: list[MediaSpec], seconds: float) -> list[ffmpeg.Stream]:
    """Each spec's black source video; specs of one size and rate share a source through ``split``.

    ffmpeg-python merges equal inputs into one, and one stream feeding several filter chains needs a split.
    """
    names = [
        f"color=c=black:s={spec.width}x{spec.height}:r={VFR_SOURCE_FPS if spec.vfr else spec.fps:g}:d={seconds}"
        for spec in batch
    ]
    shared: dict[str, Iterator[ffmpeg.Stream]] = {}
    for name, count in Counter(names).items():
        video = ffmpeg.input(name, format="lavfi").video
        copies = video.split() if count > 1 else None
        shared[name] = iter([copies[k] for k in range(count)] if copies is not None else [video])
    return [next(shared[name]) for name in names]


def _drawn(canvas: ffmpeg.Stream, spec: MediaSpec) -> ffmpeg.Stream:
    """Flat background at the spec's luma and hue, and a small moving box of a contrasting tone."""
    box = spec.width // 8
    drawn = (
        canvas.filter("format", "yuv420p")
        .filter("lutyuv", y=spec.luma, u=spec.u, v=spec.v)
        .filter(
            "drawbox",
            x=f"mod(t*{spec.box_speed}+{spec.salt % 97},{spec.width - box})",
            y=spec.height // 3,
            w=box,
            h=box,
            color="white" if spec.luma < 128 else "black",
            t="fill",
        )
    )
    if spec.vfr:  # every frame for the first half, then every third: variable frame rate
        drawn = drawn.filter("select", f"lt(n,{VFR_SOURCE_FRAMES // 2})+not(mod(n,3))")
    return drawn


def _encoder(spec: MediaSpec, gop: int) -> dict[str, object]:
    if spec.codec == "hevc":
        return {
            "c:v": "libx265",
            "preset": "ultrafast",
            "crf": 36,
            "tag:v": "hvc1",
            "x265-params": f"log-level=error:pools=1:frame-threads=1:keyint={gop}",
        }
    return {"c:v": "libx264", "preset": "ultrafast", "crf": 36, "threads": 1, "g": gop}


def _finish(spec: MediaSpec) -> dict[str, object]:
    return {
        "frames:v": spec.frames,
        "t": f"{spec.duration_s:.6f}",
        "map_metadata": -1,
        "metadata": f"comment=replica {spec.salt}",
        "movflags": "+faststart",
        "format": "mp4",
    }


def _generate(batch: list[MediaSpec], cache_dir: Path, runs: _Runs) -> int:
    """Make one batch of files; returns how many landed.

    Constant-rate files are one second of encoded video, stream-copied in a loop to full length
    (encoding every frame of every file would take minutes): one ffmpeg run encodes the batch's
    seconds, a second one loops them with the shared audio loops. The VFR file is encoded whole.
    """
    finals = [media_file(cache_dir, spec) for spec in batch]
    if batch[0].vfr:
        spec = batch[0]
        streams = [_drawn(_canvases(batch, spec.duration_s + 1)[0], spec)]
        audio: dict[str, str] = {}
        if spec.has_audio:
            streams.append(ffmpeg.input(str(_audio_loop(cache_dir, spec.audio_hz, runs))).audio)
            audio = {"c:a": "copy"}
        _run_atomic(
            finals,
            runs,
            lambda parts: _command(
                ffmpeg.output(
                    *streams, str(parts[0]), fps_mode="vfr", **_encoder(spec, VFR_SOURCE_FPS), **audio, **_finish(spec)
                )
            ),
        )
        return 1
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix="segments-") as scratch:
        segments = [Path(scratch) / f"{i}.mp4" for i in range(len(batch))]
        encodes = []
        for spec, canvas, segment in zip(batch, _canvases(batch, 2), segments):
            gop = max(1, round(spec.fps))
            encodes.append(_drawn(canvas, spec).output(str(segment), **{"frames:v": gop}, **_encoder(spec, gop)))
        runs.run(_command(ffmpeg.merge_outputs(*encodes)))

        def loop_args(parts: list[Path]) -> list[str]:
            outputs = []
            for spec, segment, part in zip(batch, segments, parts):
                streams = [ffmpeg.input(str(segment), stream_loop=-1).video]
                if spec.has_audio:
                    loop = _audio_loop(cache_dir, spec.audio_hz, runs)
                    streams.append(ffmpeg.input(str(loop), stream_loop=-1).audio)
                outputs.append(ffmpeg.output(*streams, str(part), c="copy", **_finish(spec)))
            return _command(ffmpeg.merge_outputs(*outputs))

        _run_atomic(finals, runs, loop_args)
    return len(batch)


def _run_atomic(finals: list[Path], runs: _Runs, build: Callable[[list[Path]], list[str]]) -> None:
    """Write to ``.part`` files and rename: a crash never leaves a half file under a real name."""
    parts = [final.with_name(f"{final.name}.{os.getpid()}.{threading.get_ident()}.part") for final in finals]
    try:
        runs.run(build(parts))
        for part, final in zip(parts, finals):
            os.replace(part, final)
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
