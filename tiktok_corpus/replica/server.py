"""The replica's HTTP server: :class:`Replica` runs the routes of :mod:`.site` on uvicorn in a thread."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from .._serving import BackgroundServer
from ..clock import Clock, ScaledClock
from ..errors import ConfigError
from .catalog import build_catalog
from .cdn import ConnectionCut
from .config import ReplicaConfig
from .faults import FaultPlan, ReplicaStats
from .items import STATUS_NOT_FOUND
from .media import default_cache_dir, ensure_media, media_file
from .removals import Removals
from .signing import SigningSetting
from .site import ReplicaSite

GRACEFUL_SHUTDOWN_S = 2  # responses in flight when the replica stops get this long to finish


class _HideConnectionCuts(logging.Filter):
    """No traceback for the cuts made on purpose: the `truncated` fault, and the responses a stop cancels."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], (ConnectionCut, asyncio.CancelledError)))


class Replica:
    """The replica site, served by uvicorn in a background thread; use as a context manager.

    Two clocks (unix seconds). ``clock`` is wall time: it decides URL expiry and signature freshness, so
    a 60 s signature stays valid for 60 real seconds however fast the site runs. ``site_clock`` is the
    site's time: the counts and ``extra.now`` of every answer are computed at one reading of it. Without
    ``config.time_scale`` it is ``clock`` and the catalog is static; with one it defaults to
    ``ScaledClock(time_origin, time_scale, wall=clock)`` and counts grow (:mod:`.growth`). Inject either
    to test without waiting. Each start draws new signing keys.
    ``on_progress(done, total)`` reports media generation (the CLI's progress bar).

    Nothing here joins the server thread while a Ctrl-C may land: on Python 3.11 a KeyboardInterrupt
    that interrupts ``Thread.join`` marks the thread finished while it still runs (python/cpython#90882),
    so :meth:`stop` would return at once and the process would tear down under a live server. An
    Event set when the thread ends is waited on instead.
    """

    def __init__(
        self,
        config: ReplicaConfig | None = None,
        *,
        clock: Clock = time.time,
        site_clock: Clock | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.config = config or ReplicaConfig()
        self.time_origin, self.site_clock = _site_time(self.config, clock, site_clock)
        self.catalog = build_catalog(
            self.config.videos,
            self.config.seed,
            signals=self.config.signals,
            growth_origin=self.time_origin,
            media_scale=self.config.media_scale,
        )
        self.cache_dir = self.config.media_cache or default_cache_dir()
        self._plan = FaultPlan(self.config.seed, self.config.faults)
        self._signing = SigningSetting(self.config.signing)
        self._removals = Removals(self.catalog)
        self._clock = clock
        self._on_progress = on_progress
        self._serving: BackgroundServer | None = None
        self.base_url = ""

    def media_path(self, video_id: str) -> Path:
        """The file whose exact bytes the CDN serves for ``video_id`` (KeyError if not playable)."""
        video = self.catalog.by_id[video_id]
        if video.media is None:
            raise KeyError(f"{video_id} is a {video.kind} post without media")
        return media_file(self.cache_dir, video.media)

    def set_faults(self, faults: dict[str, float]) -> None:
        """Replace the fault rates while serving (names left out go back to 0)."""
        self._plan.set(faults)

    def set_signing(self, mode: str) -> None:
        """Switch the signing mode while serving (``none``, ``xbogus``, ``gnarly``); the keys stay."""
        self._signing.set(mode)

    def remove(self, video_id: str, status_code: int = STATUS_NOT_FOUND) -> None:
        """Take a post down while serving: its page and detail API answer ``status_code`` (10204 deleted,
        10216 private) from now on, and its related list 10204. ConfigError for an unknown post or code."""
        self._removals.remove(video_id, status_code)

    @property
    def signing(self) -> str:
        """The signing mode enforced now."""
        return self._signing.mode

    @property
    def stats(self) -> ReplicaStats:
        return self._plan.snapshot()

    def start(self) -> Replica:
        """Make the media, then serve; interrupted (Ctrl-C) or failed, it leaves nothing running."""
        media = {}
        if self.config.media:
            ensure_media(
                [video.media for video in self.catalog.playable() if video.media is not None],
                self.cache_dir,
                on_progress=self._on_progress,
            )
            media = {video.id: self.media_path(video.id) for video in self.catalog.playable()}
        site = ReplicaSite(
            self.catalog, media, self._plan, self._signing, self._removals, self.config, self._clock, self.site_clock
        )
        logging.getLogger("uvicorn.error").addFilter(_HideConnectionCuts())
        self._serving = BackgroundServer(
            site.app,
            self.config.host,
            self.config.port,
            name="replica-server",
            graceful_shutdown_s=GRACEFUL_SHUTDOWN_S,
        )
        self.base_url = self._serving.start()
        return self

    def wait(self) -> None:
        """Block until the server stops (the CLI serves until Ctrl-C)."""
        if self._serving is not None:
            self._serving.wait()

    def stop(self) -> None:
        """Stop serving: idle connections close at once, responses in flight get GRACEFUL_SHUTDOWN_S.

        A second Ctrl-C while stopping cuts those responses short; the server is stopped either way.
        """
        serving, self._serving = self._serving, None
        if serving is not None:
            serving.stop()

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _site_time(config: ReplicaConfig, clock: Clock, site_clock: Clock | None) -> tuple[float | None, Clock]:
    """The site clock's origin (None: a static site) and the site clock itself."""
    if config.time_scale is None:
        if config.time_origin is not None:
            raise ConfigError("--time-origin needs --time-scale: a site clock's origin means nothing without its speed")
        return None, site_clock or clock
    if not config.time_scale > 0:
        raise ConfigError(f"time_scale must be positive, not {config.time_scale}")
    origin = config.time_origin if config.time_origin is not None else (site_clock or clock)()
    return origin, site_clock or ScaledClock(origin, config.time_scale, wall=clock)
