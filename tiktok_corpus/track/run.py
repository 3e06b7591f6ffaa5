"""One process's tracking run: schedule the target ages, open a browser only when something is due, and
run the loops of :mod:`.loops` on its worker sessions until the work is done (or blocked, or the site
does not answer)."""

from __future__ import annotations

import random
import time

from playwright.async_api import Browser

from .._signals import run_stoppable
from .._tasks import gather_or_cancel
from ..clock import Clock
from ..config import Settings
from ..durations import format_duration
from ..errors import BlockedError, PersistentlyBlocked, SiteUnreachable
from ..store.db import Store, open_store
from ..store.tracking import (
    newest_trackable,
    next_due_at,
    next_retry_at,
    tracking_counts,
)
from ..tiktok.blocks import BlockMonitor, BlockPolicy, Pacer
from ..tiktok.browser import BrowserSource, WorkerSession, default_user_agent, stage_browser
from ..tiktok.item_reads import session_item_reads
from .loops import Reader, Tracking
from .options import TrackOptions, TrackProgress, TrackSummary


async def track_async(
    store: Store,
    settings: Settings,
    options: TrackOptions,
    *,
    clock: Clock = time.time,
    policy: BlockPolicy | None = None,
    progress: TrackProgress | None = None,
    rng: random.Random | None = None,
    browser: BrowserSource | None = None,
) -> TrackSummary:
    """Run (or resume) tracking in the running event loop with a browser; returns its summary (a blocked
    run ends with ``status == "blocked"``, one that got no answers with ``"unreachable"``).

    ``browser``: what the workers run on (:func:`~tiktok_corpus.tiktok.browser.stage_browser`), opened
    only when something is to be observed; a :class:`Browser` passed in is left open. Without one,
    Chromium is launched as the settings say. The pacing jitter draws from ``rng``, else from
    ``options.seed`` (None: the system's entropy, so processes sharing a database do not pace in step)."""
    options.validate()
    policy = policy or BlockPolicy()
    monitor = BlockMonitor(policy)
    pacer = Pacer(options.delay_s, options.max_rate or None, rng or random.Random(options.seed))
    tracking = Tracking(store, options, clock=clock, progress=progress, monitor=monitor)
    started, status, message = time.monotonic(), "done", None
    await tracking.schedule()
    due_at = next_due_at(store)
    try:
        # Else nothing to observe: no browser. A retry whose backoff has not ended is waited for, as a run
        # with its browser open does: left to the next run, an age of 1h could be missed.
        if options.follow or (due_at is not None and due_at <= clock()) or next_retry_at(store) is not None:
            async with stage_browser(browser, settings, headful=options.headful) as opened:
                status, message = await _read_due(tracking, opened, settings, policy=policy, pacer=pacer)
    finally:
        tracking.close()  # also when the browser could not start: what is claimed goes back
    elapsed = time.monotonic() - started
    counters, queue = tracking.counters, tracking_counts(store, now=clock())
    if status == "done" and not (counters.scheduled or queue["due_now"] or queue["due_later"] or queue["claimed"]):
        message = _nothing_to_track(store, options, now=clock())
    return TrackSummary(
        status=status,
        scheduled=counters.scheduled,
        observations=counters.observations,
        outcomes=dict(counters.outcomes),
        errors=dict(counters.errors),
        methods=dict(counters.methods),
        blocks=monitor.total,
        elapsed_s=round(elapsed, 3),
        observations_per_s=round(counters.observations / elapsed, 3) if elapsed else 0.0,
        queue=queue,
        message=message,
    )


def _nothing_to_track(store: Store, options: TrackOptions, *, now: float) -> str:
    """Why a run found nothing to observe, now or later: a corpus without posting times, or one whose
    videos are all older than the last age asked for (a corpus crawled long ago, a replica without a clock)."""
    count, newest = newest_trackable(store)
    if not count or newest is None:
        return "nothing to track: no video of the corpus has a posting time to count its ages from (crawl first)"
    age = format_duration(max(0, round((now - newest) / 3600)) * 3600)  # to the hour
    last_age = max(options.ages_s)
    return (
        f"nothing to track: the newest of the corpus's {count} videos was posted {age} ago on the site's clock,"
        f" past the last age asked for ({format_duration(last_age)}); tracking follows "
        "videos crawled soon after their posting (or give --ages up to their age)"
    )


def track(
    settings: Settings,
    options: TrackOptions,
    *,
    clock: Clock = time.time,
    progress: TrackProgress | None = None,
    policy: BlockPolicy | None = None,
) -> TrackSummary:
    """``corpus track``: open the store, track, close; a persistently blocked run raises
    :class:`PersistentlyBlocked` (exit code 3), one that got no answers :class:`SiteUnreachable` (exit
    code 4), once its claims are given back."""
    options.validate()
    with open_store(settings, create=False) as store:
        summary = run_stoppable(track_async(store, settings, options, clock=clock, policy=policy, progress=progress))
    if summary.status == "blocked":
        raise PersistentlyBlocked(summary.message or "persistently blocked", summary=summary.to_dict())
    if summary.status == "unreachable":
        raise SiteUnreachable(summary.message or "the site did not answer", summary=summary.to_dict())
    return summary


async def _read_due(
    tracking: Tracking, browser: Browser, settings: Settings, *, policy: BlockPolicy, pacer: Pacer
) -> tuple[str, str | None]:
    """Worker sessions in ``browser`` observe what falls due; how the run ended (status, message)."""
    options = tracking.options
    sessions: list[WorkerSession] = []
    try:
        user_agent = await default_user_agent(browser)
        sessions = [
            WorkerSession(
                browser,
                settings.base_url,
                policy=policy,
                monitor=tracking.monitor,
                pacer=pacer,
                user_agent=user_agent,
                name=f"t{i}",
            )
            for i in range(options.workers)
        ]
        readers = {
            session.name: Reader(
                read=session_item_reads(session, via=options.via, fallback_after=options.fallback_after).get,
                confirm=session_item_reads(session, via="page", fallback_after=options.fallback_after).get,
            )
            for session in sessions
        }
        await gather_or_cancel(*(session.start() for session in sessions))
        return await tracking.run(readers), None
    except PersistentlyBlocked as exc:
        return "blocked", exc.message
    except SiteUnreachable as exc:
        return "unreachable", exc.message
    except BlockedError as exc:
        return "blocked", f"persistently blocked: {exc.message}"
    finally:
        for session in sessions:
            await session.close()


__all__ = ["TrackSummary", "track", "track_async"]
