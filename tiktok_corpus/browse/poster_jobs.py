"""The grid's poster frames, made ahead of the first look: all at once, or on a thread while the server
answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..posters import poster_frames
from .catalog import Catalog


def make_posters(data_dir: Path, catalog: Catalog, *, advance: Callable[[], None] | None = None) -> tuple[int, int]:
    """Extract the poster frame of every downloaded video not yet cached (``<data dir>/posters``), so
    the grid never waits on ffmpeg; returns ``(posters, files that gave none)``."""
    rows = catalog.rows()
    rows = rows[rows["media_path"].notna()]
    sources = [(data_dir / path, sha) for path, sha in zip(rows["media_path"], rows["sha256"])]
    made = poster_frames(sources, data_dir / "posters", advance=advance)
    return sum(p is not None for p in made), sum(p is None for p in made)


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
