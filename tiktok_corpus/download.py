"""Download the files of discovered videos: whole, playable, byte-exact, or not at all.

Input: ``videos`` rows whose ``download_status`` is ``pending`` (or ``failed`` with ``retry_failed``).
Each claimed video goes through:

1. **Idempotence** - a file already recorded in ``media_files`` whose size and sha256 still match is kept.
2. **HTTP** - the row's candidate URLs in the contract's order (h264 gears, playAddr, downloadAddr), each
   streamed by httpx to ``{data_dir}/videos/{id[:2]}/{id}.mp4.part`` with the browser session's cookies,
   User-Agent, Referer and ``Range: bytes=0-``, hashing as it goes. tenacity retries one URL on transient
   kinds only (transport errors, timeouts, 408/429/5xx, truncated bodies); 404/410 move to the next URL.
3. **Refresh** - a 403, an expired URL, or no URL left: the item is fetched again (video page, which also
   renews the cookie, then the detail API) and its fresh URLs are tried.
4. **yt-dlp** - the last resort, with the same cookies.

A body is accepted only when: status 200/206, not HTML/JSON, ``ftyp`` at bytes 4-8, size equal to
Content-Length / Content-Range total and to DataSize when known, and libav, opening the file in-process
(media.video_codec: headers only), finds a video stream. Then the ``.part`` is fsynced and renamed, its directory fsynced, and in the same transaction
``media_files`` is upserted, the row is marked ``downloaded`` and its probe stage ``pending``. A crash therefore
means redo, never half-done. Every attempt is written to ``download_attempts``; a final failure leaves
``failed`` with a named kind on the row.

The event loop only moves bytes: ``concurrency`` bounds the transfers in flight, while twice as many jobs
are in hand so that checking and landing never idle a transfer slot. The check and fsync run on two check
threads, and every database read and write of the run goes to one database thread, in order, so SQLite's
write lock is never contended inside the process and the loop never waits on it. Files checked while a
landing commits wait and land together (group commit: a few statements for the whole group).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import re
import shutil
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import httpx
from rich.progress import Progress
from sqlalchemy import Connection, and_, or_, select, update
from tenacity import (AsyncRetrying, retry_if_exception, stop_after_attempt, stop_after_delay,
                      wait_exponential_jitter)

from . import _http, media
from ._files import fsync_path, sha256_file
from .config import Settings, described
from .errors import (ConfigError, ContractError, CorpusError, DownloadError, MediaError, http_status_kind,
                     is_transient_status)
from .store.db import Store, open_store, table_insert
from .store.thread import DatabaseThread
from .store.models import Author, DownloadAttempt, MediaFile, Video, utcnow
from .store.queue import (claim, count_claimable, finish, finish_many, reclaim_dead_local, release,
                          worker_name)
from .tiktok.session_files import DEFAULT_USER_AGENT, load_saved_session
from .tiktok.contract import (ItemRecord, MediaUrl, detail_api_path, is_expired, page_url, parse_item_detail,
                              media_urls_from_json, media_urls_json, parse_video_page, redact_url, validate_video_id)

log = logging.getLogger(__name__)

VIDEOS_DIR = "videos"
PART_SUFFIX = ".part"
CHUNK_BYTES = 256 * 1024
# Kinds that say "these URLs or this cookie are no good any more": refresh the item at once.
REFRESH_KINDS = {"forbidden", "expired"}
# Kinds that say what was wrong with a body: the most useful reason to leave on a failed row.
BODY_KINDS = {"empty", "html_body", "json_body", "not_video", "truncated", "size_mismatch", "corrupt",
              "too_large"}


@dataclass(frozen=True)
class DownloadOptions:
    """Limits and retry policy; the defaults suit TikTok, tests shrink the waits."""

    concurrency: int = described(8, "Transfers in flight at once (files being checked and recorded "
                                 "meanwhile do not count).")
    max_bytes: int = described(200_000_000, "Refuse files larger than this (bytes).")
    min_free_bytes: int = 100_000_000  # kept free on the data disk beyond the file being written
    per_host: int = 6  # transfers in flight to one host
    attempts: int = 4  # tries of one URL (tenacity stop_after_attempt)
    retry_budget_s: float = 120.0  # and at most this long on one URL (tenacity stop_after_delay)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0
    probe_timeout_s: float = 60.0
    refreshes: int = 1  # fresh-URL rounds per video after the first
    use_ytdlp: bool = True
    poll_s: float = 1.0  # how often ``follow`` mode looks for newly pending rows
    clock: Callable[[], float] = time.time  # wall clock for URL expiry


@dataclass
class DownloadSummary:
    """What one run did; ``failures`` counts final failure kinds."""

    downloaded: int = 0
    verified: int = 0  # already on disk, size and sha256 checked, not fetched again
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: Counter = field(default_factory=Counter)
    methods: Counter = field(default_factory=Counter)  # http | ytdlp, per downloaded file

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {"downloaded": self.downloaded, "verified": self.verified, "failed": self.failed,
                "bytes": self.bytes, "seconds": round(self.seconds, 3), "mb_per_s": round(self.mb_per_s, 3),
                "failures": dict(self.failures), "methods": dict(self.methods)}


def video_file_path(data_dir: Path | str, video_id: str) -> Path:
    """``{data_dir}/videos/{id[:2]}/{id}.mp4``; the id is checked to be digits before it forms a path."""
    video_id = validate_video_id(video_id)
    return Path(data_dir) / VIDEOS_DIR / video_id[:2] / f"{video_id}.mp4"


def sniff_body(head: bytes) -> str | None:
    """The rejection kind for a body's first bytes (``html_body``, ``json_body``, ``not_video``), or None."""
    text = head.lstrip()
    if text.startswith(b"<"):
        return "html_body"
    if text.startswith((b"{", b"[")):
        return "json_body"
    return None if head[4:8] == b"ftyp" else "not_video"


def check_size(received: int, *, content_length: int | None, total: int | None,
               declared: int | None) -> None:
    """Raise unless ``received`` equals every size the server and the item stated."""
    if received == 0:
        raise DownloadError("0-byte body", kind="empty")
    for name, expected in (("Content-Length", content_length), ("Content-Range total", total),
                           ("DataSize", declared)):
        if expected is not None and received != expected:
            short = received < expected
            raise DownloadError(f"{received} bytes, {name} says {expected}",
                                kind="truncated" if short else "size_mismatch", retryable=short)


def status_error(status: int, url: str, now: float, retry_after: str | None = None) -> DownloadError:
    """The error for a non-200/206 answer: transient, refresh, or final for this URL."""
    if status in (403, 410) and is_expired(url, now, margin_s=0):
        return DownloadError(f"HTTP {status} on an expired URL", kind="expired", status=status)
    kind = http_status_kind(status)
    if status == 403:
        return DownloadError("HTTP 403 (cookie or URL refused)", kind=kind, status=status)
    if is_transient_status(status):
        error = DownloadError(f"HTTP {status}", kind=kind, status=status, retryable=True)
        error.retry_after = _seconds(retry_after)
        return error
    return DownloadError(f"HTTP {status}", kind=kind, status=status)


def _seconds(value: str | None) -> float:
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


def _int_header(value: str | None) -> int | None:
    return int(value) if value and value.strip().isdigit() else None


def _is_transient(exc: BaseException) -> bool:
    """Only kinds marked retryable: transport errors, timeouts, 408/429/5xx, short bodies, bot blocks."""
    return isinstance(exc, CorpusError) and exc.retryable and not isinstance(exc, _NoSpace)


class _WaitRespectingRetryAfter:
    """Exponential backoff with jitter, but never shorter than the server's Retry-After (capped)."""

    def __init__(self, options: DownloadOptions) -> None:
        self._base = wait_exponential_jitter(multiplier=options.backoff_initial_s, max=options.backoff_max_s,
                                             jitter=options.backoff_initial_s)
        self._cap = options.backoff_max_s

    def __call__(self, retry_state) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        return max(self._base(retry_state), min(getattr(error, "retry_after", 0.0), self._cap))


@dataclass
class _Attempt:
    method: str
    url_kind: str | None
    started_at: datetime
    http_status: int | None = None
    bytes: int | None = None
    duration_s: float | None = None
    outcome: str = "ok"
    message: str | None = None


@dataclass
class _Transfer:
    """What one GET has delivered so far (kept when it breaks off, to tell truncation from refusal)."""

    received: int = 0
    content_length: int | None = None
    total: int | None = None
    digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)


@dataclass
class _Fetched:
    """A ``.part`` file that passed every acceptance check."""

    part: Path
    size: int
    sha256: str
    url_kind: str | None
    method: str


@dataclass(frozen=True)
class _Recorded:
    """The ``media_files`` row of an earlier download."""

    path: str
    size_bytes: int | None
    sha256: str | None


@dataclass
class _Job:
    video_id: str
    candidates: list[MediaUrl]
    unique_id: str | None
    final: Path
    recorded: _Recorded | None = None
    attempts: list[_Attempt] = field(default_factory=list)
    refreshed: bool = False

    @functools.cached_property
    def part(self) -> Path:
        return self.final.with_name(self.final.name + PART_SUFFIX)


@dataclass
class _Landing:
    """A checked file on its way into the database; ``error`` says why it could not land."""

    job: _Job
    fetched: _Fetched
    error: Exception | None = None


@dataclass(frozen=True)
class _Unloadable:
    """A claimed row that cannot become a job (its id is not digits)."""

    video_id: str
    error: CorpusError


class _NoSpace(DownloadError):
    """The data disk is (nearly) full: stop the run, give the row back untouched."""

    kind = "no_space"


def _is_tiktok(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "tiktok.com" or host.endswith(".tiktok.com")


def _ytdlp_download(url: str, target: Path, *, cookie_file: Path, headers: dict[str, str],
                    proxy: str | None, max_bytes: int, timeout_s: float) -> None:
    """Blocking yt-dlp run (library API) writing exactly ``target``; raises DownloadError on failure."""
    import yt_dlp

    class _Quiet:
        def debug(self, msg): pass
        def info(self, msg): pass
        def warning(self, msg): log.debug("yt-dlp: %s", msg)
        def error(self, msg): log.debug("yt-dlp: %s", msg)

    params = {"outtmpl": {"default": str(target)}, "cookiefile": str(cookie_file), "http_headers": headers,
              "format": "b[vcodec^=h264]/b", "noplaylist": True, "overwrites": True, "retries": 2,
              "socket_timeout": timeout_s, "max_filesize": max_bytes, "noprogress": True, "quiet": True,
              "logger": _Quiet(), "proxy": proxy or ""}
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            if ydl.download([url]) != 0 or not target.exists():
                raise DownloadError("yt-dlp produced no file", kind="ytdlp_failed")
    except yt_dlp.utils.YoutubeDLError as exc:
        raise DownloadError(f"yt-dlp: {str(exc)[:300]}", kind="ytdlp_failed") from None


class _Downloader:
    """One run's shared state: the client, per-host slots, the summary, the rows in hand."""

    def __init__(self, store: Store, settings: Settings, client: httpx.AsyncClient, user_agent: str,
                 options: DownloadOptions, summary: DownloadSummary, concurrency: int) -> None:
        self.store, self.settings, self.client, self.options = store, settings, client, options
        self.user_agent = user_agent
        self.headers = _http.request_headers(settings, user_agent)
        self.summary = summary
        self.worker = worker_name("download")
        self.in_hand: set[str] = set()
        self.no_space: _NoSpace | None = None
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._bootstrap = asyncio.Lock()
        self._bootstrapped = False
        self._db = DatabaseThread("download")  # every database read and write of the run, in order
        # Acceptance checks (libav open, fsync) release the GIL; two threads keep the second core busy
        # without a crowd of threads queueing for the GIL behind the event loop.
        self._check_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="download-check")
        self._landings: deque[_Landing] = deque()  # checked files waiting for the database thread
        self._made_dirs: set[Path] = set()
        self.concurrency = concurrency
        # ``concurrency`` bounds transfers; twice as many jobs are in hand so that files being checked,
        # fsynced and landed do not leave transfer slots idle.
        self._transfer_slots = asyncio.Semaphore(concurrency)

    async def _check(self, part: Path) -> None:
        """:func:`_accept_media` on one of the check threads."""
        await asyncio.get_running_loop().run_in_executor(
            self._check_threads, partial(_accept_media, part, self.options.probe_timeout_s))

    # --- the queue ---------------------------------------------------------------------------------

    async def run(self, *, retry_failed: bool, limit: int | None, follow: asyncio.Event | None,
                  progress: Progress | None) -> None:
        concurrency = self.concurrency
        queue: asyncio.Queue[_Job | _Unloadable | None] = asyncio.Queue(maxsize=concurrency)
        task = progress.add_task("download", total=limit if follow is None else None) if progress else None
        workers = [asyncio.create_task(self._work(queue, progress, task)) for _ in range(2 * concurrency)]
        try:
            await self._produce(queue, concurrency=concurrency, retry_failed=retry_failed, limit=limit,
                                follow=follow, progress=progress, task=task)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._check_threads.shutdown(wait=True)
            self._db.shutdown()  # database work in progress finishes (or rolls back) first
            release(self.store, "download", self.in_hand)
        if self.no_space:
            raise self.no_space

    async def _produce(self, queue: asyncio.Queue, *, concurrency: int, retry_failed: bool,
                       limit: int | None, follow: asyncio.Event | None, progress: Progress | None,
                       task) -> None:
        """Claim rows in batches as workers free up; with ``follow``, poll until it is set, then drain."""
        started = utcnow()
        statuses = ("pending", "failed") if retry_failed else ("pending",)
        where = [Video.item_kind == "video"]
        if retry_failed:  # a row that fails in this run is not retried again by this run
            where.append(or_(Video.download_status != "failed", Video.download_updated_at.is_(None),
                              Video.download_updated_at < started))
        claimed = 0
        if progress is not None and follow is None and limit is None:
            progress.update(task, total=count_claimable(self.store, "download", statuses=statuses, where=where))
        while self.no_space is None:
            room = 2 * concurrency if limit is None else min(2 * concurrency, limit - claimed)
            if room <= 0:
                return
            jobs = await self._db(self._claim_jobs, room, statuses, where)
            claimed += len(jobs)
            for job in jobs:
                await queue.put(job)
            if jobs:
                continue
            if follow is None or follow.is_set():
                return
            try:
                await asyncio.wait_for(follow.wait(), self.options.poll_s)
            except asyncio.TimeoutError:
                pass

    def _claim_jobs(self, room: int, statuses, where) -> list[_Job | _Unloadable]:
        """Claim rows and load what their downloads need, in one call on the database thread.

        The ids enter ``in_hand`` in the same call, so a cancelled wait still gives them back.
        """
        ids = claim(self.store, "download", room, statuses=statuses, where=where, worker=self.worker)
        self.in_hand.update(ids)
        if not ids:
            return []
        with self.store.sessions() as session:
            rows = {row.id: row for row in session.execute(
                select(Video.id, Video.media_urls, Author.unique_id, MediaFile.path, MediaFile.size_bytes,
                       MediaFile.sha256)
                .outerjoin(Author, Author.id == Video.author_id)
                .outerjoin(MediaFile, MediaFile.video_id == Video.id)
                .where(Video.id.in_(ids)))}
        return [self._job(rows[video_id]) for video_id in ids if video_id in rows]

    def _job(self, row) -> _Job | _Unloadable:
        try:
            final = video_file_path(self.settings.data_dir, row.id)
        except CorpusError as exc:  # a bad id: the row fails, without touching the disk
            return _Unloadable(row.id, exc)
        recorded = _Recorded(row.path, row.size_bytes, row.sha256) if row.path is not None else None
        return _Job(row.id, list(media_urls_from_json(row.media_urls)), row.unique_id, final, recorded)

    async def _work(self, queue: asyncio.Queue, progress: Progress | None, task) -> None:
        while (job := await queue.get()) is not None:
            if self.no_space is not None:
                continue  # given back by run()'s release
            await self.process(job)
            if progress is not None:
                progress.update(task, advance=1,
                                description=f"download {self.summary.bytes / 1e6:,.0f} MB")

    # --- one video ---------------------------------------------------------------------------------

    async def process(self, claimed: _Job | _Unloadable) -> None:
        """Bring one claimed row to ``downloaded`` or ``failed``; never raises for a per-item problem."""
        video_id, job, done = claimed.video_id, None, False
        try:
            if isinstance(claimed, _Unloadable):
                raise claimed.error
            job = claimed
            if not await self._already_present(job):
                await self._land(job, await self._obtain(job))
            done = True  # its .part is the final file now (or there was none)
        except _NoSpace as exc:
            self.no_space = exc  # the row stays in hand and goes back to pending
            return
        except CorpusError as exc:
            await self._fail(video_id, job, exc.kind, exc.message)
        except Exception as exc:  # a bug must not count as success nor kill the batch
            log.exception("unexpected error downloading %s", video_id)
            await self._fail(video_id, job, "internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            if job is not None and not done:
                job.part.unlink(missing_ok=True)
        self.in_hand.discard(video_id)

    async def _already_present(self, job: _Job) -> bool:
        """A recorded file whose size and sha256 still match is kept: the row is marked done again."""
        recorded = job.recorded
        if recorded is None:
            return False
        path = Path(self.settings.data_dir) / recorded.path
        if not path.is_file() or path.stat().st_size != recorded.size_bytes:
            return False
        if (await asyncio.to_thread(sha256_file, path))[1] != recorded.sha256:
            return False
        await self._db(self._mark_downloaded, job.video_id)
        self.summary.verified += 1
        return True

    def _mark_downloaded(self, video_id: str) -> None:
        with self.store.transaction() as session:
            finish(session, "download", video_id, "downloaded")

    async def _obtain(self, job: _Job) -> _Fetched:
        """HTTP over the candidates, then over refreshed ones, then yt-dlp; raises the most telling error."""
        await self._ensure_chain_token()
        errors: list[DownloadError] = []
        for round_no in range(self.options.refreshes + 1):
            if round_no:
                try:
                    job.candidates = await self._refresh(job)
                    job.refreshed = True
                except DownloadError as exc:
                    errors.append(exc)
                    break
            fetched = await self._try_candidates(job, errors)
            if fetched is not None:
                return fetched
        if self.options.use_ytdlp:
            try:
                return await self._fetch_ytdlp(job)
            except _NoSpace:
                raise
            except DownloadError as exc:
                errors.append(exc)
        raise _final_error(errors)

    async def _try_candidates(self, job: _Job, errors: list[DownloadError]) -> _Fetched | None:
        if not job.candidates:
            errors.append(DownloadError("the item lists no media URL", kind="no_urls"))
        for candidate in job.candidates:
            if is_expired(candidate.url, self.options.clock()):
                errors.append(DownloadError("URL past its expire time", kind="expired"))
                return None
            try:
                return await self._retrying()(self._fetch_http, job, candidate)
            except DownloadError as exc:
                if isinstance(exc, _NoSpace):
                    raise
                errors.append(exc)
                if exc.kind in REFRESH_KINDS:
                    return None
        return None

    async def _ensure_chain_token(self) -> None:
        """Without a session cookie, GET the site once (it sets ``tt_chain_token``, as yt-dlp relies on)."""
        async with self._bootstrap:
            if self._bootstrapped or _http.has_chain_token(self.client):
                return
            self._bootstrapped = True
            try:
                await self.client.get(f"{self.settings.base_url}/", headers={"User-Agent": self.user_agent})
            except httpx.HTTPError as exc:  # a 403 later refreshes through the video page, which sets it too
                log.warning("could not get a cookie from %s: %s", self.settings.base_url, exc)

    def _retrying(self) -> AsyncRetrying:
        options = self.options
        return AsyncRetrying(stop=stop_after_attempt(options.attempts) | stop_after_delay(options.retry_budget_s),
                             wait=_WaitRespectingRetryAfter(options), retry=retry_if_exception(_is_transient),
                             reraise=True)

    # --- transfers ---------------------------------------------------------------------------------

    def _host_slot(self, url: str) -> asyncio.Semaphore:
        host = urlsplit(url).netloc
        if host not in self._host_slots:
            self._host_slots[host] = asyncio.Semaphore(self.options.per_host)
        return self._host_slots[host]

    def _make_dir(self, directory: Path) -> None:
        """Create a video directory once per run (not a syscall per file)."""
        if directory not in self._made_dirs:
            directory.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(directory)

    def _ensure_free_space(self, directory: Path, needed: int) -> None:
        free = shutil.disk_usage(directory).free
        if free < needed + self.options.min_free_bytes:
            raise _NoSpace(f"only {free / 1e6:,.0f} MB free in {directory}; need {needed / 1e6:,.0f} MB "
                           f"plus {self.options.min_free_bytes / 1e6:,.0f} MB reserve")

    async def _fetch_http(self, job: _Job, candidate: MediaUrl) -> _Fetched:
        """One GET of one URL into the ``.part`` file, checked; the attempt is recorded either way."""
        attempt = _Attempt("http", candidate.kind, utcnow())
        job.attempts.append(attempt)
        started, transfer = time.monotonic(), _Transfer()
        try:
            try:
                await self._stream(job, candidate, attempt, transfer)
            except httpx.TimeoutException:
                raise DownloadError(f"timeout after {transfer.received} bytes", kind="timeout",
                                    retryable=True) from None
            except httpx.TransportError as exc:
                short = transfer.received and (transfer.content_length or 0) > transfer.received
                raise DownloadError(f"{type(exc).__name__} after {transfer.received} bytes: {exc}",
                                    kind="truncated" if short else "transport", retryable=True) from None
            check_size(transfer.received, content_length=transfer.content_length, total=transfer.total,
                       declared=candidate.data_size)
            await self._check(job.part)
        except DownloadError as exc:
            self._record(attempt, started, transfer.received, exc.kind, exc.message)
            job.part.unlink(missing_ok=True)
            raise
        self._record(attempt, started, transfer.received, "ok", None)
        return _Fetched(job.part, transfer.received, transfer.digest.hexdigest(), candidate.kind, "http")

    async def _stream(self, job: _Job, candidate: MediaUrl, attempt: _Attempt, transfer: _Transfer) -> None:
        """Stream the body to the ``.part`` file, hashing, refusing non-video starts and oversize bodies."""
        async with self._transfer_slots, self._host_slot(candidate.url):
            async with self.client.stream("GET", candidate.url, headers=self.headers) as response:
                attempt.http_status = response.status_code
                transfer.content_length, transfer.total = self._check_response(response, candidate)
                self._make_dir(job.part.parent)
                self._ensure_free_space(job.part.parent, transfer.total or candidate.data_size or 0)
                head = b""
                with open(job.part, "wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK_BYTES):
                        if len(head) < 8:
                            head += chunk[:8 - len(head)]
                            if len(head) == 8 and (kind := sniff_body(head)):
                                raise DownloadError(f"body starts with {head!r}", kind=kind)
                        transfer.received += len(chunk)
                        if transfer.received > self.options.max_bytes:
                            raise DownloadError(f"body over {self.options.max_bytes} bytes", kind="too_large")
                        transfer.digest.update(chunk)
                        out.write(chunk)
        if 0 < len(head) < 8:
            raise DownloadError(f"{transfer.received}-byte body", kind=sniff_body(head) or "not_video")

    def _check_response(self, response: httpx.Response, candidate: MediaUrl) -> tuple[int | None, int | None]:
        """Refuse an answer before reading its body; returns (Content-Length, total file size)."""
        status = response.status_code
        if status not in (200, 206):
            raise status_error(status, candidate.url, self.options.clock(), response.headers.get("retry-after"))
        content_type = response.headers.get("content-type", "").lower()
        if "html" in content_type:
            raise DownloadError(f"Content-Type {content_type}", kind="html_body", status=status)
        if "json" in content_type:
            raise DownloadError(f"Content-Type {content_type}", kind="json_body", status=status)
        encoding = response.headers.get("content-encoding", "identity").lower()
        content_length = _int_header(response.headers.get("content-length")) if encoding == "identity" else None
        total = content_length
        if status == 206:
            parsed = _content_range_total(response.headers.get("content-range"))
            if parsed is None or parsed[0] != 0:
                raise DownloadError(f"206 with Content-Range {response.headers.get('content-range')!r}",
                                    kind="bad_range", status=status, retryable=True)
            total = parsed[1]
        if (total or 0) > self.options.max_bytes:
            raise DownloadError(f"{total} bytes is over the {self.options.max_bytes} limit", kind="too_large",
                                status=status)
        return content_length, total

    def _record(self, attempt: _Attempt, started: float, received: int, outcome: str, message: str | None) -> None:
        attempt.duration_s = round(time.monotonic() - started, 4)
        attempt.bytes = received
        attempt.outcome = outcome
        attempt.message = message[:2000] if message else None

    async def _refresh(self, job: _Job) -> list[MediaUrl]:
        """Fresh URLs for the item: its page (which also renews the cookie), else the detail API.

        Each source is retried on transient answers (5xx, 429, blocks, a page without its JSON);
        ItemUnavailable (deleted, private) propagates: a final, expected outcome.
        """
        page = page_url(self.settings.base_url, job.video_id, job.unique_id)
        sources = ((page, lambda body: parse_video_page(body.decode("utf-8", "replace"), job.video_id)),
                   (self.settings.base_url + detail_api_path(job.video_id), parse_item_detail))
        reasons = []
        for url, parse in sources:
            try:
                record = await self._retrying()(self._fetch_item, url, parse)
            except CorpusError as exc:
                if isinstance(exc, ContractError) and not exc.retryable:
                    raise
                reasons.append(exc.kind)
                continue
            if not record.media_urls:
                raise DownloadError("the refreshed item lists no media URL", kind="no_urls")
            return list(record.media_urls)
        raise DownloadError(f"could not refresh the item ({', '.join(reasons)})", kind="refresh_failed")

    async def _fetch_item(self, url: str, parse: Callable[[bytes], ItemRecord]) -> ItemRecord:
        headers = {"User-Agent": self.user_agent, "Referer": f"{self.settings.base_url}/"}
        try:
            response = await self.client.get(url, headers=headers)
        except httpx.TimeoutException:
            raise DownloadError(f"timeout on {redact_url(url)}", kind="timeout", retryable=True) from None
        except httpx.TransportError as exc:
            raise DownloadError(f"{type(exc).__name__} on {redact_url(url)}", kind="transport",
                                retryable=True) from None
        if response.status_code != 200:
            raise status_error(response.status_code, url, self.options.clock(), response.headers.get("retry-after"))
        return parse(response.content)

    async def _fetch_ytdlp(self, job: _Job) -> _Fetched:
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
        attempt = _Attempt("ytdlp", url_kind, utcnow())
        job.attempts.append(attempt)
        started, size = time.monotonic(), 0
        self._make_dir(job.part.parent)
        self._ensure_free_space(job.part.parent, declared or 0)
        cookie_file = job.final.with_name(f"{job.video_id}.cookies{PART_SUFFIX}")
        try:
            _http.write_netscape_cookies(self.client, cookie_file)
            headers = {k: v for k, v in self.headers.items() if k in ("User-Agent", "Referer")}
            await asyncio.to_thread(_ytdlp_download, url, job.part, cookie_file=cookie_file, headers=headers,
                                    proxy=self.settings.proxy, max_bytes=self.options.max_bytes,
                                    timeout_s=self.options.read_timeout_s)
            size, sha256 = await asyncio.to_thread(sha256_file, job.part)
            with open(job.part, "rb") as handle:
                kind = sniff_body(handle.read(8)) if size else None
            if kind:
                raise DownloadError("yt-dlp's file is not a video", kind=kind)
            check_size(size, content_length=None, total=None, declared=declared)
            await self._check(job.part)
        except DownloadError as exc:
            self._record(attempt, started, size, exc.kind, exc.message)
            job.part.unlink(missing_ok=True)
            raise
        finally:
            cookie_file.unlink(missing_ok=True)
        self._record(attempt, started, size, "ok", None)
        return _Fetched(job.part, size, sha256, url_kind, "ytdlp")

    # --- outcomes ----------------------------------------------------------------------------------

    async def _land(self, job: _Job, fetched: _Fetched) -> None:
        """Commit the checked file on the database thread (with any others waiting), then count it."""
        landing = _Landing(job, fetched)
        self._landings.append(landing)
        await self._db(self._commit_waiting)
        if landing.error is not None:
            raise landing.error
        self.summary.downloaded += 1
        self.summary.bytes += fetched.size
        self.summary.methods[fetched.method] += 1

    def _commit_waiting(self) -> None:
        """Land every checked file waiting now in one transaction; if that fails, each on its own.

        Group commit: while one transaction commits, the next files queue up, so a busy run pays one
        commit and one fsync per directory for several files. Each file is still renamed and its
        directory fsynced before the commit that marks its row.
        """
        batch = []
        while self._landings:
            batch.append(self._landings.popleft())
        if not batch:
            return
        try:
            self._commit_files(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for landing in batch:  # find the one that cannot land; the others still do
                try:
                    self._commit_files([landing])
                except Exception as single:
                    landing.error = single

    def _commit_files(self, batch: list[_Landing]) -> None:
        """Rename the checked files into place and record them, all in one transaction."""
        moved: list[_Landing] = []
        try:
            with self.store.engine.begin() as connection:  # Core: no ORM session per group commit
                self._record_files(connection, batch)
                for landing in batch:
                    os.replace(landing.fetched.part, landing.job.final)
                    moved.append(landing)
                for directory in {landing.job.final.parent for landing in batch}:
                    fsync_path(directory)
        except BaseException:
            for landing in moved:  # the rows did not land: the files go back to being parts
                os.replace(landing.job.final, landing.fetched.part)
            raise

    def _record_files(self, connection: Connection, batch: list[_Landing]) -> None:
        """A batch's rows in a few statements: media_files upserted, attempts appended, videos marked."""
        now = utcnow()
        connection.execute(_media_file_upsert(self.store.dialect), [
            {"video_id": landing.job.video_id, "size_bytes": landing.fetched.size,
             "path": landing.job.final.relative_to(self.settings.data_dir).as_posix(),
             "sha256": landing.fetched.sha256, "downloaded_at": now,
             "source_url_kind": landing.fetched.url_kind, "probed_sha256": None, "probed_at": None}
            for landing in batch])
        self._write_attempts(connection, [landing.job for landing in batch])
        for job in (landing.job for landing in batch if landing.job.refreshed):
            self._store_refreshed_urls(connection, job)
        finish_many(connection, "download", [landing.job.video_id for landing in batch], "downloaded",
                    probe_status="pending", probe_error_kind=None, probe_error=None, probe_updated_at=now)

    async def _fail(self, video_id: str, job: _Job | None, kind: str, message: str) -> None:
        await self._db(self._record_failure, video_id, job, kind, message)
        self.summary.failed += 1
        self.summary.failures[kind] += 1
        log.info("download %s failed: %s (%s)", video_id, kind, message)

    def _record_failure(self, video_id: str, job: _Job | None, kind: str, message: str) -> None:
        with self.store.engine.begin() as connection:
            if job is not None:
                self._write_attempts(connection, [job])
                if job.refreshed:
                    self._store_refreshed_urls(connection, job)
            finish_many(connection, "download", [video_id], "failed", error_kind=kind, error=message)

    @staticmethod
    def _store_refreshed_urls(connection: Connection, job: _Job) -> None:
        videos = Video.__table__
        connection.execute(update(videos).where(videos.c.id == job.video_id)
                           .values(media_urls=media_urls_json(job.candidates)))

    def _write_attempts(self, connection: Connection, jobs: list[_Job]) -> None:
        rows = [{"video_id": job.video_id, "started_at": a.started_at, "method": a.method,
                 "url_kind": a.url_kind, "http_status": a.http_status, "bytes": a.bytes,
                 "duration_s": a.duration_s, "outcome": a.outcome, "message": a.message}
                for job in jobs for a in job.attempts]
        if rows:
            connection.execute(table_insert(self.store.dialect, DownloadAttempt), rows)


@functools.cache
def _media_file_upsert(dialect_name: str):
    """Insert a landed file's row, or overwrite an earlier download's (its probe results are then stale)."""
    stmt = table_insert(dialect_name, MediaFile)
    landed = ("path", "size_bytes", "sha256", "downloaded_at", "source_url_kind", "probed_sha256", "probed_at")
    return stmt.on_conflict_do_update(index_elements=["video_id"], set_={name: stmt.excluded[name] for name in landed})


def _accept_media(path: Path, timeout_s: float) -> None:
    """libav must open the file and find a video stream (the boxes are checked whole too); then fsync."""
    try:
        codec = media.video_codec(path, timeout=timeout_s)
    except MediaError as exc:
        kind = exc.kind if exc.kind in ("empty", "truncated") else "corrupt"
        raise DownloadError(exc.message, kind=kind) from None
    if codec is None:
        raise DownloadError("the probe found no video stream", kind="not_video")
    fsync_path(path)


def _final_error(errors: list[DownloadError]) -> DownloadError:
    """The error left on the row: the last body problem if any (it says the most), else the last error."""
    telling = [e for e in errors if e.kind in BODY_KINDS] or errors
    final = telling[-1] if telling else DownloadError("nothing to try", kind="no_urls")
    trail = ", ".join(e.kind for e in errors[-12:])
    return DownloadError(f"{final.message} (tried: {trail})", kind=final.kind, status=final.status)


def remove_stale_parts(store: Store, data_dir: Path | str) -> int:
    """Delete ``.part`` files no live claim is writing (leftovers of a crash); returns how many."""
    root = Path(data_dir) / VIDEOS_DIR
    parts = list(root.glob(f"*/*{PART_SUFFIX}")) if root.is_dir() else []
    if not parts:
        return 0
    ids = {path.name.split(".", 1)[0] for path in parts}
    with store.sessions() as session:
        busy = set(session.scalars(select(Video.id).where(
            Video.id.in_(ids), Video.download_status == "claimed",
            and_(Video.download_lease_until.is_not(None), Video.download_lease_until > utcnow()))))
    removed = 0
    for path in parts:
        if path.name.split(".", 1)[0] not in busy:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _load_session(client: httpx.AsyncClient, settings: Settings, cookies: list[dict] | None,
                  user_agent: str | None) -> str:
    """Put the browser session's cookies (given, else the crawler's saved ones) into the client; returns the UA."""
    saved = None if cookies is not None else load_saved_session(settings)
    _http.add_cookies(client, cookies if cookies is not None else (saved.cookies if saved else ()))
    return user_agent or (saved.user_agent if saved else DEFAULT_USER_AGENT)


async def download_pending(store: Store, settings: Settings, *, cookies: list[dict] | None = None,
                           user_agent: str | None = None, concurrency: int | None = None,
                           retry_failed: bool = False,
                           limit: int | None = None, follow: asyncio.Event | None = None,
                           progress: Progress | None = None, client: httpx.AsyncClient | None = None,
                           options: DownloadOptions | None = None) -> DownloadSummary:
    """Download every pending (and, with ``retry_failed``, failed) video, ``concurrency`` at a time.

    ``cookies``/``user_agent`` are the browser session's (default: the crawler's saved session, else a
    page's fresh cookie). With ``follow`` the run keeps polling for newly pending rows until the event is
    set, then drains. ``client`` is injectable (it receives the cookies). Raises DownloadError(no_space)
    when the disk fills up, after giving unfinished rows back.
    """
    options = options or DownloadOptions()
    concurrency = concurrency or options.concurrency
    if concurrency < 1 or (limit is not None and limit < 1):
        raise ConfigError("concurrency and limit must be at least 1")
    if options.max_bytes < 1:
        raise ConfigError("the maximum file size must be at least 1 byte")
    reclaim_dead_local(store, "download")
    remove_stale_parts(store, settings.data_dir)
    summary, started = DownloadSummary(), time.monotonic()
    own_client = client is None
    client = client or _http.make_client(settings, concurrency=concurrency,
                                         connect_timeout_s=options.connect_timeout_s,
                                         read_timeout_s=options.read_timeout_s)
    try:
        agent = _load_session(client, settings, cookies, user_agent)
        downloader = _Downloader(store, settings, client, agent, options, summary, concurrency)
        await downloader.run(retry_failed=retry_failed, limit=limit, follow=follow, progress=progress)
    finally:
        summary.seconds = time.monotonic() - started
        if own_client:
            await client.aclose()
    return summary


def run_download(settings: Settings, options: DownloadOptions | None = None, *, retry_failed: bool = False,
                 limit: int | None = None, progress: Progress | None = None) -> DownloadSummary:
    """``corpus download``: one run over the configured database."""
    with open_store(settings) as store:
        return asyncio.run(download_pending(store, settings, retry_failed=retry_failed, limit=limit,
                                            progress=progress, options=options))
