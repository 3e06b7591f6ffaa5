"""The download stage run beside discovery (``corpus crawl --download``): it starts on the crawl session's
cookies once the first session is up, fetches what the crawl finds while it runs, and drains what is
left when discovery ends, or stops with a stopped crawl."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..store.crawl import downloaded_count
from ..store.db import Store
from ..store.thread import DatabaseThread
from ..tiktok.browser import WorkerSession
from .options import CrawlCounters

if TYPE_CHECKING:
    from ..download import DownloadSummary


class DownloadsAlongside:
    """One crawl's download stage. ``summary`` counts this run's files as they land; the corpus's count
    (``counters.downloaded_in_corpus``) is a query, kept current every ``every_s`` on the crawl's
    database thread, so neither the pages nor an expansion loop wait for it."""

    def __init__(
        self, store: Store, settings: Settings, db: DatabaseThread, counters: CrawlCounters, *, every_s: float
    ) -> None:
        self.store, self.settings, self._db, self._counters, self._every_s = store, settings, db, counters, every_s
        self.summary: DownloadSummary | None = None
        self._discovery_over = asyncio.Event()  # the stage drains what is pending, then ends
        self._task: asyncio.Task | None = None
        self._counting: asyncio.Task | None = None

    async def start(self, session: WorkerSession, user_agent: str) -> None:
        from ..download import DownloadSummary, download_pending

        cookies = await session.cookies()
        self.summary = DownloadSummary()
        self._counting = asyncio.create_task(self._count_corpus())
        self._task = asyncio.create_task(
            download_pending(
                self.store,
                self.settings,
                cookies=cookies,
                user_agent=user_agent,
                follow=self._discovery_over,
                summary=self.summary,
            )
        )

    async def _count_corpus(self) -> None:
        while not self._discovery_over.is_set():
            self._counters.downloaded_in_corpus = await self._db(downloaded_count, self.store)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._discovery_over.wait(), self._every_s)

    async def finish(self, *, drain: bool) -> dict[str, Any] | None:
        """Discovery is over: the stage drains what is pending, then reports; a stopped crawl stops it
        instead (an unfinished file is removed, its row pending for the next run). None if never started."""
        self._discovery_over.set()
        if self._counting is not None:
            await self._counting
        if self._task is None:
            return None
        if not drain:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            return None
        return (await self._task).to_dict()
