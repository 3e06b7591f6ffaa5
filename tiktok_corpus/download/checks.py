"""The acceptance rules: which answers and bodies are a whole, playable video, and which error names why not.

A body is accepted only when: status 200/206, not HTML/JSON, ``ftyp`` at bytes 4-8, size equal to
Content-Length / Content-Range total and to DataSize when known, and libav, opening the file in-process
(``media.video_codec``: headers only), finds a video stream. While it arrives, a body is cut when it
grows past the size limit or comes slower than the minimum rate (:func:`check_progress`), whichever way
(HTTP or yt-dlp) fetches it.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .. import media
from .._files import fsync_path
from ..errors import DownloadError, MediaError, http_status_kind, is_transient_status
from ..tiktok.contract import is_expired
from .options import DownloadOptions


def sniff_body(head: bytes) -> str | None:
    """The rejection kind for a body's first bytes (``html_body``, ``json_body``, ``not_video``), or None."""
    text = head.lstrip()
    if text.startswith(b"<"):
        return "html_body"
    if text.startswith((b"{", b"[")):
        return "json_body"
    return None if head[4:8] == b"ftyp" else "not_video"


def check_url(url: str) -> None:
    """Raise ``bad_url`` unless ``url`` is an absolute http(s) address: httpx would raise a ValueError for
    one it cannot parse, or retry a relative one as if the site had not answered."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL"
        raise DownloadError(f"not a URL ({exc}): {url[:200]!r}", kind="bad_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"not an absolute http(s) URL: {url[:200]!r}", kind="bad_url")


def check_size(received: int, *, content_length: int | None, total: int | None, declared: int | None) -> None:
    """Raise unless ``received`` equals every size the server and the item stated."""
    if received == 0:
        raise DownloadError("0-byte body", kind="empty")
    for name, expected in (("Content-Length", content_length), ("Content-Range total", total), ("DataSize", declared)):
        if expected is not None and received != expected:
            short = received < expected
            raise DownloadError(
                f"{received} bytes, {name} says {expected}",
                kind="truncated" if short else "size_mismatch",
                retryable=short,
            )


def check_progress(received: int, elapsed_s: float, options: DownloadOptions) -> None:
    """Raise when a body in progress is over ``max_bytes``, or has averaged under ``min_bytes_per_s``
    once it has run ``read_timeout_s`` (a server trickling bytes resets the read timeout on every one)."""
    if received > options.max_bytes:
        raise DownloadError(f"body over {options.max_bytes} bytes", kind="too_large")
    if elapsed_s > options.read_timeout_s and received < options.min_bytes_per_s * elapsed_s:
        raise DownloadError(
            f"{received} bytes in {elapsed_s:.0f} s, under {options.min_bytes_per_s} bytes/s",
            kind="too_slow",
            retryable=True,
        )


def status_error(status: int, url: str, now: float, retry_after: str | None = None) -> DownloadError:
    """The error for a non-200/206 answer: transient, refresh, or final for this URL."""
    if status in (403, 410) and is_expired(url, now, margin_s=0):
        return DownloadError(f"HTTP {status} on an expired URL", kind="expired", status=status)
    kind = http_status_kind(status)
    if status == 403:
        return DownloadError("HTTP 403 (cookie or URL refused)", kind=kind, status=status)
    if is_transient_status(status):
        error = DownloadError(f"HTTP {status}", kind=kind, status=status, retryable=True)
        error.retry_after = _retry_after_seconds(retry_after)
        return error
    return DownloadError(f"HTTP {status}", kind=kind, status=status)


def check_response(response: httpx.Response, url: str, options: DownloadOptions) -> tuple[int | None, int | None]:
    """Refuse an answer before reading its body; returns (Content-Length, total file size)."""
    status = response.status_code
    if status not in (200, 206):
        raise status_error(status, url, options.clock(), response.headers.get("retry-after"))
    content_type = response.headers.get("content-type", "").lower()
    if "html" in content_type:
        raise DownloadError(f"Content-Type {content_type}", kind="html_body", status=status)
    if "json" in content_type:
        raise DownloadError(f"Content-Type {content_type}", kind="json_body", status=status)
    encoding = response.headers.get("content-encoding", "identity").lower()
    content_length = _header_int(response.headers.get("content-length")) if encoding == "identity" else None
    total = content_length
    if status == 206:
        parsed = _content_range_total(response.headers.get("content-range"))
        if parsed is None or parsed[0] != 0:
            raise DownloadError(
                f"206 with Content-Range {response.headers.get('content-range')!r}",
                kind="bad_range",
                status=status,
                retryable=True,
            )
        total = parsed[1]
    if (total or 0) > options.max_bytes:
        raise DownloadError(f"{total} bytes is over the {options.max_bytes} limit", kind="too_large", status=status)
    return content_length, total


def _retry_after_seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _content_range_total(value: str | None) -> tuple[int, int | None] | None:
    """(first byte, total) from ``bytes 0-99/100``; None when unparseable."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value or "")
    if not match:
        return None
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def _header_int(value: str | None) -> int | None:
    return int(value) if value and value.strip().isascii() and value.strip().isdigit() else None


def accept_media(path: Path, timeout_s: float) -> None:
    """libav must open the file and find a video stream (the boxes are checked whole too); then fsync."""
    try:
        codec = media.video_codec(path, timeout=timeout_s)
    except MediaError as exc:  # a probe cut short (a timeout, Ctrl-C) says nothing of the file: tried again
        kind = exc.kind if exc.kind in ("empty", "truncated", *media.CUT_SHORT) else "corrupt"
        raise DownloadError(exc.message, kind=kind, retryable=kind in ("truncated", *media.CUT_SHORT)) from None
    if codec is None:
        raise DownloadError("the probe found no video stream", kind="not_video")
    fsync_path(path)


class MediaAcceptance:
    """:func:`accept_media` off the event loop, on two check threads.

    The libav open and the fsync release the GIL; two threads keep the second core busy without a crowd
    of threads queueing for the GIL behind the event loop.
    """

    def __init__(self, probe_timeout_s: float) -> None:
        self._timeout_s = probe_timeout_s
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="download-check")

    async def __call__(self, part: Path) -> None:
        await asyncio.get_running_loop().run_in_executor(self._threads, partial(accept_media, part, self._timeout_s))

    def shutdown(self) -> None:
        self._threads.shutdown(wait=True)
