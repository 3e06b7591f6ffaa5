"""The last resort: yt-dlp with the run's cookies; its file must pass the same acceptance checks.

yt-dlp runs on a thread, which asyncio cannot cancel: its progress hook enforces the size limit and the
minimum rate (yt-dlp's own ``max_filesize`` needs the size stated up front), and stops the download
when the job is cancelled (Ctrl-C). A cancelled job waits for the thread to end before its ``.part``
and the cookie file are removed, so no thread writes them afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import httpx

from .._files import sha256_file
from ..config import Settings
from ..errors import DownloadError
from ..store.models import utcnow
from ..tiktok.contract import page_url
from .checks import MediaAcceptance, check_progress, check_size, sniff_body
from .client import write_netscape_cookies
from .jobs import PART_SUFFIX, DownloadJob, FetchAttempt, FetchedFile, PartDirectories
from .options import DownloadOptions

T = TypeVar("T")

log = logging.getLogger(__name__)
YTDLP_FAILED = "ytdlp_failed"  # the kind of a row whose last resort failed too


class YtdlpFallback:
    """Runs yt-dlp (library API, on a thread) for a job the HTTP transfers could not complete."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        options: DownloadOptions,
        headers: dict[str, str],
        directories: PartDirectories,
        accept: MediaAcceptance,
    ) -> None:
        self.client, self.settings, self.options = client, settings, options
        self.headers = {k: v for k, v in headers.items() if k in ("User-Agent", "Referer")}
        self.directories, self.accept = directories, accept

    async def fetch(self, job: DownloadJob) -> FetchedFile:
        """yt-dlp on the page URL with the same cookies; the file must pass the same checks.

        yt-dlp's TikTok extractor accepts only tiktok.com pages. Against any other site (the replica) it is
        given the item's first direct media URL, which its generic extractor downloads as a plain file.
        """
        direct = job.candidates[0] if job.candidates else None
        if _is_tiktok(self.settings.base_url):
            url, url_kind, declared = page_url(self.settings.base_url, job.video_id, job.unique_id), "page", None
        elif direct is not None:
            url, url_kind, declared = direct.url, direct.kind, direct.data_size
        else:
            raise DownloadError("no URL to give yt-dlp", kind="no_urls")
        attempt = FetchAttempt("ytdlp", url_kind, utcnow())
        job.attempts.append(attempt)
        size = 0
        watch = _Watch(self.options)
        try:
            with self.directories.writing(job.part.parent, declared or 0):
                write_netscape_cookies(self.client, job.cookie_part)
                await _until_ended(
                    asyncio.to_thread(
                        _ytdlp_download,
                        url,
                        job.part,
                        cookie_file=job.cookie_part,
                        headers=self.headers,
                        proxy=self.settings.proxy,
                        max_bytes=self.options.max_bytes,
                        timeout_s=self.options.read_timeout_s,
                        watch=watch,
                    ),
                    watch.stop,
                )
            size, sha256 = await asyncio.to_thread(sha256_file, job.part)
            with open(job.part, "rb") as handle:
                kind = sniff_body(handle.read(8)) if size else None
            if kind:
                raise DownloadError("yt-dlp's file is not a video", kind=kind)
            if size > self.options.max_bytes:  # the hook's last report may have come before the last bytes
                raise DownloadError(f"{size} bytes is over the {self.options.max_bytes} limit", kind="too_large")
            check_size(size, content_length=None, total=None, declared=declared)
            await self.accept(job.part)
        except Exception as exc:
            attempt.record_error(size, exc)
            job.part.unlink(missing_ok=True)
            raise
        finally:  # the thread has ended here, even when cancelled: nothing writes these any more
            job.cookie_part.unlink(missing_ok=True)
            _unfinished(job.part).unlink(missing_ok=True)
        attempt.record_outcome(size, "ok", None)
        return FetchedFile(job.part, size, sha256, url_kind, "ytdlp")


class _Watch:
    """yt-dlp's progress hook, on its thread: raising in it is how a hook stops a download."""

    def __init__(self, options: DownloadOptions) -> None:
        self.options = options
        self.stop = threading.Event()  # set from the event loop when the job is cancelled
        self.error: DownloadError | None = None  # the limit the body broke, if it broke one

    def __call__(self, progress: dict) -> None:
        from yt_dlp.utils import DownloadCancelled

        if self.stop.is_set():
            raise DownloadCancelled("the download was stopped")
        if progress.get("status") == "downloading":
            try:
                check_progress(progress.get("downloaded_bytes") or 0, progress.get("elapsed") or 0.0, self.options)
            except DownloadError as exc:
                self.error = exc
                raise DownloadCancelled(exc.message) from None


async def _until_ended(work: Awaitable[T], stop: threading.Event) -> T:
    """Await a thread's ``work``; when cancelled, set ``stop``, wait until the thread has ended, re-raise."""
    running = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(Exception):  # it ends at its next progress report (or read timeout)
            await running
        raise


def _unfinished(target: Path) -> Path:
    """yt-dlp's file while it writes ``target`` (its own ``.part``; nopart would strip ours instead)."""
    return target.with_name(target.name + PART_SUFFIX)


def _is_tiktok(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "tiktok.com" or host.endswith(".tiktok.com")


def _ytdlp_download(
    url: str,
    target: Path,
    *,
    cookie_file: Path,
    headers: dict[str, str],
    proxy: str | None,
    max_bytes: int,
    timeout_s: float,
    watch: _Watch,
) -> None:
    """Blocking yt-dlp run (library API) writing exactly ``target`` (through its own ``target.part``,
    never resumed). Raises DownloadError on failure: the limit ``watch`` saw broken, or yt-dlp's error
    chained to its cause, so that a full disk still reads as one."""
    import yt_dlp

    class _Quiet:
        def debug(self, msg):
            pass

        def info(self, msg):
            pass

        def warning(self, msg):
            log.debug("yt-dlp: %s", msg)

        def error(self, msg):
            log.debug("yt-dlp: %s", msg)

    params = {
        "outtmpl": {"default": str(target)},
        "cookiefile": str(cookie_file),
        "http_headers": headers,
        "format": "b[vcodec^=h264]/b",
        "noplaylist": True,
        "overwrites": True,
        "retries": 2,
        "socket_timeout": timeout_s,
        "max_filesize": max_bytes,
        "progress_hooks": [watch],
        "continuedl": False,
        "noprogress": True,
        "quiet": True,
        "logger": _Quiet(),
        "proxy": proxy or "",
    }
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            if ydl.download([url]) != 0 or not target.exists():
                raise DownloadError("yt-dlp produced no file", kind=YTDLP_FAILED)
    except yt_dlp.utils.YoutubeDLError as exc:
        if watch.error is not None:
            raise watch.error from None
        cause = (getattr(exc, "exc_info", None) or (None, None))[1]
        raise DownloadError(f"yt-dlp: {str(exc)[:300]}", kind=YTDLP_FAILED) from cause
