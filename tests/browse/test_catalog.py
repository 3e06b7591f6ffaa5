"""The grid's rows: read once, then re-read behind the pages, so no page waits for a re-read (seconds
at 100,000 videos) and a database that goes away leaves the last rows showing."""

from __future__ import annotations

import logging
import threading

import pandas as pd

from tiktok_corpus.browse import catalog as catalog_module
from tiktok_corpus.browse.catalog import PAGE_SIZE, REFRESH_S, Catalog, GridQuery
from tiktok_corpus.store.browse import grid_rows
from tiktok_corpus.store.models import StatsSnapshot, Video, utcnow


def add_video(store, video_id: str, plays: int) -> None:
    with store.transaction() as session:
        session.add(Video(id=video_id, item_kind="video"))
        session.flush()
        session.add(StatsSnapshot(video_id=video_id, captured_at=utcnow(), play_count=plays))


def shown(catalog: Catalog) -> list[str]:
    return list(catalog.page(GridQuery()).rows["video_id"])


def landed(reads: HeldReads) -> None:
    """Wait for the background re-read that ran ``reads`` to finish (it swaps its rows in before)."""
    assert reads.entered.wait(10), "no background re-read started"
    assert reads.thread is not None
    reads.thread.join(10)
    assert not reads.thread.is_alive(), "the background re-read did not finish"


class HeldReads:
    """``grid_rows`` that waits for ``release`` (and fails while ``failing``): a slow or lost database."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.failing = False
        self.started = 0
        self.thread: threading.Thread | None = None
        self.entered = threading.Event()

    def __call__(self, store):
        self.started += 1
        self.thread = threading.current_thread()
        self.entered.set()
        self.release.wait(10)
        if self.failing:
            raise ConnectionError("database went away")
        return grid_rows(store)


def test_pages_show_the_last_read_while_a_re_read_runs_behind_them(store, monkeypatch):
    now = [0.0]
    add_video(store, "1", 10)
    catalog = Catalog(store, clock=lambda: now[0])
    assert shown(catalog) == ["1"]
    add_video(store, "2", 20)
    assert shown(catalog) == ["1"]  # fresh for REFRESH_S: no re-read

    reads = HeldReads()
    monkeypatch.setattr(catalog_module, "grid_rows", reads)
    now[0] = REFRESH_S + 1
    assert shown(catalog) == ["1"] and shown(catalog) == ["1"]  # answered while the re-read is held
    assert reads.entered.wait(10) and reads.started == 1  # one re-read at a time
    reads.release.set()
    landed(reads)
    assert shown(catalog) == ["2", "1"]  # by plays, descending
    assert reads.started == 1  # the re-read's time is the new "fresh"


def test_a_failed_re_read_keeps_the_rows_and_is_tried_again_later(store, monkeypatch, caplog):
    now = [0.0]
    add_video(store, "1", 10)
    catalog = Catalog(store, clock=lambda: now[0])
    assert shown(catalog) == ["1"]
    add_video(store, "2", 20)

    reads = HeldReads()
    reads.failing = True
    reads.release.set()
    monkeypatch.setattr(catalog_module, "grid_rows", reads)
    now[0] = REFRESH_S + 1
    with caplog.at_level(logging.WARNING, logger=catalog_module.__name__):
        assert shown(catalog) == ["1"]
        landed(reads)
    assert "re-reading the grid failed (database went away)" in caplog.text
    assert shown(catalog) == ["1"] and reads.started == 1  # not retried at once

    reads.failing = False
    reads.entered.clear()  # the next re-read's thread is the one to wait for
    now[0] = 2 * REFRESH_S + 2
    shown(catalog)
    landed(reads)
    assert shown(catalog) == ["2", "1"] and reads.started == 2


def test_a_videos_row_is_found_by_its_id(store, monkeypatch):
    """A page of the grid asks for its posters each by its video's row: every id finds its own row,
    wherever it lies in the grid, and an unknown id none (how fast is not a test's to say)."""
    videos = 3 * PAGE_SIZE
    ids = [str(7 * 10**18 + i) for i in reversed(range(videos))]  # not the rows' order of plays
    grid = pd.DataFrame({"video_id": ids, "author": "someone", "play_count": pd.array(range(videos), dtype="Int64")})
    monkeypatch.setattr(catalog_module, "grid_rows", lambda store: grid.copy())
    catalog = Catalog(store)
    assert [catalog.video(v)["play_count"] for v in ids] == list(range(videos))
    assert catalog.video("nope") is None


def test_ids_sort_as_numbers_and_break_ties_so(store):
    """Ids are 1 to 32 digits: sorted as text, ``10`` came before ``9`` (and so did every tie's order)."""
    for video_id in ("10", "9", "100", "11"):
        add_video(store, video_id, 5)
    catalog = Catalog(store)
    assert list(catalog.page(GridQuery(sort="video_id", descending=False)).rows["video_id"]) == ["9", "10", "11", "100"]
    assert list(catalog.page(GridQuery(sort="video_id")).rows["video_id"]) == ["100", "11", "10", "9"]
    assert shown(catalog) == ["9", "10", "11", "100"]  # equal plays: by id
