"""The crawl's expansions, written behind the pages, several per transaction.

Recording one expansion costs a few milliseconds of the crawler's CPU, most of it per statement and
per commit rather than per row, and on a saturated machine that CPU is taken from the browser. So an
expansion loop hands its list to an :class:`ExpansionWriter` and goes on to its next parent; the writer
records the lists gathered so far in ONE transaction (:func:`~tiktok_corpus.store.crawl.record_expansions`)
once ``batch`` of them wait, or ``max_delay_s`` after the first, or when a loop needs the frontier to
be current (:meth:`ExpansionWriter.flush`). A parent is still done only when its write lands: one
killed before that is reclaimed like any other unfinished claim.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from ..store.crawl import Expansion, Sighting
from ..store.thread import DatabaseThread

EXPANSIONS_PER_WRITE = 16  # a write of 16 costs about 40% of the CPU per expansion of writing each alone
MAX_WRITE_DELAY_S = 0.5  # how stale the live counts and the frontier may get on a slow crawl

Write = Callable[[Sequence[Expansion]], list[Sighting | None]]
Landed = Callable[[Expansion, Sighting | None], None]  # None: the parent's claim was lost, nothing written


class ExpansionWriter:
    """Batches of expansions, written in order on the run's database thread; ``landed`` hears of each."""

    def __init__(
        self,
        db: DatabaseThread,
        write: Write,
        landed: Landed,
        *,
        batch: int = EXPANSIONS_PER_WRITE,
        max_delay_s: float = MAX_WRITE_DELAY_S,
    ) -> None:
        self._db = db
        self._write = write
        self._landed = landed
        self._batch = batch
        self._max_delay_s = max_delay_s
        self._waiting: list[Expansion] = []
        self._writing: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._failure: Exception | None = None

    @property
    def busy(self) -> bool:
        """Expansions are waiting or being written: the frontier in the database is behind."""
        return bool(self._waiting or self._writing)

    def add(self, expansion: Expansion) -> None:
        """Queue one expansion; raises the error of a write that failed since the last call."""
        self._raise_failure()
        self._waiting.append(expansion)
        if len(self._waiting) >= self._batch:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_delay_s, self._start)

    async def flush(self) -> None:
        """Write what waits and return once every write so far has landed (or raise the first failure)."""
        self._start()
        while self._writing:
            await asyncio.wait(set(self._writing))
        self._raise_failure()

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiting:
            return
        batch, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._write_batch(batch))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write_batch(self, batch: list[Expansion]) -> None:
        try:
            sightings = await self._db(self._write, batch)
        except Exception as exc:  # kept for the next add / flush, which raise it where the crawl can stop
            self._failure = self._failure or exc
            return
        for expansion, sighting in zip(batch, sightings, strict=True):
            self._landed(expansion, sighting)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


__all__ = ["EXPANSIONS_PER_WRITE", "MAX_WRITE_DELAY_S", "ExpansionWriter"]
