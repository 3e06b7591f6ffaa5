"""One thread for a run's database work, so an event loop never waits on a transaction.

The crawl and the download both keep their pages and transfers on asyncio and send every claim and
write here, in order: SQLite's write lock is then never contended inside the process, and a
transaction in progress never holds up the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

T = TypeVar("T")

log = logging.getLogger(__name__)

RENEW_EVERY_LEASE = 1 / 3  # a claim's lease is renewed three times a lease while its work runs


class DatabaseThread:
    """Runs callables one after another on a single worker thread; ``await db(fn, *args)``."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-db")

    async def __call__(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(work, *args, **kwargs))

    async def keep_renewed(self, renew: Callable[[], bool | None], *, lease_s: float, what: str) -> None:
        """Run ``renew`` here three times a lease until cancelled, or until it returns False (the claim
        went to another worker, whose work counts). A database busy, gone or out of connections for a
        moment (a driver error, the pool's timeout) is logged and tried again at the next tick, before
        the lease runs out; any other error is a bug and ends the renewal with it: the caller raises it."""
        while True:
            await asyncio.sleep(lease_s * RENEW_EVERY_LEASE)
            try:
                if await self(renew) is False:
                    return
            except (DBAPIError, PoolTimeout) as exc:
                log.warning("renewing %s failed (%s); trying again", what, exc)

    def shutdown(self) -> None:
        """Wait for the work already queued (it commits or rolls back), then stop the thread."""
        self._executor.shutdown(wait=True)
