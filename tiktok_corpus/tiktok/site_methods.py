"""Which way a worker gets one kind of data from the site, and when it changes its mind (issue #14).

The site answers an API call whose signature it does not accept with HTTP 200 and an EMPTY body, and
its signing changes every few months (X-Bogus, then X-Gnarly). Three methods get a related list (or
an item, for the tracker), cheapest first:

* ``fetch`` - a plain ``fetch()`` inside the open page: one round trip, where the site signs nothing;
* ``signed`` - the same fetch carrying the X-Bogus of the page's own ``frontierSign``;
* ``page`` - open the video page and take what its own scripts request and sign (the related list), or
  its rehydration JSON (the item): a navigation per call, but it works whatever the algorithm, so it is
  the method of last resort.

``auto`` (the default) keeps, per worker, a *current* method:

1. **Probe.** The first call in a browser context tries the methods cheapest first and keeps the first
   that answers (one call probes; the worker's other calls wait for its answer). A recycled context
   may be signed differently, so a new context probes again.
2. **Rescue.** When the current method's answer is refused (an empty body, a JSON envelope without its
   ``itemList`` or ``itemStruct`` - the contract's other bot answer - or a page without
   ``frontierSign``), the same try goes on to the slower methods; the first to answer fills it.
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
from typing import TYPE_CHECKING, Generic, TypeVar

from ..errors import BlockedError

if TYPE_CHECKING:  # the methods' choice is pure: the CLI's options read VIA without Playwright
    from .browser import WorkerSession

log = logging.getLogger(__name__)

METHODS = ("fetch", "signed", "page")  # cheapest first
VIA = ("auto", *METHODS)
# How the site refuses a method (its signature), as opposed to refusing the session or the video. An
# envelope that holds no list or item may refuse either: a slower method is the way to tell.
REFUSALS = frozenset({"empty_body", "no_item_list", "no_item", "no_signer"})

T = TypeVar("T")
# A method: video id -> the parsed answer (a refused call raises BlockedError with a REFUSALS kind).
Method = Callable[[str], Awaitable[T]]
Retry = Callable[[Callable[[], Awaitable["Answer[T]"]], str], Awaitable["Answer[T]"]]


@dataclass(frozen=True)
class Answer(Generic[T]):
    """What a call got, and the method that got it (recorded with the work it feeds)."""

    value: T
    method: str


class MethodChoice(Generic[T]):
    """One worker's calls of one kind: the method choice above, with the methods injected."""

    def __init__(
        self,
        methods: Mapping[str, Method[T]],
        *,
        via: str,
        fallback_after: int,
        context: Callable[[], int],
        retry: Retry,
        what: str,
    ) -> None:
        self.order = METHODS if via == "auto" else (via,)
        self.methods = methods
        self.fallback_after = fallback_after
        self.context = context  # which browser context the methods run in now
        self.retry = retry
        self.what = what  # "related list", "item": for the logs
        self.current: int | None = None  # index in ``order``; None: probe first
        self.rescues = 0  # consecutive tries a slower method filled
        self._probed_in: int | None = None
        self._probing = asyncio.Lock()

    async def get(self, video_id: str) -> Answer[T]:
        """The answer for ``video_id``, under the retry policy."""
        return await self.retry(lambda: self.once(video_id), f"{self.what} of {video_id}")

    async def once(self, video_id: str) -> Answer[T]:
        """One try: the current method, rescued by the slower ones when it is refused."""
        if self._needs_probe():
            async with self._probing:
                if self._needs_probe():
                    return await self._first_answer(0, video_id, probing=True)
        assert self.current is not None
        return await self._first_answer(self.current, video_id, probing=False)

    def _needs_probe(self) -> bool:
        return self.current is None or self._probed_in != self.context()

    async def _first_answer(self, start: int, video_id: str, *, probing: bool) -> Answer[T]:
        refusals: list[BlockedError] = []
        for index in range(start, len(self.order)):
            name = self.order[index]
            try:
                value = await self.methods[name](video_id)
            except BlockedError as exc:
                if exc.kind not in REFUSALS:
                    raise
                refusals.append(exc)
                continue
            self._answered(index, probing)
            return Answer(value, name)
        if len(refusals) == 1:
            raise refusals[0]
        tried = ", ".join(f"{name}: {exc.kind}" for name, exc in zip(self.order[start:], refusals))
        raise BlockedError(f"every method was refused ({tried})", kind=refusals[0].kind)

    def _answered(self, index: int, probing: bool) -> None:
        """Move the current method as the rules say, now that method ``index`` answered."""
        if probing:
            self.current, self.rescues, self._probed_in = index, 0, self.context()
            log.info("%ss via %s", self.what, self.order[index])
            return
        assert self.current is not None
        if index == self.current:
            self.rescues = 0
        elif index > self.current:  # a smaller index: a try begun before a switch says nothing about now
            self.rescues += 1
            if self.rescues >= self.fallback_after:
                was = self.order[self.current]
                log.info(
                    "%ss: %s refused %d tries in a row; now via %s",
                    self.what,
                    was,
                    self.rescues,
                    self.order[index],
                )
                self.current, self.rescues = index, 0


def session_method_choice(
    session: WorkerSession, methods: Mapping[str, Method[T]], *, via: str, fallback_after: int, what: str
) -> MethodChoice[T]:
    """The choice among ``methods`` run in one worker's browser session: it re-probes when the session
    opens a new context, and each try runs under the session's block policy."""
    return MethodChoice(
        methods,
        via=via,
        fallback_after=fallback_after,
        context=lambda: session.contexts_opened,
        retry=session.with_retries,
        what=what,
    )


__all__ = ["METHODS", "VIA", "Answer", "MethodChoice", "session_method_choice"]
