"""An export reads the database as of one moment: what another connection commits between its reads (a
validate, a tracker, a crawl) is in none of them, on SQLite and on Postgres."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import update

import tiktok_corpus.export.dataset as dataset
from tiktok_corpus.export import ExportOptions, run_export
from tiktok_corpus.store.models import AuthorSnapshot, Video

from .conftest import T0, populate_corpus
from .test_at_age import DAY, _snap, populate_snapshot_table

TAGGED = "1003"  # an exportable video with three hashtags (conftest)
TOO_YOUNG = "3006"  # last seen at 5d: left out of a 7d export (test_at_age)


def _concurrent_writes(store) -> None:
    """What other commands commit meanwhile: validate finds a file corrupt, a tracker sights a video at 7d,
    a crawl snapshots every author (before any posting: their counts at each row's posting and as of T0)."""
    with store.transaction() as session:
        session.execute(update(Video).where(Video.id == TAGGED).values(probe_status="corrupt"))
        session.add(_snap(TOO_YOUNG, 7 * DAY, 777))
        session.add_all(
            AuthorSnapshot(author_id=f"a{i}", captured_at=T0 - timedelta(days=30), follower_count=777) for i in range(4)
        )


def _export(settings, options: ExportOptions) -> tuple[pd.DataFrame, dict]:
    path: Path = run_export(settings, options)
    return pd.read_parquet(path / "videos.parquet"), json.loads((path / "manifest.json").read_text())["selection"]


@pytest.mark.parametrize(
    "options",
    [ExportOptions(), ExportOptions(as_of=T0), ExportOptions(at_age_s=7 * DAY)],
    ids=["latest", "as-of", "at-age"],
)
def test_a_write_committed_between_the_exports_reads_is_in_none_of_them(db_store, monkeypatch, options):
    """The rows are read first; the hashtags, stats snapshots and author snapshots after. A write landing
    in between once gave a video kept by the first read but with no hashtags, or counts from the later
    sightings: here the export equals the one made before the write, and the next one sees it."""
    store, settings = db_store
    populate_corpus(store, settings.data_dir)
    populate_snapshot_table(store, settings.data_dir)
    before = _export(settings, options)
    read_rows = dataset.exportable_rows

    def rows_then_a_concurrent_write(reader, **kwargs):
        rows = read_rows(reader, **kwargs)
        _concurrent_writes(store)  # another connection's commit, after the export's first read
        return rows

    monkeypatch.setattr(dataset, "exportable_rows", rows_then_a_concurrent_write)
    during = _export(settings, options)
    monkeypatch.undo()
    after = _export(settings, options)

    pd.testing.assert_frame_equal(during[0], before[0])
    assert during[1] == before[1]
    assert not after[0].equals(before[0])  # the writes change what an export takes, once committed
