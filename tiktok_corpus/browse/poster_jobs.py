"""The grid's poster frames, made ahead of the first look: all at once, or on a thread while the server
answers."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from .._files import downloaded_file
from ..posters import poster_frame, poster_frames, poster_path
from .catalog import Catalog


class PosterRequests:
    """The posters the grid asks for before the background job made them, made on the request's thread:
    at most ``workers`` ffmpeg runs at once (a page of 48 cards asked them all at once, 16 decoders on
    two cores starving every other page), and one run per file (a second request for a poster being
    made waits for it, then finds it cached)."""

    def __init__(
        self, cache_dir: Path, *, workers: int | None = None, make: Callable[..., Path] = poster_frame
    ) -> None:
        self._cache_dir = cache_dir
        self._make = make
        self._slots = threading.BoundedSemaphore(workers or os.cpu_count() or 1)
        self._per_file: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def poster(self, source: Path, sha256: str | None) -> Path:
        """The poster of ``source``; raises what :func:`~tiktok_corpus.posters.poster_frame` raises."""
        cached = poster_path(self._cache_dir, sha256) if sha256 else None
        if cached is not None and cached.is_file():
            return cached
        with self._guard:
            one_run = self._per_file.setdefault(sha256 or str(source), threading.Lock())
        with one_run:
            if cached is not None and cached.is_file():  # made while this request waited
                return cached
            with self._slots:
                return self._make(source, self._cache_dir, sha256=sha256)


def poster_cache_problem(data_dir: Path) -> str | None:
    """Why no poster can be made for the grid (``<data dir>/posters`` cannot be written: a corpus browsed
    read-only), else None. Those made before are still shown."""
    cache = data_dir / "posters"
    folder = cache if cache.is_dir() else data_dir
    return None if os.access(folder, os.W_OK) else f"{folder} cannot be written (only those made before are shown)"


def make_posters(data_dir: Path, catalog: Catalog, *, advance: Callable[[], None] | None = None) -> tuple[int, int]:
    """Extract the poster frame of every downloaded video not yet cached (``<data dir>/posters``), so
    the grid never waits on ffmpeg; returns ``(posters, files that gave none)``."""
    rows = catalog.rows()
    rows = rows[rows["media_path"].notna()]
    found = [(_inside(data_dir, path), sha) for path, sha in zip(rows["media_path"], rows["sha256"])]
    sources = [(path, sha) for path, sha in found if path is not None]
    made = poster_frames(sources, data_dir / "posters", advance=advance)
    return sum(p is not None for p in made), sum(p is None for p in made) + len(found) - len(sources)


def _inside(data_dir: Path, media_path: str) -> Path | None:
    """The row's file, where it is one in the downloads' folder (as the routes serve them), else None: a
    row naming ``/etc/passwd`` or a link out had ffmpeg read it."""
    try:
        return downloaded_file(data_dir, media_path)
    except FileNotFoundError:
        return None


class _Stopped(Exception):
    """Raised by a poster job once the server stops: the jobs not yet started are cancelled."""


def make_posters_in_background(
    data_dir: Path, catalog: Catalog, *, stop: threading.Event, done: Callable[[int, int], None]
) -> threading.Thread:
    """:func:`make_posters` on a thread of its own, so the server answers at once (a card whose poster is
    not made yet gets it made when first shown): an hour of ffmpeg runs on a large corpus no longer
    comes before the first page. ``done(posters, failed)`` is called when all are made; setting ``stop``
    ends the work after the runs in progress."""

    def stop_when_asked() -> None:
        if stop.is_set():
            raise _Stopped

    def run() -> None:
        try:
            done(*make_posters(data_dir, catalog, advance=stop_when_asked))
        except _Stopped:
            pass

    thread = threading.Thread(target=run, name="posters", daemon=True)
    thread.start()
    return thread
