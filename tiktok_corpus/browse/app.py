"""The starlette routes of ``corpus browse`` and :class:`BrowseServer`, which runs them on uvicorn in a
thread (a real socket; port 0 picks a free one; ``base_url`` says where).

Read-only: no route writes to the database. Files are served only from under the data directory:
a path that is absolute or holds ``..`` is refused (400) before it touches the file system, and what
remains must resolve (symlinks followed) inside the data directory (else 404). Files are served with
HTTP Range (starlette's ``FileResponse``), so a ``<video>`` element can seek.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from .._serving import BackgroundServer
from ..config import Settings
from ..errors import ConfigError, CorpusError
from ..posters import poster_frame
from ..store.browse import author_snapshots, download_attempts, related_videos, video_detail, video_snapshots
from ..store.db import Store
from ..store.status import stage_counts
from .catalog import Catalog, GridQuery
from .pages import grid_page, queue_page, video_page

GRACEFUL_SHUTDOWN_S = 1
REPORT = PurePosixPath("report/report.html")


class PathRefused(Exception):
    """A requested file path that is absolute or climbs out of the data directory."""


def data_file(data_dir: Path, relative: str) -> Path:
    """``relative`` under ``data_dir``, or :class:`PathRefused` (absolute, ``..``) / FileNotFoundError
    (missing, or resolving outside the directory through a link)."""
    path = PurePosixPath(relative)
    if not relative or path.is_absolute() or ".." in path.parts or "\\" in relative or "\x00" in relative:
        raise PathRefused(relative)
    root = data_dir.resolve()
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root) or not resolved.is_file():
        raise FileNotFoundError(relative)
    return resolved


def browse_app(settings: Settings, store: Store, catalog: Catalog) -> Starlette:
    """The web app over ``store`` (and ``catalog``'s export and run)."""
    data_dir = settings.data_dir
    source = f"export {catalog.export_dir.name}" if catalog.export_dir else "the database, no export given"
    if catalog.run_dir:
        source += f", scores of run {catalog.run_dir.name}"

    def grid(request: Request) -> Response:
        params = request.query_params
        try:
            query = GridQuery(
                sort=params.get("sort", "play_count"),
                descending=params.get("order", "desc") != "asc",
                **{k: params.get(k) or None for k in ("hashtag", "author", "split", "label")},
                page=int(params.get("page", "0")),
            )
        except (ConfigError, ValueError) as exc:
            return PlainTextResponse(f"bad query: {exc}", status_code=400)
        return HTMLResponse(grid_page(catalog.page(query), source))

    def video(request: Request) -> Response:
        video_id = request.path_params["video_id"]
        detail = video_detail(store, video_id)
        if detail is None:
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
        row = catalog.video(request.path_params["video_id"])
        if row is None or not isinstance(row["media_path"], str):
            return PlainTextResponse("no file", status_code=404)
        try:
            path = poster_frame(data_file(data_dir, row["media_path"]), data_dir / "posters", sha256=row["sha256"])
        except (PathRefused, FileNotFoundError, CorpusError):
            return PlainTextResponse("no poster", status_code=404)
        return FileResponse(path, media_type="image/jpeg")

    def files(request: Request) -> Response:
        try:
            path = data_file(data_dir, request.path_params["path"])
        except PathRefused:
            return PlainTextResponse("refused: paths are relative to the data directory, without ..", 400)
        except FileNotFoundError:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(path)

    def queue(request: Request) -> Response:
        return HTMLResponse(queue_page(stage_counts(store), (data_dir / REPORT).is_file()))

    def report(request: Request) -> Response:
        if not (data_dir / REPORT).is_file():
            return PlainTextResponse("no report yet: run `corpus report`", status_code=404)
        return RedirectResponse(f"/files/{REPORT}")

    # Plain functions: starlette runs each in its thread pool, so a slow query or a poster being made
    # never blocks the event loop.
    return Starlette(
        routes=[
            Route("/", grid),
            Route("/video/{video_id}", video),
            Route("/poster/{video_id}.jpg", poster),
            Route("/files/{path:path}", files),
            Route("/queue", queue),
            Route("/report", report),
        ]
    )


class BrowseServer:
    """The app on uvicorn in a background thread; a context manager. ``base_url`` once started."""

    def __init__(self, settings: Settings, store: Store, catalog: Catalog, *, host: str = "127.0.0.1", port: int = 0):
        self._serving = BackgroundServer(
            browse_app(settings, store, catalog),
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
