"""Downloader fixtures: a real little MP4 made by ffmpeg, video rows, quick retry options, a CDN whose
answers a test writes (real sockets), a proxy that forwards, and a small disk to fill.

Pytest runs with ``--import-mode=importlib``, so helpers reach the tests as fixtures, not imports.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from tests.media_files import encode_lavfi
from tiktok_corpus.download import DownloadOptions
from tiktok_corpus.store.models import DownloadAttempt, MediaFile, Video


@pytest.fixture
def quick() -> DownloadOptions:
    """Short waits so retry paths run in milliseconds; yt-dlp off unless a test turns it on."""
    return DownloadOptions(
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        min_free_bytes=0,
        read_timeout_s=5.0,
        connect_timeout_s=5.0,
        use_ytdlp=False,
    )


@pytest.fixture(scope="session")
def sample_mp4(tmp_path_factory) -> bytes:
    """A real, playable 1-second H.264 MP4 (a few KB)."""
    path = tmp_path_factory.mktemp("media") / "sample.mp4"
    encode_lavfi(path, "testsrc=size=64x64:rate=10", t=1, movflags="+faststart")
    return path.read_bytes()


class Rows:
    """Reads and writes of the rows the downloader works on."""

    def __init__(self, store) -> None:
        self.store = store

    def add(self, video_id: str, urls: list[dict], *, status: str = "pending") -> None:
        """A video row as the crawler leaves it: candidate URLs in preference order, download pending."""
        with self.store.transaction() as session:
            session.add(Video(id=video_id, media_urls=urls, item_kind="video", download_status=status))

    def video(self, video_id: str) -> Video:
        with self.store.sessions() as session:
            return session.get(Video, video_id)

    def media(self, video_id: str) -> MediaFile | None:
        with self.store.sessions() as session:
            return session.get(MediaFile, video_id)

    def attempts(self, video_id: str) -> list[DownloadAttempt]:
        with self.store.sessions() as session:
            return list(
                session.scalars(
                    select(DownloadAttempt).where(DownloadAttempt.video_id == video_id).order_by(DownloadAttempt.id)
                )
            )

    @staticmethod
    def part_files(data_dir: Path) -> list[Path]:
        return sorted(Path(data_dir).rglob("*.part"))


@pytest.fixture
def rows(store) -> Rows:
    return Rows(store)


@pytest.fixture
def rows_of():
    """Rows for a store a test opens itself (Postgres)."""
    return Rows


Route = Callable[[BaseHTTPRequestHandler], None]


class LocalServer:
    """A real HTTP server on 127.0.0.1 (a free port) answering each GET with ``answer(handler)``, on threads."""

    def __init__(self, answer: Route) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                answer(self)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Cdn(LocalServer):
    """A server whose answers the test writes: ``routes[path](handler)``.

    ``stopped`` is set when the test ends: a route that streams for ever ends then (it must check it).
    Unknown paths answer 404.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.stopped = threading.Event()
        super().__init__(self._answer)

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        route = self.routes.get(handler.path.split("?")[0])
        if route is None:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        try:
            route(handler)
        except (BrokenPipeError, ConnectionResetError):  # the client went away: its business
            pass
        handler.close_connection = True

    def url(self, path: str, *, data_size: int | None = None) -> dict:
        """A candidate URL on this server, as a row's ``media_urls`` holds it."""
        return {"kind": path.strip("/"), "url": f"{self.base_url}{path}", "data_size": data_size, "codec": "h264"}

    @staticmethod
    def head(handler: BaseHTTPRequestHandler, length: int | None) -> None:
        """A video answer's status and headers; without ``length`` the body ends when the connection closes."""
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        if length is not None:
            handler.send_header("Content-Length", str(length))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.flush()

    def close(self) -> None:
        self.stopped.set()
        super().close()


@pytest.fixture
def cdn():
    server = Cdn()
    yield server
    server.close()


@pytest.fixture
def cdn_settings(settings, cdn):
    return settings.model_copy(update={"base_url": cdn.base_url})


@pytest.fixture(scope="session")
def mp4_of_size(sample_mp4) -> Callable[[int], bytes]:
    """``mp4_of_size(n)``: the sample grown to ``n`` bytes by a ``free`` box at its end, still whole and playable."""

    def grown(size: int) -> bytes:
        pad = size - len(sample_mp4)
        return sample_mp4 + pad.to_bytes(4, "big") + b"free" + bytes(pad - 8)

    return grown


class ForwardingProxy(LocalServer):
    """A plain HTTP proxy (absolute-form requests, as clients send them for ``http://`` URLs): it forwards each
    GET to its host and keeps the URLs it forwarded in ``forwarded``."""

    HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding"})

    def __init__(self) -> None:
        self.forwarded: list[str] = []
        super().__init__(self._forward)

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        self.forwarded.append(handler.path)
        target = urlsplit(handler.path)
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in self.HOP_BY_HOP}
            upstream.request("GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers)
            answer = upstream.getresponse()
            body = answer.read()
        finally:
            upstream.close()
        handler.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in self.HOP_BY_HOP | {"content-length"}:
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True


@pytest.fixture
def forwarding_proxy():
    proxy = ForwardingProxy()
    yield proxy
    proxy.close()
