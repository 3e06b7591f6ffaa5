"""HTTP transfers: each candidate URL streamed by httpx into the job's ``.part`` file, checked, retried.

A URL is fetched with the browser session's cookies, User-Agent, Referer and ``Range: bytes=0-``, hashing
as it goes. tenacity retries one URL on transient kinds only (transport errors, timeouts, 408/429/5xx,
truncated bodies, a try slower than the minimum rate); 404/410, a URL that is no http(s) address and an
answer httpx cannot read (a redirect loop, a broken content encoding) move to the next URL, and a 403 or
an expired URL ends the round (the item is refreshed). A body over the size limit is final for the item
(:mod:`.fetch`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from ..errors import DownloadError
from ..store.models import utcnow
from ..tiktok.contract import MediaUrl, is_expired
from .checks import MediaAcceptance, check_progress, check_response, check_size, check_url, sniff_body
from .jobs import NO_ANSWER, CannotWrite, DownloadJob, FetchAttempt, FetchedFile, PartDirectories
from .options import DownloadOptions
from .retry import retrying

# Kinds that say "these URLs or this cookie are no good any more": refresh the item at once.
REFRESH_KINDS = {"forbidden", "expired"}


@dataclass
class _Received:
    """What one GET has delivered so far (kept when it breaks off, to tell truncation from refusal)."""

    received: int = 0
    content_length: int | None = None
    total: int | None = None
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)


class HttpTransfers:
    """The run's HTTP transfers: ``concurrency`` in flight at once, ``per_host`` to one host."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        headers: dict[str, str],
        options: DownloadOptions,
        concurrency: int,
        directories: PartDirectories,
        accept: MediaAcceptance,
    ) -> None:
        self.client, self.headers, self.options = client, headers, options
        self.directories, self.accept = directories, accept
        self._slots = asyncio.Semaphore(concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}

    async def first_accepted(self, job: DownloadJob, errors: list[DownloadError]) -> FetchedFile | None:
        """The job's candidates in order until one is accepted; None (the reasons in ``errors``) when none
        is, or as soon as one says the URLs are no good any more."""
        if not job.candidates:
            errors.append(DownloadError("the item lists no media URL", kind="no_urls"))
        for candidate in job.candidates:
            try:
                check_url(candidate.url)
            except DownloadError as exc:  # the next candidate may be a good one
                errors.append(exc)
                continue
            if is_expired(candidate.url, self.options.clock()):
                errors.append(DownloadError("URL past its expire time", kind="expired"))
                return None
            try:
                return await retrying(self.options)(self._fetch, job, candidate)
            except DownloadError as exc:
                if isinstance(exc, CannotWrite):
                    raise
                errors.append(exc)
                if exc.kind in REFRESH_KINDS:
                    return None
        return None

    async def _fetch(self, job: DownloadJob, candidate: MediaUrl) -> FetchedFile:
        """One GET of one URL into the ``.part`` file, checked; the attempt is recorded either way."""
        attempt = FetchAttempt("http", candidate.kind, utcnow())
        job.attempts.append(attempt)
        got = _Received()
        try:
            try:
                await self._stream(job, candidate, attempt, got)
            except httpx.TimeoutException:
                raise DownloadError(f"timeout after {got.received} bytes", kind="timeout", retryable=True) from None
            except httpx.TransportError as exc:  # a body that broke off is truncated; no body, a refusal
                broke_off = got.received > 0 and (got.content_length is None or got.received < got.content_length)
                raise DownloadError(
                    f"{type(exc).__name__} after {got.received} bytes: {exc}",
                    kind="truncated" if broke_off else NO_ANSWER,
                    retryable=True,
                ) from None
            except httpx.HTTPError as exc:  # a redirect loop, a body its encoding cannot decode: the next URL
                raise DownloadError(f"{type(exc).__name__}: {exc}", kind="bad_response") from None
            check_size(got.received, content_length=got.content_length, total=got.total, declared=candidate.data_size)
            await self.accept(job.part)
        except Exception as exc:  # an unexpected one too: no try is left reading "ok"
            attempt.record_error(got.received, exc)
            job.part.unlink(missing_ok=True)
            raise
        attempt.record_outcome(got.received, "ok", None)
        return FetchedFile(job.part, got.received, got.digest.hexdigest(), candidate.kind, "http")

    async def _stream(self, job: DownloadJob, candidate: MediaUrl, attempt: FetchAttempt, got: _Received) -> None:
        """Stream the body to the ``.part`` file as it arrives, hashing, refusing non-video starts,
        oversize bodies and trickles (:func:`.checks.check_progress`)."""
        async with self._slots, self._host_slot(candidate.url):
            async with self.client.stream("GET", candidate.url, headers=self.headers) as response:
                attempt.http_status = response.status_code
                got.content_length, got.total = check_response(response, candidate.url, self.options)
                expected = got.total or candidate.data_size or 0
                started = time.monotonic()
                head = b""
                with self.directories.writing(job.part.parent, expected), open(job.part, "wb") as out:
                    async for chunk in response.aiter_bytes():
                        if len(head) < 8:
                            head += chunk[: 8 - len(head)]
                            if len(head) == 8 and (kind := sniff_body(head)):
                                raise DownloadError(f"body starts with {head!r}", kind=kind)
                        got.received += len(chunk)
                        check_progress(got.received, time.monotonic() - started, self.options)
                        got.digest.update(chunk)
                        out.write(chunk)
        if 0 < len(head) < 8:
            raise DownloadError(f"{got.received}-byte body", kind=sniff_body(head) or "not_video")

    def _host_slot(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc
        if host not in self._host_slots:
            self._host_slots[host] = asyncio.Semaphore(self.options.per_host)
        return self._host_slots[host]
