"""The starlette routes of ``corpus browse`` and :class:`BrowseServer`, which runs them on uvicorn in a
thread (a real socket; port 0 picks a free one; ``base_url`` says where).

Read-only: no route writes to the database. No file is served by a path taken from the URL, only what
the pages show: a video's downloaded file (``/media/<id>``, at the path its row holds), its poster
frame, and the report with its figures (``/report/...``), each resolving (links followed) inside its
folder (``videos/``, ``posters/``, ``report/``). The data directory also holds the crawler's cookies
(``session/``) and the database, which no request reaches. A request must name this machine or the
address bound in its Host header, so a web page whose own name was pointed at 127.0.0.1 (DNS rebinding)
is refused; every response forbids scripts (no page has one) and MIME sniffing. Files are served with
HTTP Range (starlette's ``FileResponse``), so a ``<video>`` element can seek.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._files import contained_file, downloaded_file
from .._serving import BackgroundServer, bare_host
from ..config import Settings
from ..errors import ConfigError, CorpusError
from ..store.browse import (
    author_snapshots,
    download_attempts,
    media_path,
    related_videos,
    video_detail,
    video_snapshots,
)
from ..store.db import Store
from ..store.reports import REPORT_PAGE, report_figures_dir
from ..store.status import stage_counts
from ..tiktok.contract.records import valid_id
from .catalog import Catalog, GridQuery
from .pages import grid_page, queue_page, video_page
from .poster_jobs import PosterRequests

GRACEFUL_SHUTDOWN_S = 1
# Host header names of this machine (an IPv6 address is bracketed there); the address bound is added.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
# No page runs a script. Styles are inline (the pages', the self-contained report's, pandas' tables);
# images, posters and video come from here, and the report's figures are data: URIs. As nothing may
# be fetched from elsewhere, not even inline CSS can send anything out.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
]


def _path_video_id(request: Request) -> str | None:
    """The URL's video id, or None where it cannot be one: the crawl stores digits only, and a query for
    anything else (a NUL, which Postgres refuses) would be a server error, not "no such video"."""
    video_id = request.path_params["video_id"]
    return video_id if valid_id(video_id) == video_id else None


def report_file(data_dir: Path, name: str) -> Path:
    """The report's page or one of its PNG figures by its path in the report's folder (the URL
    ``/report/<name>``, so the page's relative links to its figures work); FileNotFoundError for any
    other name."""
    wanted = REPORT_PAGE.parent / name
    if wanted != REPORT_PAGE and (wanted.parent != report_figures_dir(REPORT_PAGE) or wanted.suffix != ".png"):
        raise FileNotFoundError(name)
    return contained_file(data_dir / REPORT_PAGE.parent, name)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers if scope["type"] == "http" else send)


def browse_app(settings: Settings, store: Store, catalog: Catalog, host: str) -> Starlette:
    """The web app over ``store`` (and ``catalog``'s export and run), answering requests that name
    this machine or ``host``, the address it is bound to."""
    data_dir = settings.data_dir
    posters = PosterRequests(data_dir / "posters")
    source = f"export {catalog.export_dir.name}" if catalog.export_dir else "the database, no export given"
    if catalog.run_dir:
        source += f", scores of run {catalog.run_dir.name}"

    def grid(request: Request) -> Response:
        try:
            found = catalog.page(GridQuery.from_params(request.query_params))
        except ConfigError as exc:
            return PlainTextResponse(f"bad query: {exc}", status_code=400)
        return HTMLResponse(grid_page(found, source))

    def video(request: Request) -> Response:
        video_id = _path_video_id(request)
        detail = None if video_id is None else video_detail(store, video_id)
        if video_id is None or detail is None:
            return PlainTextResponse("no such video", status_code=404)
        row = catalog.video(video_id)
        page = video_page(
            detail,
            row if catalog.export_dir else None,
            video_snapshots(store, video_id),
            author_snapshots(store, video_id),
            related_videos(store, video_id),
            download_attempts(store, video_id),
        )
        return HTMLResponse(page)

    def poster(request: Request) -> Response:
        video_id = _path_video_id(request)
        row = None if video_id is None else catalog.video(video_id)
        if row is None or not isinstance(row["media_path"], str):
            return PlainTextResponse("no file", status_code=404)
        try:
            sha256 = row["sha256"] if isinstance(row["sha256"], str) else None
            path = posters.poster(downloaded_file(data_dir, row["media_path"]), sha256)
        except (FileNotFoundError, CorpusError):
            return PlainTextResponse("no poster", status_code=404)
        return FileResponse(path, media_type="image/jpeg")

    def media(request: Request) -> Response:
        video_id = _path_video_id(request)
        path = None if video_id is None else media_path(store, video_id)
        if path is not None:
            try:
                return FileResponse(downloaded_file(data_dir, path))
            except FileNotFoundError:
                pass  # the row names a file that is gone (or lies outside the downloads' folder)
        return PlainTextResponse("no file", status_code=404)

    def queue(request: Request) -> Response:
        return HTMLResponse(queue_page(stage_counts(store), (data_dir / REPORT_PAGE).is_file()))

    def report(request: Request) -> Response:
        if not (data_dir / REPORT_PAGE).is_file():
            return PlainTextResponse("no report yet: run `corpus report`", status_code=404)
        return RedirectResponse(f"/report/{REPORT_PAGE.name}")

    def report_part(request: Request) -> Response:
        try:
            return FileResponse(report_file(data_dir, request.path_params["name"]))
        except FileNotFoundError:
            return PlainTextResponse("not found", status_code=404)

    # Plain functions: starlette runs each in its thread pool, so a slow query or a poster being made
    # never blocks the event loop.
    return Starlette(
        routes=[
            Route("/", grid),
            Route("/video/{video_id}", video),
            Route("/poster/{video_id}.jpg", poster),
            Route("/media/{video_id}", media),
            Route("/queue", queue),
            Route("/report", report),
            Route("/report/{name:path}", report_part),
        ],
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=[*LOCAL_HOSTS, f"[{host}]" if ":" in host else host]),
            Middleware(SecurityHeaders),
        ],
    )


def _refuse_a_wildcard(host: str) -> None:
    """0.0.0.0 or :: would listen on every address while the host check (against DNS rebinding: a page
    elsewhere reading the corpus through a name it points here) answers 400 to all but localhost."""
    try:  # as the server will bind it: "0", "0.0" and "0x0" are 0.0.0.0 too
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # no such host: the server's start says so
        return
    if any(_unspecified(str(entry[4][0])) for entry in found):
        raise ConfigError(
            f"--host {host} listens on every address, but requests must name the address bound (a guard against "
            "DNS rebinding): to serve a LAN, bind this machine's address on it (e.g. --host 192.168.1.20) and "
            "browse to that address"
        )


def _unspecified(address: str) -> bool:
    """Whether a resolved address is every address (``::ffff:0.0.0.0`` is 0.0.0.0 too)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    return (getattr(ip, "ipv4_mapped", None) or ip).is_unspecified


class BrowseServer:
    """The app on uvicorn in a background thread; a context manager. ``base_url`` once started."""

    def __init__(self, settings: Settings, store: Store, catalog: Catalog, *, host: str = "127.0.0.1", port: int = 0):
        host = bare_host(host)
        _refuse_a_wildcard(host)
        self._serving = BackgroundServer(
            browse_app(settings, store, catalog, host),
            host,
            port,
            name="browse-server",
            graceful_shutdown_s=GRACEFUL_SHUTDOWN_S,
        )
        self.base_url = ""

    def start(self) -> BrowseServer:
        try:
            self.base_url = self._serving.start()
        except RuntimeError as exc:
            raise ConfigError(f"corpus browse could not serve: {exc}") from exc
        return self

    def wait(self) -> None:
        """Serve until Ctrl-C (or :meth:`stop` from another thread)."""
        self._serving.wait()

    def stop(self) -> None:
        self._serving.stop()

    def __enter__(self) -> BrowseServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
