"""A download run: claims rows in batches, hands them to workers, brings each to downloaded or failed.

The event loop only moves bytes: ``concurrency`` bounds the transfers in flight, while twice as many jobs
are in hand so that checking and landing never idle a transfer slot; no more rows than that are claimed,
so a claim is a job that starts now. The leases of the rows in hand are renewed while the run holds them
(a job can outlast one lease: tries, backoff, a refresh, yt-dlp), and a job settles its row only while
its claim is still the run's (:mod:`tiktok_corpus.store.downloads`). Every database read and write of the
run goes to one database thread, in order, so SQLite's write lock is never contended inside the process
and the loop never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from pathlib import Path

import httpx
from rich.progress import Progress

from .._files import VIDEOS_DIR, require_media_folder, sha256_file
from .._signals import run_stoppable
from ..config import Settings
from ..errors import ConfigError, CorpusError, PersistentlyBlocked, SiteUnreachable
from ..store.db import Store, open_store
from ..store.downloads import (
    DAMAGED_PROBES,
    busy_download_ids,
    claim_downloads,
    count_claimable_downloads,
    count_media_files,
    load_download_rows,
    mark_downloaded,
    record_download_failure,
    requeue_damaged_downloads,
)
from ..store.models import utcnow
from ..store.queue import reclaim_dead, release, renew
from ..store.thread import DatabaseThread
from ..store.workers import worker_name
from ..tiktok.blocks import UNREACHABLE_HINT
from ..tiktok.contract import media_urls_from_json
from .client import load_session, make_client
from .fetch import Fetcher
from .jobs import (
    NO_ANSWER,
    PART_SUFFIX,
    THROTTLED,
    CannotWrite,
    ClaimLost,
    DownloadJob,
    FetchedFile,
    RecordedFile,
    UnloadableRow,
    video_file_path,
)
from .landing import GroupCommit
from .options import DownloadOptions, DownloadSummary

log = logging.getLogger(__name__)

Claimed = DownloadJob | UnloadableRow


class DownloadRun:
    """One run's queue: the rows in hand, the workers, the summary."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        fetcher: Fetcher,
        options: DownloadOptions,
        summary: DownloadSummary,
        concurrency: int,
    ) -> None:
        self.store, self.settings, self.fetcher, self.options = store, settings, fetcher, options
        self.summary, self.concurrency = summary, concurrency
        # ``concurrency`` bounds transfers; twice as many jobs are in hand (one worker each) so that files
        # being checked, fsynced and landed do not leave transfer slots idle. No more rows are claimed.
        self.most_in_hand = 2 * concurrency
        self.worker = worker_name(store, "download")
        self.in_hand: set[str] = set()
        # Rows whose every try got no answer (or only 429 Too Many Requests), their failure not yet written:
        # another file's answer says the site is up and serving (they fail then), enough of them in a row
        # that it is down or throttling this address (they go back untried).
        self.unanswered: dict[str, tuple[DownloadJob | None, CorpusError]] = {}
        # What stops the run, its rows in hand going back: a data folder that takes no file (every row would
        # fail alike), or a write the database refused (locked past its timeout, gone, full).
        self.stopped_by: Exception | None = None
        self._db = DatabaseThread("download")  # every database read and write of the run, in order
        self._landing = GroupCommit(store, settings.data_dir, self._db, self.worker, self._count_landed)
        self._settled = asyncio.Event()  # set whenever a row leaves ``in_hand``: room to claim more

    async def run(
        self, *, retry_failed: bool, limit: int | None, follow: asyncio.Event | None, progress: Progress | None
    ) -> None:
        """Claim and process rows until none is left (or ``limit``); give back whatever is still in hand."""
        queue: asyncio.Queue[Claimed | None] = asyncio.Queue()  # never more than the workers: see _produce
        task = progress.add_task("download", total=limit if follow is None else None) if progress else None
        workers = [asyncio.create_task(self._work(queue, progress, task)) for _ in range(self.most_in_hand)]
        renewing = asyncio.create_task(self._keep_claims())
        try:
            await self._produce(
                queue, retry_failed=retry_failed, limit=limit, follow=follow, progress=progress, task=task
            )
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
            if self.stopped_by is None:
                await self._site_answered()  # too few to call the site down: failures of their own
        finally:
            for worker in (*workers, renewing):
                worker.cancel()
            await asyncio.gather(*workers, renewing, return_exceptions=True)
            self.fetcher.shutdown()
            self._db.shutdown()  # database work in progress finishes (or rolls back) first
            release(self.store, "download", self.in_hand, worker=self.worker)
        if self.stopped_by is not None:
            raise self.stopped_by
        if not renewing.cancelled() and (bug := renewing.exception()) is not None:
            raise bug  # the renewal ended on an error that is not the database's: a bug, not to be lost

    async def _keep_claims(self) -> None:
        """Renew the leases of the rows in hand until the run ends (a lost one is not renewed: its
        worker claims it now)."""
        lease_s = self.options.lease_s

        def renew_in_hand() -> None:
            renew(self.store, "download", list(self.in_hand), worker=self.worker, lease_s=lease_s)

        await self._db.keep_renewed(renew_in_hand, lease_s=lease_s, what="the download claims")

    async def _produce(
        self,
        queue: asyncio.Queue,
        *,
        retry_failed: bool,
        limit: int | None,
        follow: asyncio.Event | None,
        progress: Progress | None,
        task,
    ) -> None:
        """Claim rows in batches as workers free up; with ``follow``, poll until it is set, then drain."""
        started = utcnow()
        claimed = 0
        if progress is not None and follow is None and limit is None:
            progress.update(task, total=count_claimable_downloads(self.store, retry_failed=retry_failed, since=started))
        most = self.most_in_hand
        while self.stopped_by is None:
            if limit is not None and claimed >= limit:
                return
            if self._working > most // 2:  # claim in batches, each only as large as the free workers
                self._settled.clear()
                await self._settled.wait()
                continue
            room = most - self._working if limit is None else min(most - self._working, limit - claimed)
            jobs = await self._db(self._claim_jobs, room, retry_failed, started)
            claimed += len(jobs)
            for job in jobs:
                await queue.put(job)
            if jobs:
                continue
            if follow is None or follow.is_set():
                return
            try:
                await asyncio.wait_for(follow.wait(), self.options.poll_s)
            except TimeoutError:
                pass

    def _claim_jobs(self, room: int, retry_failed: bool, started: datetime) -> list[Claimed]:
        """Claim rows and load what their downloads need, in one call on the database thread.

        The ids enter ``in_hand`` in the same call, so a cancelled wait still gives them back.
        """
        ids = claim_downloads(
            self.store,
            room,
            retry_failed=retry_failed,
            since=started,
            worker=self.worker,
            lease_s=self.options.lease_s,
        )
        # A row still in hand comes back only when renewals failed for a whole lease: its job goes on.
        ids = [video_id for video_id in ids if video_id not in self.in_hand]
        self.in_hand.update(ids)
        if not ids:
            return []
        rows = load_download_rows(self.store, ids)
        return [self._job(rows[video_id]) for video_id in ids if video_id in rows]

    def _job(self, row) -> Claimed:
        try:
            final = video_file_path(self.settings.data_dir, row.id)
        except CorpusError as exc:  # a bad id: the row fails, without touching the disk
            return UnloadableRow(row.id, exc)
        # A file validate found damaged or gone is fetched again, whatever its recorded sha256 says.
        trusted = row.path is not None and row.probe_status not in DAMAGED_PROBES
        recorded = RecordedFile(row.path, row.size_bytes, row.sha256) if trusted else None
        return DownloadJob(row.id, list(media_urls_from_json(row.media_urls)), row.unique_id, final, recorded)

    async def _work(self, queue: asyncio.Queue, progress: Progress | None, task) -> None:
        while (job := await queue.get()) is not None:
            try:
                if self.stopped_by is None:  # else given back by run()'s release
                    await self.process(job)
                    if progress is not None:
                        progress.update(task, advance=1, description=f"download {self.summary.bytes / 1e6:,.0f} MB")
            except Exception as exc:  # a row's outcome the database would not record: the run stops with it
                self.stopped_by = self.stopped_by or exc
            finally:
                self._settled.set()  # the producer waits on it: a worker that stopped must still wake it

    async def process(self, claimed: Claimed) -> None:
        """Bring one claimed row to ``downloaded`` or ``failed``; never raises for a per-item problem (a
        database that refuses to record the outcome is none: that raises, and the row stays in hand)."""
        video_id, job, done, answered = claimed.video_id, None, False, False
        try:
            if isinstance(claimed, UnloadableRow):
                raise claimed.error
            job = claimed
            if not await self._already_present(job):
                await self._land(job, await self.fetcher.obtain(job))
            done = True  # its .part is the final file now (or there was none)
        except CannotWrite as exc:
            self.stopped_by = exc  # the row stays in hand and goes back to pending
            return
        except ClaimLost as exc:
            log.warning("download %s: %s", video_id, exc.message)
        except CorpusError as exc:
            if exc.kind in (NO_ANSWER, THROTTLED):  # the site, or only this file's hosts, may be down: wait and see
                self._no_answer(video_id, job, exc)
                return
            await self._fail(video_id, job, exc.kind, exc.message)
            answered = True
        except Exception as exc:  # a bug must not count as success nor kill the batch
            log.exception("unexpected error downloading %s", video_id)
            await self._fail(video_id, job, "internal_error", f"{type(exc).__name__}: {exc}")
        finally:
            if job is not None and not done:
                job.part.unlink(missing_ok=True)
        if done or answered:  # the site is up: the files that got no answer failed on their own
            await self._site_answered()
        self.in_hand.discard(video_id)

    def _no_answer(self, video_id: str, job: DownloadJob | None, exc: CorpusError) -> None:
        """A row none of whose tries got an answer, or only 429s: held, its failure unwritten, until another
        file's answer says the site is up; ``give_up_after_unanswered`` of them in a row stop the run as an
        unreachable site (or, all 429s, a throttling one), and go back untried with the rest (a site gone
        down, or throttling for a few minutes, failed every row for good)."""
        self.unanswered[video_id] = (job, exc)
        limit = self.options.give_up_after_unanswered
        if len(self.unanswered) >= limit and self.stopped_by is None:
            if all(held.kind == THROTTLED for _, held in self.unanswered.values()):
                self.stopped_by = PersistentlyBlocked(
                    f"the download site answered 429 Too Many Requests to every try of the last {limit} files "
                    f"(last: {exc.message}): it is throttling this address. They went back to pending untried; "
                    "wait a while, then run again (with a lower --concurrency)"
                )
            else:
                self.stopped_by = SiteUnreachable(
                    f"the download site did not answer the last {limit} files (last: {exc.message}); {UNREACHABLE_HINT}"
                )

    async def _site_answered(self) -> None:
        """Another file got an answer: the rows that got none failed on their own (a dead host of theirs).
        Once the run stopped as unreachable, they go back untried all the same."""
        if isinstance(self.stopped_by, SiteUnreachable | PersistentlyBlocked):
            return
        held, self.unanswered = self.unanswered, {}
        for video_id, (job, exc) in held.items():
            await self._fail(video_id, job, exc.kind, exc.message)
            self.in_hand.discard(video_id)

    @property
    def _working(self) -> int:
        """Rows in hand that a worker still works on (the unanswered ones only wait)."""
        return len(self.in_hand) - len(self.unanswered)

    async def _already_present(self, job: DownloadJob) -> bool:
        """A recorded file whose size and sha256 still match is kept: the row is marked done again."""
        recorded = job.recorded
        if recorded is None:
            return False
        path = Path(self.settings.data_dir) / recorded.path
        if not path.is_file() or path.stat().st_size != recorded.size_bytes:
            return False
        if (await asyncio.to_thread(sha256_file, path))[1] != recorded.sha256:
            return False
        if not await self._db(mark_downloaded, self.store, job.video_id, worker=self.worker):
            raise ClaimLost("its claim lapsed and another worker took it; nothing recorded")
        self.summary.verified += 1
        return True

    async def _land(self, job: DownloadJob, fetched: FetchedFile) -> None:
        """Commit the checked file (with any others waiting); the commit counts it."""
        await self._landing.land(job, fetched)

    def _count_landed(self, fetched: FetchedFile) -> None:
        """A file whose commit is done (on the database thread: these counts are written only there)."""
        self.summary.downloaded += 1
        self.summary.bytes += fetched.size
        self.summary.methods[fetched.method] += 1

    async def _fail(self, video_id: str, job: DownloadJob | None, kind: str, message: str) -> None:
        if not await self._db(record_download_failure, self.store, video_id, job, kind, message, worker=self.worker):
            log.warning("download %s failed (%s) after its claim lapsed: left to the worker holding it", video_id, kind)
            return
        self.summary.failed += 1
        self.summary.failures[kind] += 1
        log.info("download %s failed: %s (%s)", video_id, kind, message)


def remove_stale_parts(store: Store, data_dir: Path | str) -> int:
    """Delete ``.part`` files no live claim is writing (leftovers of a crash); returns how many."""
    root = Path(data_dir) / VIDEOS_DIR
    parts = list(root.glob(f"*/*{PART_SUFFIX}")) if root.is_dir() else []
    if not parts:
        return 0
    busy = busy_download_ids(store, {path.name.split(".", 1)[0] for path in parts})
    removed = 0
    for path in parts:
        if path.name.split(".", 1)[0] not in busy:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


async def download_pending(
    store: Store,
    settings: Settings,
    *,
    cookies: list[dict] | None = None,
    user_agent: str | None = None,
    concurrency: int | None = None,
    retry_failed: bool = False,
    limit: int | None = None,
    follow: asyncio.Event | None = None,
    progress: Progress | None = None,
    client: httpx.AsyncClient | None = None,
    options: DownloadOptions | None = None,
    summary: DownloadSummary | None = None,
) -> DownloadSummary:
    """Download every pending video, ``concurrency`` at a time; with ``retry_failed`` also the failed ones,
    and those whose file validate found corrupt or missing (put back to pending first).

    ``cookies``/``user_agent`` are the browser session's (default: the crawler's saved session, else a
    page's fresh cookie). With ``follow`` the run keeps polling for newly pending rows until the event is
    set, then drains. ``client`` is injectable (it receives the cookies). ``summary``: the one to count
    into, for a caller that reads it while the run goes, or after cancelling it (the crawl's live line).
    Raises DownloadError(no_space) when the disk fills up, or (not_permitted) when the data folder takes
    no file, after giving unfinished rows back.
    """
    options = options or DownloadOptions()
    concurrency = concurrency or options.concurrency
    if concurrency < 1 or (limit is not None and limit < 1):
        raise ConfigError("concurrency and limit must be at least 1")
    if options.max_bytes < 1:
        raise ConfigError("the maximum file size must be at least 1 byte")
    require_media_folder(settings.data_dir, count_media_files(store))  # before a file lands in a new one
    reclaim_dead(store, "download")
    remove_stale_parts(store, settings.data_dir)
    if retry_failed and (damaged := requeue_damaged_downloads(store)):
        log.info("fetching again %d files found corrupt or missing on disk", damaged)
    summary = DownloadSummary() if summary is None else summary
    started = time.monotonic()
    own_client = client is None
    client = client or make_client(
        settings,
        concurrency=concurrency,
        connect_timeout_s=options.connect_timeout_s,
        read_timeout_s=options.read_timeout_s,
    )
    try:
        agent = load_session(client, settings, cookies, user_agent)
        fetcher = Fetcher(client, settings, options, agent, concurrency)
        await DownloadRun(store, settings, fetcher, options, summary, concurrency).run(
            retry_failed=retry_failed, limit=limit, follow=follow, progress=progress
        )
    except (SiteUnreachable, PersistentlyBlocked) as stopped:  # a script reads what was done before it
        summary.seconds = time.monotonic() - started
        stopped.summary = summary.to_dict()
        raise
    finally:
        summary.seconds = time.monotonic() - started
        if own_client:
            await client.aclose()
    return summary


def run_download(
    settings: Settings,
    options: DownloadOptions | None = None,
    *,
    retry_failed: bool = False,
    limit: int | None = None,
    progress: Progress | None = None,
) -> DownloadSummary:
    """``corpus download``: one run over the configured database."""
    with open_store(settings, create=False) as store:
        return run_stoppable(
            download_pending(
                store, settings, retry_failed=retry_failed, limit=limit, progress=progress, options=options
            )
        )
