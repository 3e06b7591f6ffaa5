"""The replica's HTTP server: :class:`Replica` runs the routes of :mod:`.site` on uvicorn in a thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from .._waits import wait_event
from .catalog import build_catalog
from .faults import FaultPlan, ReplicaStats
from .media import default_cache_dir, ensure_media, media_file
from .signing import SigningSetting
from .site import ConnectionCut, ReplicaSite

GRACEFUL_SHUTDOWN_S = 2  # responses in flight when the replica stops get this long to finish
STOP_TIMEOUT_S = 10


@dataclass
class ReplicaConfig:
    """What the replica serves. ``media_cache`` None means :func:`default_cache_dir`."""

    videos: int = 300
    seed: int = 0
    signal: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    media_cache: Path | None = None
    host: str = "127.0.0.1"
    port: int = 0
    url_ttl_s: int = 6 * 3600
    slow_seconds: float = 2.0
    media: bool = True  # False: metadata only (the CDN answers 404), for crawls of big catalogs
    signing: str = "none"  # none | xbogus | gnarly: what the APIs demand (see .signing)


class _HideConnectionCuts(logging.Filter):
    """No traceback for the cuts made on purpose: the `truncated` fault, and the responses a stop cancels."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], (ConnectionCut, asyncio.CancelledError)))


class Replica:
    """The replica site, served by uvicorn in a background thread; use as a context manager.

    ``clock`` (unix seconds) decides URL expiry and signature freshness; inject one to test them without
    waiting. Each start draws new signing keys.
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
        clock: Callable[[], float] = time.time,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.config = config or ReplicaConfig()
        self.catalog = build_catalog(self.config.videos, self.config.seed, self.config.signal)
        self.cache_dir = self.config.media_cache or default_cache_dir()
        self._plan = FaultPlan(self.config.seed, self.config.faults)
        self._signing = SigningSetting(self.config.signing)
        self._clock = clock
        self._on_progress = on_progress
        self._server: uvicorn.Server | None = None
        self._stopped = threading.Event()
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
        site = ReplicaSite(self.catalog, media, self._plan, self._signing, self.config, self._clock)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        host, port = sock.getsockname()[:2]
        self.base_url = f"http://{host}:{port}"
        logging.getLogger("uvicorn.error").addFilter(_HideConnectionCuts())
        server_config = uvicorn.Config(
            site.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        self._server = uvicorn.Server(server_config)
        self._stopped = threading.Event()
        threading.Thread(
            target=self._serve, args=(self._server, sock, self._stopped), name="replica-server", daemon=True
        ).start()
        try:
            deadline = time.monotonic() + 15
            while not self._server.started:
                if self._stopped.is_set() or time.monotonic() > deadline:
                    raise RuntimeError("the replica server did not start")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        return self

    @staticmethod
    def _serve(server: uvicorn.Server, sock: socket.socket, stopped: threading.Event) -> None:
        try:
            server.run(sockets=[sock])
        finally:
            stopped.set()

    def wait(self) -> None:
        """Block until the server stops (the CLI serves until Ctrl-C)."""
        if self._server is not None:
            wait_event(self._stopped)

    def stop(self) -> None:
        """Stop serving: idle connections close at once, responses in flight get GRACEFUL_SHUTDOWN_S.

        A second Ctrl-C while stopping cuts those responses short; the server is stopped either way.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.should_exit = True
        try:
            wait_event(self._stopped, STOP_TIMEOUT_S)
        except KeyboardInterrupt:
            server.force_exit = True
            wait_event(self._stopped, STOP_TIMEOUT_S)
            raise

    def __enter__(self) -> Replica:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
