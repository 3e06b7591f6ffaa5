"""One thread for a run's database work, so an event loop never waits on a transaction.

The crawl and the download both keep their pages and transfers on asyncio and send every claim and
write here, in order: SQLite's write lock is then never contended inside the process, and a
transaction in progress never holds up the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class DatabaseThread:
    """Runs callables one after another on a single worker thread; ``await db(fn, *args)``."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-db")

    async def __call__(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(work, *args, **kwargs))

    def shutdown(self) -> None:
        """Wait for the work already queued (it commits or rolls back), then stop the thread."""
        self._executor.shutdown(wait=True)
