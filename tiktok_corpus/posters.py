"""Poster frames: one JPEG per video file, at the video's own aspect ratio, extracted once with ffmpeg.

The report's best/worst strip, the training run's strip and ``corpus browse`` all show these. A poster
is cached as ``<cache dir>/<sha256 of the media file>.jpg``, so a re-downloaded or replaced file gets a
new poster and an unchanged one is never decoded again. ffmpeg's ``thumbnail`` filter picks the most
representative of the first frames (not a black first frame), and the width is scaled to
:data:`POSTER_WIDTH` with the height following the aspect ratio. A file that gives no poster leaves
``<sha256>.failed`` (ffmpeg's words) beside them, so it is not decoded again on every view of a grid
page, nor by every start of ``corpus browse``'s background job; a timeout leaves none (the machine may
only have been busy).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ffmpeg

from ._files import media_path, sha256_file, write_text_atomically
from ._waits import ordered_map
from .errors import CorpusError, MediaError, disk_full, not_permitted
from .media import CUT_SHORT, FFMPEG, run_tool

POSTER_WIDTH = 360
THUMBNAIL_FRAMES = 30  # frames the thumbnail filter chooses among: the first second or so
POSTER_TIMEOUT_S = 60.0


def poster_path(cache_dir: Path, sha256: str) -> Path:
    """Where the poster of the file with this sha256 lives (whether or not it was made yet)."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise MediaError(f"not a sha256 hex digest: {sha256!r}", kind="unreadable")
    return Path(cache_dir) / f"{sha256}.jpg"


def poster_frame(source: Path, cache_dir: Path, *, sha256: str | None = None) -> Path:
    """The poster of ``source`` (made now unless cached); ``sha256`` saves hashing the file again.

    Raises :class:`MediaError` when the file is missing or ffmpeg cannot decode a frame of it, a
    :class:`~tiktok_corpus.errors.ConfigError` when the cache cannot be written (a read-only corpus).
    """
    source = Path(source)
    if not source.is_file():
        raise MediaError(f"{source}: no such media file", kind="missing_file")
    target = poster_path(cache_dir, sha256 or sha256_file(source)[1])
    if target.is_file():
        return target
    failed = target.with_suffix(".failed")
    if failed.is_file():
        raise MediaError(failed.read_text(encoding="utf-8", errors="replace"), kind="corrupt")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per call: browse serves requests on threads of one process, and two asking for
        # the same poster at once must not write, rename or delete each other's file.
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:  # a corpus browsed read-only, a full disk: no poster, and the error says why
        raise (not_permitted(exc) or disk_full(exc) or exc) from None
    os.close(handle)
    partial = Path(name)
    command = (
        ffmpeg.input(media_path(source))["v:0"]
        .filter("thumbnail", THUMBNAIL_FRAMES)
        .filter("scale", POSTER_WIDTH, -2)
        # update=1: the name is a file's, not a pattern (a "%d" in a folder's name would be a frame number)
        .output(media_path(partial), vframes=1, format="image2", update=1, vcodec="mjpeg", **{"q:v": 4})
        .global_args("-nostdin", "-v", "error")
        .compile(cmd=FFMPEG, overwrite_output=True)
    )
    try:
        run_tool(command, timeout=POSTER_TIMEOUT_S, what=f"extract a poster frame of {source}")
        if not partial.is_file() or partial.stat().st_size == 0:
            raise MediaError(f"{source}: no video frame to make a poster of", kind="corrupt")
        partial.replace(target)
    except MediaError as exc:
        if exc.kind not in CUT_SHORT:
            write_text_atomically(failed, exc.message)
        raise
    finally:
        partial.unlink(missing_ok=True)
    return target


def poster_frames(
    sources: Sequence[tuple[Path, str | None]],
    cache_dir: Path,
    *,
    advance: Callable[[], None] | None = None,
    workers: int | None = None,
) -> list[Path | None]:
    """Posters of many ``(file, sha256 or None)`` in order, in parallel; ``None`` where a file cannot
    give one (missing, undecodable). ``advance`` is called once per file (a progress bar's tick)."""

    def one(item: tuple[Path, str | None]) -> Path | None:
        try:
            return poster_frame(item[0], cache_dir, sha256=item[1])
        except CorpusError:
            return None
        finally:
            if advance is not None:
                advance()

    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        return list(ordered_map(pool, one, sources))
