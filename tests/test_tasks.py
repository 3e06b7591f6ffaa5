"""Loops run together (``tiktok_corpus._tasks``): the first failure ends them all, nothing left to print."""

from __future__ import annotations

import asyncio

import pytest

from tiktok_corpus._tasks import gather_or_cancel


class DiskFull(Exception):
    pass


def test_the_first_failure_cancels_the_others_and_their_clean_up_errors_are_not_printed_at_shutdown():
    """The crawl's expansion loops on a full disk: one fails, another's clean-up (giving its claim back)
    hits the same disk on its way out. Only the first error reaches the caller."""
    unhandled: list[dict] = []
    cleaned = asyncio.Event()

    async def fails() -> None:
        await asyncio.sleep(0)
        raise DiskFull("first")

    async def cleans_up_on_the_same_disk() -> None:
        try:
            await asyncio.Event().wait()  # a loop still at work
        finally:
            cleaned.set()
            raise DiskFull("its release, on the way out")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: unhandled.append(context))
        with pytest.raises(DiskFull, match="first"):
            await gather_or_cancel(fails(), cleans_up_on_the_same_disk())
        assert cleaned.is_set()  # stopped before the caller goes on, not at shutdown

    asyncio.run(main())

    assert unhandled == []


def test_the_results_come_in_order_when_all_succeed():
    async def twice(n: int) -> int:
        await asyncio.sleep(0)
        return 2 * n

    assert asyncio.run(gather_or_cancel(twice(1), twice(2), twice(3))) == [2, 4, 6]
