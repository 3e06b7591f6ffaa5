"""The interruptible waits on worker threads (``tiktok_corpus._waits``)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tiktok_corpus._waits import ordered_map


def test_ordered_map_gives_the_results_in_order_and_raises_the_first_error():
    with ThreadPoolExecutor(3) as pool:
        assert list(ordered_map(pool, pow, [2, 3, 4], [3, 2, 1])) == [8, 9, 4]
        with pytest.raises(ZeroDivisionError):
            list(ordered_map(pool, lambda n: 1 / n, [1, 0, 2]))


def test_ordered_map_stopped_early_cancels_the_tasks_not_started():
    started, release = [], threading.Event()

    def task(number: int) -> int:
        started.append(number)
        if number > 0:  # the first returns at once; the next one holds the only worker until released
            assert release.wait(30), "never released"
        return number

    with ThreadPoolExecutor(1) as pool:
        results = ordered_map(pool, task, range(10))
        assert next(results) == 0
        results.close()  # the consumer stops (an error or Ctrl-C in its loop); task 1 may be running
        release.set()
    assert started in ([0], [0, 1])  # tasks 2 to 9 were cancelled before they started
