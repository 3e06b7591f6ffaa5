"""Video pages as a worker session reads them: the related list a page requests on load, and the page's
own rehydration JSON. Both are signed (or rendered) by the site's own scripts, so they survive any
signing scheme; they are the methods of last resort of :mod:`.related_lists` and :mod:`.item_reads`.
:class:`VideoPages` is a part of :class:`.browser.WorkerSession`, kept apart so each file holds one job;
the attributes it reads are the session's, declared here for the type checker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from playwright.async_api import BrowserContext, Page, Response
from playwright.async_api import Error as PlaywrightError

from ..errors import BlockedError
from .blocks import BlockPolicy, http_status_error
from .contract import page_url, parse_video_page, redact_url

T = TypeVar("T")


class VideoPages:
    """Reads through video pages opened on a pool of spare pages (a mixin of the worker session)."""

    base_url: str
    policy: BlockPolicy
    context: BrowserContext | None
    _spare_pages: list[Page]
    _list_answers: dict[str, asyncio.Future[Response]]
    _watching_responses: Callable[[], AbstractContextManager[None]]
    _navigate: Callable[[Page, str], Awaitable[str]]
    _in_context: Callable[[Callable[[], Awaitable[Any]], str], Awaitable[Any]]

    async def video_page_list(self, video_id: str) -> str:
        """Open the video page of ``video_id`` and return the body of the related list that the page
        requests on load, signed by the page's own scripts whatever the site's algorithm.

        A deleted or private video's page requests no list (:class:`ItemUnavailable` from its
        rehydration JSON); a page that loads but requests none within ``page_list_wait_s`` counts as
        an empty body, like a refused call.
        """
        url = page_url(self.base_url, video_id)

        async def navigate(page: Page) -> str:
            answer = self._list_answers[video_id] = asyncio.get_running_loop().create_future()
            try:
                with self._watching_responses():  # until the page's own related list has come
                    parse_video_page(await self._navigate(page, url), video_id)  # raises for a page without its list
                    try:
                        response = await asyncio.wait_for(answer, self.policy.page_list_wait_s)
                    except TimeoutError:
                        raise BlockedError(f"{redact_url(url)} requested no related list", kind="empty_body") from None
                try:
                    body = await response.text()
                except PlaywrightError:  # the body is gone: an empty answer, counted as such
                    body = ""
                if error := http_status_error(response.status, response.url):
                    raise error
                return body
            finally:
                del self._list_answers[video_id]

        return await self._in_context(lambda: self._on_spare_page(navigate), url)

    async def video_page(self, video_id: str) -> str:
        """The HTML of ``video_id``'s page: its rehydration JSON holds the item as the site's own
        scripts got it, whatever the signing (the tracker's method of last resort)."""
        url = page_url(self.base_url, video_id)
        return await self._in_context(lambda: self._on_spare_page(lambda page: self._navigate(page, url)), url)

    async def _on_spare_page(self, navigate: Callable[[Page], Awaitable[T]]) -> T:
        """Run ``navigate`` on a video page of the pool (opened on demand), returned to it afterwards."""
        page = self._spare_pages.pop() if self._spare_pages else await self._new_page()
        try:
            return await navigate(page)
        finally:
            if not page.is_closed():
                self._spare_pages.append(page)

    async def _new_page(self) -> Page:
        assert self.context is not None
        return await self.context.new_page()
