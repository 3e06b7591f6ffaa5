"""Expansions written behind the loops: batches by size and by delay, in order, failures raised where the
crawl can stop, and the collector settings a crawl runs under undone afterwards."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Sequence

import pytest

from tiktok_corpus._collector import BULK_YOUNG_THRESHOLD, bulk_parsing_collector
from tiktok_corpus.crawl.writes import ExpansionWriter
from tiktok_corpus.store.crawl import Expansion, Sighting
from tiktok_corpus.store.thread import DatabaseThread
from tiktok_corpus.tiktok.contract import ItemList


def expansion(parent: int) -> Expansion:
    return Expansion(str(parent), ItemList(()), "fetch")


class Recorder:
    """A write that records its batches (on the database thread) and can be held or made to fail."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_on: str | None = None

    def __call__(self, expansions: Sequence[Expansion]) -> list[Sighting]:
        self.started.set()
        self.release.wait(10)
        self.threads.add(threading.current_thread().name)
        parents = [e.parent_id for e in expansions]
        if self.fail_on in parents:
            raise RuntimeError(f"disk full writing {self.fail_on}")
        self.batches.append(parents)
        return [Sighting((e.parent_id,), (), len(self.batches)) for e in expansions]


class Landed(list[str]):
    """The parents the writer reported as written, in order, and an event set by the first report."""

    def __init__(self) -> None:
        super().__init__()
        self.first = asyncio.Event()

    def __call__(self, expansion: Expansion, sighting: Sighting) -> None:
        self.append(expansion.parent_id)
        self.first.set()


def run_writer(scenario, *, batch: int = 3, max_delay_s: float = 30.0) -> tuple[Recorder, list[str]]:
    recorder = Recorder()
    db = DatabaseThread("test")
    landed: Landed | None = None

    async def main() -> None:
        nonlocal landed
        landed = Landed()  # its event belongs to this loop
        writer = ExpansionWriter(db, recorder, landed, batch=batch, max_delay_s=max_delay_s)
        await scenario(writer, recorder, landed)

    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    finally:
        db.shutdown()
    assert landed is not None
    return recorder, list(landed)


def test_full_batches_are_written_in_order_and_flush_writes_the_rest():
    async def scenario(writer, recorder, landed):
        for parent in range(7):
            writer.add(expansion(parent))
        assert writer.busy
        await writer.flush()
        assert not writer.busy

    recorder, landed = run_writer(scenario, batch=3)
    assert recorder.batches == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert landed == [str(p) for p in range(7)] and recorder.threads == {"test-db_0"}


def test_a_lone_expansion_is_written_after_the_delay_without_a_flush():
    async def scenario(writer, recorder, landed):
        writer.add(expansion(1))
        assert recorder.batches == [] and writer.busy  # waits for company, at most max_delay_s
        await landed.first.wait()  # nothing but the timer starts the write
        assert recorder.batches == [["1"]]

    recorder, _ = run_writer(scenario, batch=100, max_delay_s=0.05)
    assert recorder.batches == [["1"]]


def test_flush_waits_for_a_write_already_running():
    async def scenario(writer, recorder, landed):
        recorder.release.clear()  # the database thread is slow
        for parent in range(3):
            writer.add(expansion(parent))  # a full batch: its write starts now
        flushing = asyncio.ensure_future(writer.flush())
        await asyncio.to_thread(recorder.started.wait, 10)  # the write is on the database thread, held
        assert not flushing.done() and landed == []
        recorder.release.set()
        await flushing
        assert landed == ["0", "1", "2"]

    run_writer(scenario, batch=3)


def test_a_failed_write_is_raised_by_the_next_add_and_by_flush():
    async def scenario(writer, recorder, landed):
        recorder.fail_on = "1"
        for parent in range(3):
            writer.add(expansion(parent))
        with pytest.raises(RuntimeError, match="disk full writing 1"):
            await writer.flush()
        with pytest.raises(RuntimeError, match="disk full"):
            writer.add(expansion(9))
        assert landed == []  # nothing of the failed batch is reported as written

    run_writer(scenario, batch=3)


def test_the_collector_is_tuned_inside_the_block_and_restored_after():
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with bulk_parsing_collector():
        assert gc.get_threshold() == (BULK_YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0  # what existed is out of every later walk
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
