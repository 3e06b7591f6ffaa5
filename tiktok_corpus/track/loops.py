"""The loops of one process's tracking run: ``workers`` x ``in_flight`` of them, each a worker of its own
(its own name on its claims), claiming due videos, observing each once and recording the snapshot with
every target it settles; a claim is renewed while its read runs. :mod:`.run` starts them on a browser.

The clock is the site's (injected: the system clock for tiktok.com, a fast one for a replica whose
time runs faster). Which way an item is read (detail API, signed, or the video page) is decided per
worker by :mod:`~tiktok_corpus.tiktok.site_methods`, as for the crawl's related lists.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from .._tasks import gather_or_cancel
from ..clock import Clock, clock_kind, sleep_until
from ..errors import (
    ContractError,
    CorpusError,
    ItemUnavailable,
    PersistentlyBlocked,
)
from ..store.db import Store
from ..store.thread import DatabaseThread
from ..store.tracking import (
    DueVideo,
    claim_due,
    next_due_at,
    next_retry_at,
    reclaim_dead_targets,
    record_failure,
    record_gone,
    record_observation,
    release_targets,
    renew_claim,
    restore_gone,
    schedule_targets,
)
from ..store.workers import worker_name
from ..tiktok.blocks import SITE_WIDE_KINDS, BlockMonitor
from ..tiktok.item_reads import ItemRead
from .options import TrackCounters, TrackOptions, TrackProgress

Observe = Callable[[str], Awaitable[ItemRead]]  # video id -> the item as read, and the method

log = logging.getLogger(__name__)

PUBLISH_EVERY_S = 0.25
MAX_IDLE_S = 5.0  # a following run looks for new work (and newly crawled videos) at least this often
# Why an idle loop is woken: to claim (there may be work), or because no loop is busy any more (the
# clock may move, or the run end).
CLAIM, SETTLED = "claim", "settled"
RESCHEDULE_EVERY_S = 5.0  # wall seconds between schedule refreshes, busy or idle
# ... or this many times what the last refresh took, whichever is longer: on a large corpus a refresh
# reads every video young enough to have an age ahead, and must not take the database from the claims.
RESCHEDULE_COST_MULTIPLE = 20


@dataclass(frozen=True)
class Reader:
    """One browser worker's reads of an item: ``read`` by the worker's method choice, and ``confirm``
    through the video page, which must agree before an unavailable answer stops a video's schedule."""

    read: Observe
    confirm: Observe


class Tracking:
    """The loops of one process, over injected readers (one per browser worker) and clocks: ``clock`` is
    the site's, ``wall`` paces this process (schedule refreshes, progress)."""

    def __init__(
        self,
        store: Store,
        options: TrackOptions,
        *,
        clock: Clock,
        progress: TrackProgress | None,
        monitor: BlockMonitor,
        wall: Clock = time.monotonic,
    ) -> None:
        self.store = store
        self.options = options
        self.clock = clock
        self.wall = wall
        self.progress = progress
        self.monitor = monitor
        self.counters = TrackCounters()
        self.deadline = None if options.until_s is None else clock() + options.until_s
        self.done = asyncio.Event()
        self.stop_reason = "done"
        self._db = DatabaseThread("track")
        self._published_at = 0.0
        self._scheduled_at = 0.0
        self._reschedule_every_s = RESCHEDULE_EVERY_S
        self._in_hand: dict[str, DueVideo] = {}  # worker -> its claim, not yet settled: released on a stop
        self._confirming: set[str] = set()  # videos whose page is loading to confirm an unavailable answer
        self._set_back: set[str] = set()  # of those, the ones a block was judged for meanwhile
        # Loops with nothing to do, each waiting to hear why it should look again (:meth:`_idle`).
        self._idle_loops: collections.deque[asyncio.Future[str]] = collections.deque()
        self._busy = 0  # loops claiming or observing: each holds one of --limit's observations until settled

    def _publish(self, *, force: bool = False) -> None:
        if not force and self.wall() - self._published_at < PUBLISH_EVERY_S:
            return
        self._published_at = self.wall()
        self.counters.blocks = self.monitor.total
        if self.progress is not None:
            self.progress.update(self.counters)

    async def schedule(self) -> None:
        """Add the targets of videos found since the last refresh, and give back the claims of trackers
        found dead since (kill -9 after this run started), rather than wait out their lease."""
        started = self.wall()
        self._scheduled_at = started
        await self._db(reclaim_dead_targets, self.store)
        scheduled = await self._db(
            schedule_targets,
            self.store,
            self.options.ages_s,
            now=self.clock(),
            late_fraction=self.options.late_fraction,
        )
        self.counters.scheduled += scheduled  # not `+= await`: that reads the count before it waits
        self._reschedule_every_s = max(RESCHEDULE_EVERY_S, RESCHEDULE_COST_MULTIPLE * (self.wall() - started))

    def _finished(self) -> bool:
        """Whether the run should stop now (sets the reason once)."""
        if self.done.is_set():
            return True
        limit = self.options.limit
        if limit is not None and self.counters.observations >= limit:
            self.stop_reason = "limit_reached"
        elif self.deadline is not None and self.clock() >= self.deadline:
            self.stop_reason = "until_reached"
        else:
            return False
        self.done.set()
        self._wake(CLAIM, every=True)  # to find the run over
        return True

    async def loop(self, reader: Reader, worker: str) -> None:
        """One of a worker's ``in_flight`` loops, a worker of its own: claim a due video, observe it,
        record it. The schedule is refreshed here, so videos a crawl adds during a backlog get their
        early ages."""
        while not self._finished():
            self._publish()
            if self._limit_held():  # the loops holding the rest of it go on (claim again) until it is reached
                return
            # Claiming or observing: a virtual clock must not move under it, and the loop holds one of
            # --limit's observations from before its claim's await, so no other loop claims past it.
            self._busy += 1
            try:
                if self.wall() - self._scheduled_at >= self._reschedule_every_s:
                    await self.schedule()
                claimed = await self._db(self._claim, worker, now=self.clock())
                if claimed:  # more may be due: one more loop looks, and if it finds some, one more
                    self._wake(CLAIM)
                for due in claimed:
                    await self._observe(reader, due, worker)
                    del self._in_hand[worker]  # only once settled: a stop mid-observation leaves it for close()
            finally:
                self._busy -= 1
                if not self._busy:
                    self._wake(SETTLED)
            if not claimed:
                # Without --follow the run ends once nothing is due, no loop is mid-read (its failure
                # would come back as a retry) and no retry waits out its backoff.
                if not self.options.follow and not self._busy and await self._db(next_retry_at, self.store) is None:
                    self.done.set()
                    self._wake(CLAIM, every=True)
                    return
                await self._idle()

    def _claim(self, worker: str, *, now: float) -> list[DueVideo]:
        """A due video for ``worker`` (on the database thread), in hand from the claim's own call: a loop
        cancelled while the claim commits (Ctrl-C, another loop's outage) still leaves it for close()."""
        claimed = claim_due(
            self.store,
            1,
            now=now,
            worker=worker,
            lease_s=self.options.lease_s,
            late_fraction=self.options.late_fraction,
        )
        for due in claimed:
            self._in_hand[worker] = due
        return claimed

    def _limit_held(self) -> bool:
        """Whether every observation --limit still allows is held by a loop claiming or observing: this
        loop is not needed. A holder whose read fails claims again, so the run still makes --limit."""
        limit = self.options.limit
        return limit is not None and self.counters.observations + self._busy >= limit

    async def _idle(self) -> None:
        """Nothing due: sleep until the next target falls due on the site's clock (a while at most);
        without --follow, until the next retry's backoff ends (no target falls due in such a run).

        While other loops are still claiming or observing, wait for them instead: a virtual clock must
        not jump past the moment their answers describe, and what they settle may change what is due.
        A waiting loop claims again when told there may be work (another loop's claim found some, a read
        gave its video back) or after a while; when the last busy loop settles, one waiting loop decides.
        Other loops' claims that found nothing, as this one's did, wake none.
        """
        while True:
            if self._busy:
                heard = await self._hear()
                if heard != SETTLED:
                    return
            due_at = await self._db(next_due_at if self.options.follow else next_retry_at, self.store)
            now = self.clock()
            self.counters.next_due_in_s = None if due_at is None else max(0.0, due_at - now)
            self._publish()
            if not self._busy:  # checked right before the jump, with no await in between
                break
        if self.deadline is not None:
            due_at = self.deadline if due_at is None else min(due_at, self.deadline)
        if due_at is None:  # nothing scheduled: a crawl may add videos
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), MAX_IDLE_S)
        else:
            await sleep_until(self.clock, due_at, wake=self.done, at_most_s=MAX_IDLE_S)

    async def _hear(self) -> str:
        """Wait to be woken (:meth:`_wake`): why, or :data:`CLAIM` after a while (on a real clock, work
        falls due meanwhile; a long read holds the others)."""
        if self.done.is_set():  # the run is over: a loop coming back from an empty claim must not wait
            return CLAIM
        heard = asyncio.get_running_loop().create_future()
        self._idle_loops.append(heard)
        try:
            return await asyncio.wait_for(heard, MAX_IDLE_S)
        except TimeoutError:
            return CLAIM
        finally:
            with contextlib.suppress(ValueError):
                self._idle_loops.remove(heard)

    def _wake(self, why: str, *, every: bool = False) -> None:
        """Wake one waiting loop (all with ``every``), telling it ``why``."""
        while self._idle_loops:
            heard = self._idle_loops.popleft()
            if not heard.done():
                heard.set_result(why)
                if not every:
                    return

    async def _observe(self, reader: Reader, due: DueVideo, worker: str) -> None:
        """Observe ``due`` while its claim is renewed: a read under blocks retries for minutes, longer
        than one lease, and a lapsed claim would be read (and written) by another worker too."""
        renewing = asyncio.create_task(self._keep_claim(due, worker))
        try:
            await self._observe_claimed(reader, due, worker)
        finally:
            renewing.cancel()

    async def _keep_claim(self, due: DueVideo, worker: str) -> None:
        lease_s = self.options.lease_s

        def renew() -> bool:
            return renew_claim(self.store, due, worker=worker, lease_s=lease_s)

        await self._db.keep_renewed(renew, lease_s=lease_s, what=f"the claim on {due.video_id}")

    async def _observe_claimed(self, reader: Reader, due: DueVideo, worker: str) -> None:
        options = self.options
        try:
            read = await self._read(reader, due, worker)
        except ItemUnavailable as exc:
            settled = await self._db(
                record_gone, self.store, due, worker=worker, kind=exc.kind, message=exc.message, now=self.clock()
            )
            self.counters.outcomes["gone"] += settled
            return
        except PersistentlyBlocked:
            raise
        except CorpusError as exc:  # blocked or malformed past the retries: a later try, then failed
            if exc.kind in SITE_WIDE_KINDS:  # no answer, or none Chromium loads: maybe an outage, which stops the run
                self.monitor.record_unreachable(exc)  # raising, the claim stays in hand: close() gives it back
            retried = await self._db(
                record_failure,
                self.store,
                due,
                worker=worker,
                kind=exc.kind,
                message=exc.message,
                max_attempts=options.max_attempts,
                now=self.clock(),
                retry_after_s=options.retry_after,
            )
            self.counters.errors[exc.kind] += 1
            if retried:
                self.counters.outcomes["failed"] += retried.get("failed", 0)
            return
        if read is None:
            return
        site_time = read.value.site_time
        outcomes = await self._db(
            record_observation,
            self.store,
            due,
            read.value.item,
            captured_at=site_time if site_time is not None else self.clock(),
            clock="site" if site_time is not None else clock_kind(self.clock),
            worker=worker,
            late_fraction=options.late_fraction,
        )
        if not outcomes:  # the claim lapsed and went to another worker, whose read counts
            self.counters.errors["claim_lost"] += 1
            return
        self.counters.observations += 1
        self.counters.methods[read.method] += 1
        self.counters.outcomes.update(outcomes)

    async def _read(self, reader: Reader, due: DueVideo, worker: str) -> ItemRead | None:
        """The item with its counts; None when the answer was taken for a block and the claim given back.

        An unavailable answer (10204 is also the site's answer to a region or IP block) is believed only
        when the video page says so too (ItemUnavailable), and not after a run of them
        (:meth:`~.BlockMonitor.unavailable_believed`): then it is a block, and the targets stay pending."""
        try:
            read = await reader.read(due.video_id)
        except ItemUnavailable:
            try:
                believed = self.monitor.unavailable_believed(due.video_id)  # persistent blocking raises
            finally:
                if doubted := self.monitor.take_doubted():  # the run's first answers were the block's too
                    self._set_back.update(self._confirming.intersection(doubted))  # not gone yet: not restored
                    restored = await self._db(restore_gone, self.store, doubted)
                    # Not `-= await`: the count read before the wait lost the gone that another loop
                    # counted meanwhile (a blocked run's summary said gone -3).
                    self.counters.outcomes["gone"] -= restored
                    if restored:
                        self._wake(CLAIM, every=True)  # their videos are due again
            if not believed:  # a block: the claim goes back (on a raise, close() gives it back)
                await self._given_back(due, worker)
                return None
            self._confirming.add(due.video_id)
            try:
                read = await reader.confirm(due.video_id)  # an ItemUnavailable from the page: confirmed
            except ItemUnavailable:
                if due.video_id in self._set_back:  # a block was judged while the page loaded
                    await self._given_back(due, worker)
                    return None
                raise
            finally:
                self._confirming.discard(due.video_id)
                self._set_back.discard(due.video_id)
        self.monitor.record_success()
        stats = read.value.item.stats
        if stats is None or stats.play_count is None:
            # A degraded answer: an export places no snapshot without plays at an age, so stored, it would
            # settle the targets as observed and lose the ages.
            raise ContractError(f"item {due.video_id} answered without a play count", kind="no_stats")
        return read

    async def _given_back(self, due: DueVideo, worker: str) -> None:
        """An unavailable answer taken for a block's: the claim goes back untouched, the video due again."""
        self.counters.errors["unavailable_run"] += 1
        await self._db(release_targets, self.store, [due], worker=worker)
        self._wake(CLAIM, every=True)  # its video is due again

    async def run(self, readers: Mapping[str, Reader]) -> str:
        """Run every worker's loops until done; returns the stop reason (a block or an outage raises)."""
        try:
            await gather_or_cancel(
                *(
                    self.loop(reader, worker_name(self.store, f"{name}.{index}"))
                    for name, reader in readers.items()
                    for index in range(self.options.in_flight)
                )
            )
        finally:
            self.done.set()
        return self.stop_reason

    def close(self) -> None:
        """Let the writes already queued land, then give back what is still claimed but unsettled (a
        stop mid-observation): a target whose observation landed is settled and stays so. The display's
        last update is the run's final count, the one its summary reports."""
        self._db.shutdown()
        for worker, due in self._in_hand.items():
            release_targets(self.store, [due], worker=worker)
        self._in_hand.clear()
        self.counters.next_due_in_s = None  # the run is over: nothing is awaited any more
        self._publish(force=True)


__all__ = ["Observe", "Reader", "Tracking"]
