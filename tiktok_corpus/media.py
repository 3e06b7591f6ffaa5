"""Media probing in-process (PyAV, libav's own demuxers) with ffprobe/ffmpeg as the fallback.

:func:`probe` answers "what is in this file, and exactly how many video frames" without decoding the
video. It opens the file in this process with PyAV (about 2-4 ms, against 60-150 ms of CPU for starting
an ``ffprobe``), and only where libav cannot read the file does it run ``ffprobe``, whose exit status
and stderr give the verdict and a clear message. Both paths fill the same ffprobe-shaped record and go
through one interpretation, so they agree field for field (the in-process one prints durations as
ffprobe does):

* ISO-BMFF files (mp4/mov: what TikTok serves) state the frame count (``nb_frames``, the sample
  table). It is trusted when it agrees with duration x frame rate and a walk over the top-level
  boxes shows the file is whole - a truncated ``mdat`` would otherwise keep the full count;
* every other container (or an inconsistent ``nb_frames``, or a box whose size cannot show where the
  file ends) gets its video packets counted
  (demux only: ``container.demux`` in-process, ``-count_packets`` in ffprobe). Demuxer errors met
  while counting (a file that ends early) make the file corrupt.

:func:`deep_check` decodes the whole file (``ffmpeg -v error ... -f null -``) to catch corrupt
streams, and returns the decoded frame count.

ffmpeg-python's ``probe()`` has no timeout and drops stderr, so the argument lists are run here with
:func:`run_tool`; a hung ffprobe is killed and reported like any unreadable file. In-process,
libav's interrupt callback aborts a read that blocks past the timeout, and a probe that ends past it
is reported as a timeout too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ._bmff import check_whole
from ._files import media_path
from .errors import ConfigError, MediaError

FFPROBE = "ffprobe"
FFMPEG = "ffmpeg"
PROBE_TIMEOUT_S = 60.0
DEEP_TIMEOUT_S = 900.0
STDERR_KEPT = 2000  # characters of ffmpeg's stderr kept in an error message
# nb_frames may differ from duration x average fps by rounding of the last frame's duration.
NB_FRAMES_TOLERANCE = 1.5
DEADLINE_CHECK_PACKETS = 256  # packets counted between two looks at the clock


@dataclass(frozen=True)
class ProbeResult:
    """What probing found in one file; ``video_codec is None`` means there is no video stream."""

    container: str | None
    video_codec: str | None
    width: int | None
    height: int | None
    avg_fps: float | None
    r_fps: float | None
    duration_s: float | None
    frame_count: int | None
    frame_count_method: str | None  # "nb_frames" | "packets" | "decode"
    has_audio: bool
    audio_codec: str | None
    bitrate: int | None


# A run cut short says nothing of its file: a timeout, or a stop signal (a crash's may be the file's doing).
# Ctrl-C reaches ffmpeg too (the whole process group): it exits 255, nothing on stderr, once read as
# "unreadable" (a good file corrupt, or poster-less for good).
CUT_SHORT, _STOPPED_BY = ("timeout", "interrupted"), {-signal.SIGINT, -signal.SIGTERM, -signal.SIGHUP}


def as_corrupt(error: MediaError) -> MediaError:
    """A failed read of a video as validation would record it: ``corrupt`` (empty, unreadable, cut off),
    unless the read itself was cut short, which says nothing of the file."""
    return MediaError(error.message, kind=error.kind if error.kind in CUT_SHORT else "corrupt")


def run_tool(
    args: list[str], *, timeout: float, what: str, started: Callable[[subprocess.Popen[str]], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run an ffmpeg-family tool; a non-zero exit or a timeout raises MediaError with its stderr.

    ``started(process)`` is told of the child as soon as it runs, so a caller can kill it from another
    thread (the replica's Ctrl-C); that run then fails like any other. An exception here (Ctrl-C) kills it.
    """
    try:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
        )
    except FileNotFoundError:
        raise ConfigError(f"{args[0]} is not installed (needed to {what})") from None
    with process:
        try:
            if started is not None:
                started(process)
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise MediaError(f"{what}: {args[0]} took longer than {timeout:g}s", kind="timeout") from None
        except BaseException:
            process.kill()
            raise
    if process.returncode in _STOPPED_BY or (process.returncode == 255 and not stderr.strip()):
        raise MediaError(f"{what}: {args[0]} stopped by a signal (exit code {process.returncode})", kind="interrupted")
    if process.returncode != 0:
        raise MediaError(f"{what}: {_tail(stderr) or f'exit code {process.returncode}'}", kind="unreadable")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def probe(path: str | os.PathLike, *, timeout: float = PROBE_TIMEOUT_S, in_process: bool = True) -> ProbeResult:
    """Describe a media file without decoding it; raises MediaError when it cannot be read.

    ``in_process=False`` skips PyAV and asks ffprobe (the cross-check of the in-process path).
    """
    path = Path(path)
    return _probe(path, whole=check_whole(path), timeout=timeout, in_process=in_process)


def _probe(path: Path, *, whole: bool, timeout: float, in_process: bool = True) -> ProbeResult:
    """:func:`probe` once the boxes were walked (``whole``: whether they vouch for the file)."""
    found = _libav_info(path, whole=whole, timeout=timeout) if in_process else None
    info, demuxer_errors = found or _ffprobe_info(path, whole=whole, timeout=timeout)
    video = _first_video_stream(info)
    if "nb_read_packets" in (video or {}) and demuxer_errors:
        raise MediaError(f"{path.name}: demuxer errors while reading packets: {demuxer_errors}", kind="truncated")
    return _result(info, video)


def video_codec(path: str | os.PathLike, *, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """The codec of the file's first video stream (None: it has none); raises MediaError when unreadable.

    "libav opens it and finds a video stream" and nothing more - no frame count, no stream report, no
    frame decoded - so it costs a quarter to a half of :func:`probe`: the downloader's acceptance check,
    run on every file it lands. Where PyAV cannot open or describe the file, ffprobe decides, as in
    :func:`probe`.
    """
    path = Path(path)
    if not check_whole(path):  # no box says where the file ends: the packets tell whether it is cut
        return _probe(path, whole=False, timeout=timeout).video_codec
    try:
        # Headers only: no frame decoded (skip_frame) and no packets read ahead to analyse them
        # (probesize); an mp4 states its streams in its index. A third of a plain open's CPU. The work
        # is bounded by the local file's size, so no interrupt callback (``timeout``) is installed:
        # libav would call it, taking the GIL, on every read, which doubled the cost beside a busy
        # event loop. ``timeout`` bounds the ffprobe fallback.
        with av.open(
            media_path(path), metadata_errors="replace", options={"skip_frame": "all", "probesize": "32"}
        ) as container:
            for stream in container.streams.video:
                if not stream.disposition & av.stream.Disposition.attached_pic:
                    if stream.codec_context is None:
                        break  # no decoder here to name it: ffprobe does
                    return stream.codec_context.codec.canonical_name
            else:
                return None
    except av.FFmpegError:
        pass
    return probe(path, timeout=timeout, in_process=False).video_codec


def deep_check(path: str | os.PathLike, *, timeout: float = DEEP_TIMEOUT_S) -> int:
    """Decode every stream of the file; returns the decoded video frame count.

    Raises MediaError when ffmpeg fails or reports any error (a corrupt stream decodes "successfully"
    with errors on stderr, so stderr counts).
    """
    path = Path(path)
    args = [
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-i",
        media_path(path),
        "-fps_mode",
        "passthrough",
        "-f",
        "null",
        "-progress",
        "pipe:1",
        "-nostats",
        "-",
    ]
    done = run_tool(args, timeout=timeout, what=f"decode {path.name}")
    if done.stderr.strip():
        raise MediaError(f"{path.name}: decoding errors: {_tail(done.stderr)}", kind="decode_error")
    frames = [line for line in done.stdout.splitlines() if line.startswith("frame=")]
    if not frames:
        raise MediaError(f"{path.name}: no video frames decoded", kind="decode_error")
    return int(frames[-1].split("=", 1)[1])


# --- in-process: PyAV ---------------------------------------------------------------------------


def _libav_info(path: Path, *, whole: bool, timeout: float) -> tuple[dict, str] | None:
    """The ffprobe-shaped record and the container's error logs, or None where libav cannot read it.

    Error logs are captured per thread (PyAV's log capture), so concurrent probes keep theirs apart.
    """
    deadline = time.monotonic() + timeout
    _keep_libav_errors()
    try:
        with (
            av.logging.Capture() as logs,
            av.open(media_path(path), timeout=timeout, metadata_errors="replace") as container,
        ):
            info: dict[str, Any] = {
                "format": _libav_format(container),
                "streams": [_libav_stream(stream) for stream in container.streams],
            }
            video = _first_video_stream(info)
            if video is not None and (not whole or _stated_frame_count(info, video) is None):
                packets = _count_packets(container, container.streams[video["index"]], deadline)
                video["nb_read_packets"] = str(packets)
    except (av.ExitError, TimeoutError):  # libav's interrupt callback, or the count ran too long
        raise _timeout(path, timeout) from None
    except (av.FFmpegError, _NotInProcess):
        return None
    if time.monotonic() > deadline:
        raise _timeout(path, timeout)
    container_name = info["format"]["format_name"]
    return info, _tail("\n".join(f"[{name}] {message}" for _, name, message in logs if name == container_name))


def _keep_libav_errors() -> None:
    """PyAV drops libav's logs by default and skips a message equal to the previous one (from any
    file or thread): the probe needs every error, so both are switched (process-wide, errors only)."""
    if av.logging.get_level() is None:
        av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)


class _NotInProcess(Exception):
    """A stream PyAV cannot describe (no decoder for it): ffprobe describes the file instead."""


def _libav_format(container) -> dict:
    """``format`` as ffprobe prints it (N/A becomes absent)."""
    found = {"format_name": container.format.name}
    if container.duration is not None:
        found["duration"] = _seconds(container.duration, 1 / av.time_base)
    if container.bit_rate > 0:
        found["bit_rate"] = str(container.bit_rate)
    return found


def _libav_stream(stream) -> dict:
    """One entry of ``streams`` as ffprobe prints it; only audio and video are described."""
    found = {
        "index": stream.index,
        "codec_type": stream.type,
        "disposition": {"attached_pic": int(bool(stream.disposition & av.stream.Disposition.attached_pic))},
    }
    if stream.type not in ("video", "audio"):
        return found
    if stream.codec_context is None:
        raise _NotInProcess(f"no decoder for stream {stream.index}")
    found["codec_name"] = stream.codec_context.codec.canonical_name
    if stream.type == "video":
        found["width"], found["height"] = stream.codec_context.width, stream.codec_context.height
        found["avg_frame_rate"], found["r_frame_rate"] = _ratio(stream.average_rate), _ratio(stream.base_rate)
        if stream.frames:
            found["nb_frames"] = str(stream.frames)
    if stream.duration is not None and stream.time_base:
        found["duration"] = _seconds(stream.duration, stream.time_base.numerator / stream.time_base.denominator)
    return found


def _count_packets(container, stream, deadline: float) -> int:
    """Demux (never decode) the stream and count the packets it shows: not those an MP4 edit list
    discards (a stream cut without re-encoding keeps the frames before its cut, flagged discard)."""
    count = 0
    for packet in container.demux(stream):
        # not the empty flush packet PyAV yields at the end
        if (packet.size or packet.dts is not None) and not packet.is_discard:
            count += 1
            if count % DEADLINE_CHECK_PACKETS == 0 and time.monotonic() > deadline:
                raise TimeoutError
    return count


def _seconds(ticks: int, tick_s: float) -> str:
    """A timestamp the way ffprobe prints it: ticks x time base as a double, six decimals."""
    return f"{ticks * tick_s:f}"


def _ratio(rate) -> str:
    return f"{rate.numerator}/{rate.denominator}" if rate else "0/0"


def _timeout(path: Path, timeout: float) -> MediaError:
    return MediaError(f"probe {path.name}: PyAV took longer than {timeout:g}s", kind="timeout")


# --- ffprobe ------------------------------------------------------------------------------------


def _ffprobe_info(path: Path, *, whole: bool, timeout: float) -> tuple[dict, str]:
    """The record from ffprobe (packets counted where the stated count is absent or not trusted)."""
    args = [FFPROBE, "-hide_banner", "-v", "error", "-of", "json", "-show_format", "-show_streams", media_path(path)]
    done = run_tool(args, timeout=timeout, what=f"probe {path.name}")
    try:
        info = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise MediaError(f"{path.name}: ffprobe printed no JSON: {_tail(done.stderr)}", kind="unreadable") from None
    stderr = done.stderr
    video = _first_video_stream(info)
    if video is not None and (not whole or _stated_frame_count(info, video) is None):
        packets, reading_errors = _ffprobe_count_packets(path, video["index"], timeout=timeout)
        video["nb_read_packets"] = str(packets)
        stderr += reading_errors
    container = info.get("format", {}).get("format_name")
    return info, _tail(stderr) if container and f"[{container} @" in stderr else ""


def _ffprobe_count_packets(path: Path, stream_index: int, *, timeout: float) -> tuple[int, str]:
    """The stream's packets as :func:`_count_packets` counts them (those flagged D, discarded by an edit
    list, left out), and ffprobe's errors while reading them."""
    args = [FFPROBE, "-v", "error", "-select_streams", str(stream_index), "-show_entries", "packet=flags"]
    done = run_tool([*args, "-of", "csv=p=0", media_path(path)], timeout=timeout, what=f"probe {path.name}")
    return sum(1 for flags in done.stdout.split() if "D" not in flags), done.stderr


def _first_video_stream(info: dict) -> dict | None:
    """The first real video stream: cover art (attached pictures) is not a video."""
    for stream in info.get("streams", []):
        if stream.get("codec_type") == "video" and not stream.get("disposition", {}).get("attached_pic"):
            return stream
    return None


def _first_audio_stream(info: dict) -> dict | None:
    return next((s for s in info.get("streams", []) if s.get("codec_type") == "audio"), None)


def _duration(info: dict, video: dict | None) -> float | None:
    return _number(float, (video or {}).get("duration")) or _number(float, info.get("format", {}).get("duration"))


def _stated_frame_count(info: dict, video: dict) -> int | None:
    """``nb_frames`` when the container states it and it agrees with duration x average fps."""
    stated = _number(int, video.get("nb_frames"))
    duration, fps = _duration(info, video), _rate(video.get("avg_frame_rate"))
    if not stated or not duration or not fps:
        return None
    return stated if abs(stated - duration * fps) <= NB_FRAMES_TOLERANCE else None


def _result(info: dict, video: dict | None) -> ProbeResult:
    audio = _first_audio_stream(info)
    fmt = info.get("format", {})
    frame_count, method = None, None
    if video is not None:
        if "nb_read_packets" in video:
            frame_count, method = _number(int, video["nb_read_packets"]), "packets"
        else:
            frame_count, method = _stated_frame_count(info, video), "nb_frames"
    video = video or {}
    return ProbeResult(
        container=fmt.get("format_name"),
        video_codec=video.get("codec_name"),
        width=_number(int, video.get("width")),
        height=_number(int, video.get("height")),
        avg_fps=_rate(video.get("avg_frame_rate")),
        r_fps=_rate(video.get("r_frame_rate")),
        duration_s=_duration(info, video or None),
        frame_count=frame_count,
        frame_count_method=method,
        has_audio=audio is not None,
        audio_codec=(audio or {}).get("codec_name"),
        bitrate=_number(int, fmt.get("bit_rate")),
    )


def _number(kind, value):
    """ffprobe's numeric strings ("N/A" and missing become None)."""
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _rate(value: str | None) -> float | None:
    """ "30000/1001" -> 29.97; "0/0" (unknown) -> None."""
    if not value:
        return None
    try:
        rate = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return float(rate) if rate > 0 else None


def _tail(stderr: str) -> str:
    text = " | ".join(line.strip() for line in stderr.strip().splitlines() if line.strip())
    return text if len(text) <= STDERR_KEPT else "..." + text[-STDERR_KEPT:]
