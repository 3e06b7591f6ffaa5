"""The For You feed as a worker session reads it: the recommend responses its page makes while it scrolls.

Seeds come only from calls the site's own page makes (and signs), so they survive any signing scheme.
:class:`ForYouFeed` is a part of :class:`.browser.WorkerSession`, kept apart so each file holds one job;
the attributes it reads are the session's, declared here for the type checker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, Response

from ..errors import BlockedError, ContractError
from .blocks import BlockMonitor, BlockPolicy, Pacer, http_status_error, unanswered_is_unreachable
from .contract import ItemList, parse_item_list

log = logging.getLogger(__name__)

RECOMMEND_PATH = "/api/recommend/item_list/"
FORYOU_PATH = "/foryou"


class ForYouFeed:
    """Collects For You batches from the session's open page (a mixin of the worker session)."""

    page: Page | None
    base_url: str
    monitor: BlockMonitor
    policy: BlockPolicy
    pacer: Pacer
    requests_in_context: int
    _consecutive_blocks: int
    _ready_at: float
    _recommend_queue: asyncio.Queue[tuple[int, str]] | None
    _open_fresh_context: Callable[[], Awaitable[None]]
    _watching_responses: Callable[[], AbstractContextManager[None]]
    _goto: Callable[[str], Awaitable[None]]
    recycle: Callable[[], Awaitable[None]]
    scroll: Callable[[], Awaitable[None]]
    with_retries: Callable[[Callable[[], Awaitable[Any]], str], Awaitable[Any]]

    @staticmethod
    async def _capture(response: Response, queue: asyncio.Queue) -> None:
        try:
            body = await response.text()
        except PlaywrightError:  # page closed or body gone: an empty answer, counted as such
            body = ""
        queue.put_nowait((response.status, body))

    async def recommended(
        self, wanted: Callable[[ItemList], bool], *, stall_scrolls: int = 4, wait_s: float = 2.5
    ) -> None:
        """Feed recommend responses the For You page makes to ``wanted`` until it returns True.

        The page is reloaded (and after repeated blocks recycled) when scrolling stops bringing batches:
        ``stall_scrolls`` scrolls in a row without one, or with one the page could not use (an HTTP error,
        malformed JSON, no item it could read). Blocked batches count towards persistent blocking. A feed
        that brings batches but only of videos this context brought already (a small site's) has no more
        to give: ``stall_scrolls`` of them in a row end it, as if ``wanted`` were satisfied (the seeds may
        then be fewer than asked; the crawl's summary counts them). A feed page that got no answer in any try
        is an unreachable site (:class:`~tiktok_corpus.errors.SiteUnreachable`).
        """
        self._recommend_queue = asyncio.Queue()
        try:
            with self._watching_responses(), unanswered_is_unreachable("the For You page"):
                await self.with_retries(lambda: self._recommended_until(wanted, stall_scrolls, wait_s), "For You feed")
        finally:
            self._recommend_queue = None

    async def _recommended_until(self, wanted: Callable[[ItemList], bool], stall_scrolls: int, wait_s: float) -> None:
        assert self._recommend_queue is not None
        if self.page is None:
            await self._open_fresh_context()
        elif FORYOU_PATH not in self.page.url:
            await self._goto(self.base_url + FORYOU_PATH)
        stalls, repeats, brought = 0, 0, set[str]()
        await self._scroll_paced()  # the load-time batch went to the warm-up: ask for a fresh one
        while stalls < stall_scrolls:
            try:
                status, body = await asyncio.wait_for(self._recommend_queue.get(), wait_s)
            except TimeoutError:
                stalls += 1
                await self._scroll_paced()
                continue
            self.requests_in_context += 1
            try:
                if error := http_status_error(status, RECOMMEND_PATH):
                    raise error
                batch = parse_item_list(body)
            except BlockedError as exc:
                self.monitor.record_block(exc.kind)
                self._consecutive_blocks += 1
                if self._consecutive_blocks >= self.policy.recycle_after_blocks:
                    await self.recycle()
                    brought, repeats = set(), 0  # a fresh context's first batches are no repeats of the last one's
                else:
                    await self._scroll_paced()
                continue
            except ContractError:  # a 429, a 5xx, malformed JSON: scrolled past, but it is no progress
                stalls += 1
                await self._scroll_paced()
                continue
            self.monitor.record_success()
            self._consecutive_blocks = 0
            if wanted(batch):
                return
            if not batch.items:  # an empty list (a soft throttle) or none readable: no progress, no repeat either
                stalls += 1
                await self._scroll_paced()
                continue
            new = {item.id for item in batch.items} - brought
            brought |= new
            stalls, repeats = (0, 0) if new else (stalls, repeats + 1)
            if repeats >= stall_scrolls:  # scrolled further, it would repeat itself for ever
                log.warning("the For You feed brought only videos it brought before, %d batches in a row", repeats)
                return
            await self._scroll_paced()
        raise BlockedError("the For You page stopped bringing new videos", kind="feed_stalled")

    async def _scroll_paced(self) -> None:
        self._ready_at = await self.pacer.wait(self._ready_at)
        await self.scroll()
