"""Running a stage's loops together so that the first failure ends them all, quietly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def gather_or_cancel(*aws: Awaitable[Any]) -> list[Any]:
    """``asyncio.gather`` of ``aws``, except that the first failure (or a cancel) cancels the others and
    waits for them before it is raised.

    A plain gather leaves the others running: one that fails later too (its clean-up hitting the same
    full disk) has nobody to take its error, and asyncio prints a traceback for it at shutdown, under
    the one-line error the user was meant to see.
    """
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # their errors follow from the first one
