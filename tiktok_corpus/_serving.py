"""An ASGI app served by uvicorn in a background thread, on a socket bound first (port 0 picks a free
one, so ``base_url`` is known before the first request): the replica site and ``corpus browse``.

Stopping closes idle connections at once and gives responses in flight ``graceful_shutdown_s``; a
second Ctrl-C while stopping cuts them short, without a traceback. The waits wake often enough for a Ctrl-C to land.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

import uvicorn

from ._waits import wait_event
from .errors import ConfigError

START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 10


class _QuietCancel(logging.Filter):
    """Drops uvicorn's traceback of a response cut short when stopping outlasted the grace period (a video
    still streaming at Ctrl-C): that cut is the stop asked for, not an error in the app."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


logging.getLogger("uvicorn.error").addFilter(_QuietCancel())


def bare_host(host: str) -> str:
    """``host`` without the brackets a URL puts around an IPv6 address (``[::1]``, as copied from one)."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def _bind_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple]:
    """The family and address to bind for ``host`` (a name, an IPv4 or IPv6 address): IPv4 where the
    name has both, so ``localhost`` keeps meaning 127.0.0.1."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, _, _, _, address = next((entry for entry in found if entry[0] == socket.AF_INET), found[0])
    return family, address


class BackgroundServer:
    """``start()`` returns once uvicorn accepts connections (else stops and raises RuntimeError)."""

    def __init__(self, app, host: str, port: int, *, name: str, graceful_shutdown_s: int) -> None:
        self.app, self.host, self.port, self.name = app, bare_host(host), port, name
        self.graceful_shutdown_s = graceful_shutdown_s
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._stopped = threading.Event()

    def start(self) -> str:
        """Bind, serve in a daemon thread, wait until it is up; returns ``base_url``."""
        try:
            family, address = _bind_address(self.host, self.port)
            sock = socket.socket(family, socket.SOCK_STREAM)
        except (OSError, OverflowError) as exc:  # no such host, out of range: the user's to change
            raise ConfigError(f"{self.name} cannot listen on {self.host}:{self.port}: {exc}") from None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except (OSError, OverflowError) as exc:  # in use, not this machine's
            sock.close()
            raise ConfigError(f"{self.name} cannot listen on {self.host}:{self.port}: {exc}") from None
        host, port = sock.getsockname()[:2]
        self.base_url = f"http://[{host}]:{port}" if family == socket.AF_INET6 else f"http://{host}:{port}"
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=self.graceful_shutdown_s,
        )
        self._server = server = uvicorn.Server(config)
        self._stopped = stopped = threading.Event()
        threading.Thread(target=self._serve, args=(server, sock, stopped), name=self.name, daemon=True).start()
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not server.started:
                if stopped.is_set() or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not start on {self.base_url}")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        return self.base_url

    @staticmethod
    def _serve(server: uvicorn.Server, sock: socket.socket, stopped: threading.Event) -> None:
        try:
            server.run(sockets=[sock])
        finally:
            stopped.set()

    @property
    def running(self) -> bool:
        return self._server is not None

    def wait(self) -> None:
        """Block until the server stops (the CLI serves until Ctrl-C)."""
        if self._server is not None:
            wait_event(self._stopped)

    def stop(self) -> None:
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
