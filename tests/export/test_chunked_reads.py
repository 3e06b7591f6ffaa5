"""The export's reads stream in bounded chunks and still type every column as one ``pd.read_sql`` of the
whole result does, wherever the NULLs fall among the chunks, on SQLite and Postgres."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import false, select
from sqlalchemy.engine import CursorResult

from tiktok_corpus.store import exports, frames
from tiktok_corpus.store.models import Author, AuthorSnapshot, MediaFile, StatsSnapshot, Video

from .conftest import T0, _media, _video, populate_corpus

CHUNK_SIZES = (1, 2, 3, 1000)


def _assert_read_alike(chunked: pd.DataFrame, whole: pd.DataFrame) -> None:
    """Same columns, dtypes and values; missing values in object columns stay None, as read."""
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
    assert dict(chunked.dtypes) == dict(whole.dtypes)
    for name in [name for name in whole if whole[name].dtype == "object"]:
        assert [value is None for value in chunked[name]] == [value is None for value in whole[name]], name
    for name in whole:  # strings in one piece, as read at once: a table written from pieces has other bytes
        if isinstance(whole[name].array, pd.arrays.ArrowStringArray):
            assert chunked[name].array.__arrow_array__().num_chunks == 1, name


def _one_read(store, query) -> pd.DataFrame:
    with store.engine.connect() as conn:
        return pd.read_sql(query, conn)


def test_a_chunked_read_types_every_kind_as_one_read(db_store, monkeypatch):
    """Columns of each kind NULL in the first rows only, in none and in all, read 1, 2, 3 rows at a time
    (a first chunk all NULL, chunks mixed) or at once; and the same query with no rows."""
    store, settings = db_store
    with store.transaction() as session:
        session.add_all([Author(id="a0", verified=True), Author(id="a1", verified=False)])
        session.flush()
        session.add_all([_video(str(1000 + i), f"a{i % 2}") for i in range(5)])
        session.flush()
        for i in range(5):
            media = _media(settings.data_dir, str(1000 + i))
            if i < 2:  # the first chunk of two: all NULL
                media.frame_count = media.avg_fps = media.has_audio = media.video_codec = media.probed_at = None
            else:
                media.has_audio = i % 2 == 0
                media.video_codec = "h264"
            session.add(media)
    query = (
        select(
            MediaFile.video_id,
            MediaFile.width,  # int, no NULL
            MediaFile.frame_count,  # int, NULL first
            MediaFile.bitrate,  # int, all NULL
            MediaFile.duration_s,  # float, no NULL
            MediaFile.avg_fps,  # float, NULL first
            MediaFile.r_fps,  # float, all NULL
            Author.verified,  # bool, no NULL
            MediaFile.has_audio,  # bool, NULL first
            MediaFile.path,  # str, no NULL
            MediaFile.video_codec,  # str, NULL first
            MediaFile.audio_codec,  # str, all NULL
            MediaFile.downloaded_at,  # datetime, no NULL
            MediaFile.probed_at,  # datetime, NULL first
            Video.expand_not_before,  # datetime, all NULL
        )
        .join(Video, Video.id == MediaFile.video_id)
        .join(Author, Author.id == Video.author_id)
        .order_by(MediaFile.video_id)
    )
    whole, nothing = _one_read(store, query), _one_read(store, query.where(false()))
    assert whole["frame_count"].dtype == "float64" and whole["has_audio"].dtype == object  # as the table says
    for rows in CHUNK_SIZES:
        monkeypatch.setattr(frames, "CHUNK_ROWS", rows)
        _assert_read_alike(frames.read_frame(store.engine, query), whole)
        _assert_read_alike(frames.read_frame(store.engine, query.where(false())), nothing)


def _nulls_first_corpus(store, settings) -> None:
    """The export fixture's corpus, plus exportable videos that sort first with no author and no stats
    snapshot, and author snapshots whose first ones have no badge and no following count."""
    populate_corpus(store, settings.data_dir)
    with store.transaction() as session:
        session.add_all([_video(video_id, None, music_title=None) for video_id in ("0990", "0991")])
        session.flush()
        session.add_all([_media(settings.data_dir, video_id) for video_id in ("0990", "0991")])
        for i, author in enumerate(("a0", "a0", "a1", "a2")):
            session.add(
                AuthorSnapshot(
                    author_id=author,
                    captured_at=T0 + timedelta(hours=i),
                    follower_count=10 * i,
                    following_count=None if i < 2 else i,
                    verified=None if i < 2 else bool(i % 2),
                )
            )
        session.add(StatsSnapshot(video_id="1000", captured_at=T0 - timedelta(days=2), play_count=1))


@pytest.mark.parametrize("rows", CHUNK_SIZES)
def test_the_export_reads_type_as_one_read(db_store, monkeypatch, rows):
    """Each of the four export reads, chunked, equals one ``pd.read_sql`` of its query."""
    store, settings = db_store
    _nulls_first_corpus(store, settings)
    compared = []

    def checked_read(reader, query):
        chunked = read_frame(reader, query)
        _assert_read_alike(chunked, _one_read(store, query))
        compared.append(chunked)
        return chunked

    read_frame = frames.read_frame
    monkeypatch.setattr(frames, "CHUNK_ROWS", rows)
    monkeypatch.setattr(exports, "read_frame", checked_read)
    with store.consistent_read() as reader:
        for min_frames in (100, 10**6):  # the corpus, and no exportable video at all
            exports.exportable_rows(reader, min_frames=min_frames, as_of=None)
            exports.exportable_rows(reader, min_frames=min_frames, as_of=T0 - timedelta(hours=12))
            exports.exportable_snapshots(reader, min_frames=min_frames)
            exports.exportable_author_snapshots(reader, min_frames=min_frames)
            exports.exportable_hashtags(reader, min_frames=min_frames)
    assert [len(frame) > 0 for frame in compared] == [True] * 5 + [False] * 5
    latest = compared[0].set_index("video_id")
    assert latest.loc["0990", ["author_id", "play_count"]].isna().all()  # NULL in the first chunk


def test_the_export_reads_fetch_a_chunk_at_a_time(db_store, monkeypatch):
    """No read fetches every row at once (nor more than a chunk); Postgres reads through a server-side
    cursor, so the driver does not hold the whole result either."""
    store, settings = db_store
    _nulls_first_corpus(store, settings)
    fetched: list[int] = []
    cursors: set[str] = set()
    fetchmany = CursorResult.fetchmany

    def counted_fetchmany(self, size=None):
        chunk = fetchmany(self, size)
        fetched.append(len(chunk))
        if chunk:  # a result read to its end has closed its cursor
            cursors.add(type(self.cursor).__name__)
        return chunk

    def refused_fetchall(self):
        raise AssertionError("an export read fetched every row at once")

    monkeypatch.setattr(CursorResult, "fetchmany", counted_fetchmany)
    monkeypatch.setattr(CursorResult, "fetchall", refused_fetchall)
    monkeypatch.setattr(frames, "CHUNK_ROWS", 2)
    with store.consistent_read() as reader:  # the reads of one export share one transaction
        exports.exportable_rows(reader, min_frames=100, as_of=None)
        exports.exportable_snapshots(reader, min_frames=100)
        exports.exportable_author_snapshots(reader, min_frames=100)
        exports.exportable_hashtags(reader, min_frames=100)
    assert fetched and max(fetched) == 2
    if store.engine.dialect.name == "postgresql":
        assert cursors == {"ServerCursor"}
