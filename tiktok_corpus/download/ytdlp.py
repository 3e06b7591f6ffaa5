"""The last resort: yt-dlp with the run's cookies; its file must pass the same acceptance checks."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .._files import sha256_file
from ..config import Settings
from ..errors import DownloadError
from ..store.models import utcnow
from ..tiktok.contract import page_url
from .checks import MediaAcceptance, check_size, sniff_body
from .client import write_netscape_cookies
from .jobs import PART_SUFFIX, DownloadJob, FetchAttempt, FetchedFile, PartDirectories
from .options import DownloadOptions

log = logging.getLogger(__name__)


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
        self.directories.prepare(job.part.parent, declared or 0)
        cookie_file = job.final.with_name(f"{job.video_id}.cookies{PART_SUFFIX}")
        try:
            write_netscape_cookies(self.client, cookie_file)
            await asyncio.to_thread(
                _ytdlp_download,
                url,
                job.part,
                cookie_file=cookie_file,
                headers=self.headers,
                proxy=self.settings.proxy,
                max_bytes=self.options.max_bytes,
                timeout_s=self.options.read_timeout_s,
            )
            size, sha256 = await asyncio.to_thread(sha256_file, job.part)
            with open(job.part, "rb") as handle:
                kind = sniff_body(handle.read(8)) if size else None
            if kind:
                raise DownloadError("yt-dlp's file is not a video", kind=kind)
            check_size(size, content_length=None, total=None, declared=declared)
            await self.accept(job.part)
        except DownloadError as exc:
            attempt.record_outcome(size, exc.kind, exc.message)
            job.part.unlink(missing_ok=True)
            raise
        finally:
            cookie_file.unlink(missing_ok=True)
        attempt.record_outcome(size, "ok", None)
        return FetchedFile(job.part, size, sha256, url_kind, "ytdlp")


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
) -> None:
    """Blocking yt-dlp run (library API) writing exactly ``target``; raises DownloadError on failure."""
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
        "noprogress": True,
        "quiet": True,
        "logger": _Quiet(),
        "proxy": proxy or "",
    }
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            if ydl.download([url]) != 0 or not target.exists():
                raise DownloadError("yt-dlp produced no file", kind="ytdlp_failed")
    except yt_dlp.utils.YoutubeDLError as exc:
        raise DownloadError(f"yt-dlp: {str(exc)[:300]}", kind="ytdlp_failed") from None
