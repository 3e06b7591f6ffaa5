"""One process's crawl: For You seeds, then ``workers`` x ``in_flight`` expansion loops sharing one browser, with the
download stage running alongside when asked.

Each worker asks its :class:`~tiktok_corpus.tiktok.related_lists.RelatedLists` for a parent's list and records the
method that got it with the expansion; which method that is, and when it changes, is decided there, not here.

The pages' fetches run on the event loop. Every database call of the expansion loops (claims, the frontier check,
the expansion writes) and the live count of downloaded files go, in order, to one database thread, so a transaction
in progress never holds up the pages (the downloader does the same). Expansions are written behind the loops,
several per transaction (:mod:`.writes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
import time
from dataclasses import asdict
from typing import Any

from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from .._collector import bulk_parsing_collector
from .._signals import run_stoppable
from .._tasks import gather_or_cancel
from ..config import Settings
from ..errors import BlockedError, ContractError, ItemUnavailable, PersistentlyBlocked, SiteUnreachable
from ..store import queue
from ..store.crawl import Expansion, Sighting, corpus_video_count, record_expansions, record_seeds, seed_count
from ..store.crawl_runs import close_killed_runs, end_run, start_run
from ..store.db import Store, open_store
from ..store.frontier import fail_parent, frontier_state, restore_parents, retry_failed_parents, retry_parent
from ..store.status import stage_counts
from ..store.thread import DatabaseThread
from ..tiktok.blocks import SITE_WIDE_KINDS, BlockMonitor, BlockPolicy, Pacer
from ..tiktok.browser import BrowserSource, WorkerSession, default_user_agent, stage_browser
from ..tiktok.contract import ItemList
from ..tiktok.related_lists import RelatedLists, session_related_lists
from ..tiktok.session_files import session_dir
from ..tiktok.site_methods import REFUSALS
from .alongside import DownloadsAlongside
from .claims import ParentClaims
from .options import CrawlCounters, CrawlOptions, CrawlProgress, CrawlSummary
from .writes import ExpansionWriter

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.5
PUBLISH_EVERY_S = 0.25  # the live display needs no more, and downloads are counted with a query


class _Crawl:
    """One process's crawl: seeds, then ``workers`` expansion loops sharing one browser."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        options: CrawlOptions,
        *,
        policy: BlockPolicy,
        progress: CrawlProgress | None,
        rng: random.Random,
        browser: BrowserSource | None,
    ) -> None:
        self.store = store
        self.browser = browser  # None: launched here, as the settings say
        self.settings = settings
        self.options = options
        self.progress = progress
        self.monitor = BlockMonitor(policy)
        self.policy = policy
        self.pacer = Pacer(options.delay_s, options.max_rate or None, rng)
        self.counters = CrawlCounters(target=options.max_videos)
        self.run_id = 0
        self.sessions: list[WorkerSession] = []
        self.related_lists: dict[str, RelatedLists] = {}  # per worker (session name)
        self.done = asyncio.Event()
        self._published_at = 0.0
        self._started = time.monotonic()
        batch = options.workers * options.in_flight
        self._parents = ParentClaims(store, strategy=options.strategy, batch=batch, draw=random.Random(options.seed))
        self._claiming = asyncio.Lock()
        # The expansion loops' claims, writes and the download count run here, in order, so the event
        # loop keeps feeding the pages while an expansion is recorded.
        self._db = DatabaseThread("crawl")
        self._writes = ExpansionWriter(
            self._db,
            lambda expansions: record_expansions(
                store,
                expansions,
                fanout=options.fanout,
                max_videos=options.max_videos,
                run_id=self.run_id,
                seed=options.seed,
                worker=self._parents.worker,
            ),
            self._landed,
        )
        self.downloads = (
            DownloadsAlongside(store, settings, self._db, self.counters, every_s=PUBLISH_EVERY_S)
            if options.download
            else None
        )

    def _publish(self, *, force: bool = False) -> None:
        """Hand the counters to the display, at most every ``PUBLISH_EVERY_S``; no query of its own."""
        now = time.monotonic()
        if not force and now - self._published_at < PUBLISH_EVERY_S:
            return
        self._published_at = now
        self.counters.elapsed_s = now - self._started
        self.counters.blocks = self.monitor.total
        if self.downloads is not None and self.downloads.summary is not None:
            self.counters.downloaded = self.downloads.summary.downloaded
        if self.progress is not None:
            self.progress.update(self.counters)

    def _count_corpus(self) -> None:
        """The corpus's numbers as `corpus status` counts them (one read), for the first and last updates."""
        counts, counters = stage_counts(self.store), self.counters
        counters.videos, counters.items = counts["item_kinds"].get("video", 0), counts["videos"]
        counters.seeds = seed_count(self.store)
        if self.options.download:
            counters.downloaded_in_corpus = counts["stages"]["download"].get("downloaded", 0)

    def _publish_final(self) -> None:
        """The last update: the corpus's numbers read afresh and this run's as they stand, whatever ended
        the run (a database that cannot be read leaves the ones last counted)."""
        try:
            self._count_corpus()
        except Exception as unread:  # noqa: BLE001 - the display must still get this run's numbers
            log.warning("the corpus could not be counted for the crawl's last update: %s", unread)
        self._publish(force=True)

    def _count(self, sighting: Sighting) -> None:
        self.counters.new_items += len(sighting.new)
        self.counters.items += len(sighting.new)  # this process's; read afresh for the last update
        self.counters.snapshots += len(sighting.in_corpus)
        self.counters.videos = sighting.videos  # counted inside the write's lock: current for all processes

    async def collect_seeds(self, session: WorkerSession) -> None:
        options = self.options

        def take(batch: ItemList) -> bool:
            sighting = record_seeds(
                self.store,
                batch,
                seeds=options.seeds,
                max_videos=options.max_videos,
                run_id=self.run_id,
                seed=options.seed,
            )
            self._count(sighting)
            self.counters.seeds = seed_count(self.store)
            self._publish()
            # A full corpus takes no more seeds: the feed would be scrolled for ever.
            return self.counters.seeds >= options.seeds or sighting.videos >= options.max_videos

        if seed_count(self.store) < options.seeds and corpus_video_count(self.store) < options.max_videos:
            await session.recommended(take)

    async def expand_loop(self, session: WorkerSession) -> None:
        """One of a worker page's ``in_flight`` loops: claim a parent, fetch its related list, record it.

        The video count comes from the last expansion's own transaction; another process's additions
        show up there too, so the loop stops at the target without a count query per round.
        """
        options = self.options
        while not self.done.is_set():
            if self.counters.videos >= options.max_videos:
                self._publish(force=True)  # the display sees the target when it is reached, not after shutdown
                self.done.set()
                return
            self._publish()
            parent_id = await self._next_parent()
            if parent_id is None:
                claimable, waiting = await self._db(frontier_state, self.store)
                if not claimable and not waiting:
                    self.done.set()
                    return
                # Another expansion may still add videos, or a parent's retry backoff run out.
                await asyncio.sleep(IDLE_POLL_S)
                continue
            await self._expand(self.related_lists[session.name], parent_id)

    async def _next_parent(self) -> str | None:
        """A parent for one of the expansion loops; one claim refills for all of them (``workers x
        in_flight`` parents). A claim that finds the frontier empty while expansions are still being
        written waits for them and claims again."""
        parents = self._parents
        async with self._claiming:
            if not parents.has_unstarted:
                await self._db(parents.claim)
            if not parents.has_unstarted and self._writes.busy:
                await self._writes.flush()
                await self._db(parents.claim)
        return parents.take()

    async def _expand(self, lists: RelatedLists, parent_id: str) -> None:
        """Fetch one parent's related list and record what came of it; the parent is settled once its
        outcome is written (a list, once its batch lands)."""
        try:
            related = await lists.get(parent_id)
        except ItemUnavailable as exc:
            await self._unavailable_parent(parent_id, exc)
        except ContractError as exc:
            await self._failed_parent(parent_id, exc)
        else:
            self._writes.add(Expansion(parent_id, related.value, related.method))
            return
        self._parents.settled(parent_id)

    async def _failed_parent(self, parent_id: str, exc: ContractError) -> None:
        """A block, a timeout, a 5xx is about the moment, not the video: the parent goes back to the
        frontier for a later try, after a backoff, up to --max-attempts claims (a page that never yields
        its list would otherwise be claimed forever). An answer said final (a hostile id) fails it now.
        A request that got no answer at all, or a page Chromium will not load for the whole site, may be
        the outage the block monitor stops the crawl for: that parent goes back untouched, with the
        others in hand."""
        site_wide = exc.kind in SITE_WIDE_KINDS
        if site_wide:
            self.monitor.record_unreachable(exc)
        if exc.retryable or site_wide:
            await self._db(
                retry_parent,
                self.store,
                parent_id,
                exc.kind,
                exc.message,
                max_attempts=self.options.max_attempts,
                retry_after_s=self.policy.parent_retry_after,
                worker=self._parents.worker,
            )
        else:
            await self._db(fail_parent, self.store, parent_id, exc.kind, exc.message, worker=self._parents.worker)
        self.counters.errors["blocked" if isinstance(exc, BlockedError) else exc.kind] += 1

    async def _unavailable_parent(self, parent_id: str, exc: ItemUnavailable) -> None:
        """A deleted or private parent fails; but a run of such answers is a region or IP block (the
        site answers it with 10204 too): the parent goes back to the frontier untouched, and the block
        monitor, not the parent's attempts, decides when the crawl stops."""
        believed = False
        try:
            believed = self.monitor.unavailable_believed(parent_id)  # persistent blocking raises
        finally:
            if doubted := self.monitor.take_doubted():  # the run's first answers were the block's too
                await self._db(restore_parents, self.store, doubted)
            if not believed:  # a block, persistent or not
                await self._db(queue.release, self.store, "expand", [parent_id], worker=self._parents.worker)
        if believed:
            await self._db(fail_parent, self.store, parent_id, exc.kind, exc.message, worker=self._parents.worker)
            self.counters.errors[exc.kind] += 1
        else:
            self.counters.errors["blocked"] += 1

    def _landed(self, expansion: Expansion, sighting: Sighting | None) -> None:
        self._parents.settled(expansion.parent_id)
        if sighting is None:  # its claim lapsed while this process was stopped: another worker's now
            log.warning(
                "parent %s: its claim lapsed and another worker took it; its list was not kept", expansion.parent_id
            )
            self.counters.errors["claim_lost"] += 1
            return
        if not sighting.expanded:  # the corpus was full when it landed: left to a run with a larger target
            self.counters.videos = sighting.videos  # full, maybe by another process's lists: the loops stop
            return
        self._count(sighting)
        self.counters.expansions += 1
        self.counters.methods[expansion.method] += 1
        self.counters.edges += len(sighting.in_corpus)

    async def run(self) -> CrawlSummary:
        options = self.options
        self._started = time.monotonic()
        queue.reclaim_dead(self.store, "expand")
        close_killed_runs(self.store)
        if options.retry_failed:
            retry_failed_parents(self.store)
        self.run_id = start_run(self.store, asdict(options) | {"base_url": self.settings.base_url})
        try:
            self._count_corpus()
            self._publish(force=True)  # a resumed crawl shows the corpus it goes on from
            async with stage_browser(self.browser, self.settings, headful=options.headful) as browser:
                try:
                    status, message, downloads = await self._crawl_on(browser)
                finally:
                    for session in self.sessions:
                        await session.close()
        except BaseException as exc:
            self._publish_final()  # Ctrl-C too: the display ends on what this run did
            self._end_stopped_run(exc)
            raise
        finally:
            self._db.shutdown()
        return self._summarise(status, message, downloads)

    async def _crawl_on(self, browser: Browser) -> tuple[str, str | None, dict[str, Any] | None]:
        """Seeds, then expansions, by worker sessions in ``browser``; the crawl's ending (status, message)
        and its downloads' summary. The run's row and the sessions are :meth:`run`'s to close."""
        options = self.options
        status, message, downloads = "running", None, None
        user_agent = await default_user_agent(browser)
        self.sessions = [
            WorkerSession(
                browser,
                self.settings.base_url,
                policy=self.policy,
                monitor=self.monitor,
                pacer=self.pacer,
                user_agent=user_agent,
                name=f"w{i}",
            )
            for i in range(options.workers)
        ]
        self.related_lists = {
            s.name: session_related_lists(
                s, via=options.related_via, fallback_after=options.fallback_after, count=options.related_count
            )
            for s in self.sessions
        }
        first, started = self.sessions[0], False
        renewing = asyncio.create_task(self._parents.keep_renewed(self._db))
        try:
            await first.start()  # a site that does not answer it raises SiteUnreachable
            started = True
            await first.save_session(session_dir(self.settings))
            if self.downloads is not None:
                await self.downloads.start(first, user_agent)
            await gather_or_cancel(self.collect_seeds(first), *(s.start() for s in self.sessions[1:]))
            self.counters.videos = corpus_video_count(self.store)
            self.counters.seeds = seed_count(self.store)
            with bulk_parsing_collector():
                await gather_or_cancel(*(self.expand_loop(s) for s in self.sessions for _ in range(options.in_flight)))
            await self._writes.flush()
            videos = corpus_video_count(self.store)
            status = "target_reached" if videos >= options.max_videos else "frontier_exhausted"
        except PersistentlyBlocked as exc:
            status, message = "blocked", exc.message + self._fixed_method_hint()
        except SiteUnreachable as exc:
            status, message = "unreachable", exc.message
        except BlockedError as exc:  # a session never got past the blocks in its retries
            status, message = "blocked", f"persistently blocked: {exc.message}"
        finally:
            self.done.set()
            # Ctrl-C, an error, a site gone or blocking: no draining (each pending file would fail against it)
            stopping = sys.exc_info()[1] is not None or status in ("blocked", "unreachable")
            renewing.cancel()
            try:
                await self._writes.flush()  # the lists already fetched land, whatever stopped the crawl
            finally:
                await self._db(self._parents.give_back)  # after the writes queued before it
            if self.downloads is not None:
                downloads = await self.downloads.finish(drain=not stopping)
            if started and first.context is not None:
                # Ctrl-C reaches Chromium too: a browser already gone keeps the session saved at the start
                with contextlib.suppress(PlaywrightError):
                    await first.save_session(session_dir(self.settings))
        return status, message, downloads

    def _fixed_method_hint(self) -> str:
        """What to change when a method fixed with ``--related-via`` was refused throughout: the site may
        demand a signature it lacks (X-Gnarly), and neither waiting nor a proxy brings the list back."""
        via = self.options.related_via
        if via in ("auto", "page") or not REFUSALS.intersection(self.monitor.kinds):
            return ""
        return (
            f"; --related-via {via} has no fallback, and the site may demand a signature it lacks: "
            "--related-via auto (the default) goes on to the pages' own requests"
        )

    def _end_stopped_run(self, exc: BaseException) -> None:
        """Close the run's row as ``interrupted`` (Ctrl-C) or ``failed``, with its counts; a row that
        cannot be written (the disk that stopped the crawl is full) leaves ``exc`` to say why."""
        status = "interrupted" if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)) else "failed"
        try:
            end_run(self.store, self.run_id, status, self.counters.to_dict())
        except Exception as unwritten:  # noqa: BLE001 - the stopping error is the one to report
            log.warning("crawl run %s could not be marked %s: %s", self.run_id, status, unwritten)

    def _summarise(self, status: str, message: str | None, downloads) -> CrawlSummary:
        """The summary: the numbers of the display's last update, which this publishes."""
        self._publish_final()
        summary = self.counters.summary(
            run_id=self.run_id,
            status=status,
            block_kinds=dict(self.monitor.kinds),
            recycles=sum(s.recycles for s in self.sessions),
            downloads=downloads,
            message=message,
        )
        end_run(self.store, self.run_id, status, {k: v for k, v in summary.to_dict().items() if k not in ("message",)})
        return summary


async def crawl_async(
    store: Store,
    settings: Settings,
    options: CrawlOptions,
    *,
    policy: BlockPolicy | None = None,
    progress: CrawlProgress | None = None,
    rng: random.Random | None = None,
    browser: BrowserSource | None = None,
) -> CrawlSummary:
    """Run (or resume) a crawl in the running event loop; returns its summary.

    ``browser``: what the workers run on (:func:`~tiktok_corpus.tiktok.browser.stage_browser`); a
    :class:`Browser` passed in is left open. Without one, Chromium is launched as the settings say.
    ``rng``: the pacing jitter's; without one, each process draws its own (``options.seed`` orders the
    frontier), so crawls sharing a database do not pace in step.

    Raises :class:`PersistentlyBlocked` and :class:`SiteUnreachable` only through :func:`crawl`; here
    such a run ends with ``status == "blocked"`` or ``"unreachable"`` so callers can still read its counts.
    """
    options.validate()
    crawl = _Crawl(
        store,
        settings,
        options,
        policy=policy or BlockPolicy(),
        progress=progress,
        rng=rng or random.Random(),
        browser=browser,
    )
    return await crawl.run()


def crawl(
    settings: Settings,
    options: CrawlOptions,
    *,
    progress: CrawlProgress | None = None,
    policy: BlockPolicy | None = None,
) -> CrawlSummary:
    """``corpus crawl``: open the store, crawl, close; a persistently blocked run raises
    :class:`PersistentlyBlocked` (exit code 3), one that got no answers :class:`SiteUnreachable` (exit
    code 4), after its summary is saved in ``crawl_runs``."""
    options.validate()
    with open_store(settings) as store:
        summary = run_stoppable(crawl_async(store, settings, options, policy=policy, progress=progress))
    if summary.status == "blocked":
        raise PersistentlyBlocked(summary.message or "persistently blocked", summary=summary.to_dict())
    if summary.status == "unreachable":
        raise SiteUnreachable(summary.message or "the site did not answer", summary=summary.to_dict())
    return summary
