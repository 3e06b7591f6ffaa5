"""Where a worker gets its related lists from, and when it changes its mind (issue #14).

The site answers an API call whose signature it does not accept with HTTP 200 and an EMPTY body, and
its signing changes every few months (X-Bogus, then X-Gnarly). Three methods get a related list,
cheapest first:

* ``fetch`` - a plain ``fetch()`` inside the open page: one round trip, where the site signs nothing;
* ``signed`` - the same fetch carrying the X-Bogus of the page's own ``frontierSign``;
* ``page`` - open the video page and take the related list its own scripts request (and sign): a
  navigation per list, but it works whatever the algorithm, so it is the method of last resort.

``auto`` (the default) keeps, per worker, a *current* method:

1. **Probe.** The first call in a browser context tries the methods cheapest first and keeps the first
   that answers (one call probes; the worker's other calls wait for its answer). A recycled context
   may be signed differently, so a new context probes again.
2. **Rescue.** When the current method's answer is refused (an empty body, or a page without
   ``frontierSign``), the same try goes on to the slower methods; the first to answer fills the list.
3. **Fall back.** After ``fallback_after`` consecutive rescues the rescuer becomes the current method.

An empty body that a slower method then fills is therefore no block: a try fails with a refusal only
when every method refused, and only that reaches the :class:`~.browser.BlockMonitor` (through the
session's retry policy, which also keeps its WAF, captcha and recycling rules for every method). A
fixed method (``--related-via fetch``) has nothing to fall back on: its refusals are blocks. Any
other failure (captcha, HTTP error, a deleted video) is no verdict on a method and goes to the caller
at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from ..errors import BlockedError
from .browser import WorkerSession
from .contract import ItemList, parse_item_list, related_api_path

log = logging.getLogger(__name__)

METHODS = ("fetch", "signed", "page")  # cheapest first
RELATED_VIA = ("auto", *METHODS)
# How the site refuses a method (its signature), as opposed to refusing the session or the video.
REFUSALS = frozenset({"empty_body", "no_signer"})

# A method: (video id, count) -> the raw body of the related list.
ListBody = Callable[[str, int], Awaitable[str]]
Retry = Callable[[Callable[[], Awaitable["RelatedList"]], str], Awaitable["RelatedList"]]


@dataclass(frozen=True)
class RelatedList:
    """A related list and the method that got it (recorded with the expansion)."""

    items: ItemList
    method: str


class RelatedLists:
    """One worker's related lists: the method choice above, with the methods injected."""

    def __init__(
        self,
        methods: Mapping[str, ListBody],
        *,
        via: str,
        fallback_after: int,
        context: Callable[[], int],
        retry: Retry,
    ) -> None:
        self.order = METHODS if via == "auto" else (via,)
        self.methods = methods
        self.fallback_after = fallback_after
        self.context = context  # which browser context the methods run in now
        self.retry = retry
        self.current: int | None = None  # index in ``order``; None: probe first
        self.rescues = 0  # consecutive tries a slower method filled
        self._probed_in: int | None = None
        self._probing = asyncio.Lock()

    async def get(self, video_id: str, count: int = 16) -> RelatedList:
        """The related list of ``video_id``, under the retry policy."""
        return await self.retry(lambda: self.once(video_id, count), f"related list of {video_id}")

    async def once(self, video_id: str, count: int = 16) -> RelatedList:
        """One try: the current method, rescued by the slower ones when it is refused."""
        if self._needs_probe():
            async with self._probing:
                if self._needs_probe():
                    return await self._first_answer(0, video_id, count, probing=True)
        assert self.current is not None
        return await self._first_answer(self.current, video_id, count, probing=False)

    def _needs_probe(self) -> bool:
        return self.current is None or self._probed_in != self.context()

    async def _first_answer(self, start: int, video_id: str, count: int, *, probing: bool) -> RelatedList:
        refusals: list[BlockedError] = []
        for index in range(start, len(self.order)):
            name = self.order[index]
            try:
                items = parse_item_list(await self.methods[name](video_id, count))
            except BlockedError as exc:
                if exc.kind not in REFUSALS:
                    raise
                refusals.append(exc)
                continue
            self._answered(index, probing)
            return RelatedList(items, name)
        if len(refusals) == 1:
            raise refusals[0]
        tried = ", ".join(f"{name}: {exc.kind}" for name, exc in zip(self.order[start:], refusals))
        raise BlockedError(f"every method was refused ({tried})", kind=refusals[0].kind)

    def _answered(self, index: int, probing: bool) -> None:
        """Move the current method as the rules say, now that method ``index`` answered."""
        if probing:
            self.current, self.rescues, self._probed_in = index, 0, self.context()
            log.info("related lists via %s", self.order[index])
            return
        assert self.current is not None
        if index == self.current:
            self.rescues = 0
        elif index > self.current:  # a smaller index: a try begun before a switch says nothing about now
            self.rescues += 1
            if self.rescues >= self.fallback_after:
                was = self.order[self.current]
                log.info(
                    "related lists: %s refused %d tries in a row; now via %s", was, self.rescues, self.order[index]
                )
                self.current, self.rescues = index, 0


def session_related_lists(session: WorkerSession, *, via: str, fallback_after: int) -> RelatedLists:
    """The related lists of one worker's browser session, retried under its block policy."""
    return RelatedLists(
        {
            "fetch": lambda video_id, count: session.fetch_text(related_api_path(video_id, count)),
            "signed": lambda video_id, count: session.fetch_text(related_api_path(video_id, count), signed=True),
            "page": lambda video_id, _count: session.video_page_list(video_id),  # the page asks for its own count
        },
        via=via,
        fallback_after=fallback_after,
        context=lambda: session.contexts_opened,
        retry=session.with_retries,
    )


__all__ = ["METHODS", "RELATED_VIA", "RelatedList", "RelatedLists", "session_related_lists"]
