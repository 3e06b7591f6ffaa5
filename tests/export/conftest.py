"""A small synthetic corpus in a real SQLite store: authors, videos in every status, several stats
snapshots per video, probed media files (tiny dummy files) and hashtags; and a store on SQLite and on
Postgres (``db_store``)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from tiktok_corpus.config import Settings
from tiktok_corpus.store.db import open_store, upgrade
from tiktok_corpus.store.models import Author, Hashtag, MediaFile, StatsSnapshot, Video, VideoHashtag, utcnow

T0 = datetime(2024, 5, 1, tzinfo=UTC)
EXPORTABLE = 12  # videos that pass every filter and have a snapshot


def _video(video_id: str, author_id: str, **overrides) -> Video:
    values = dict(
        id=video_id,
        author_id=author_id,
        desc=f"video {video_id} #fun",
        item_kind="video",
        create_time=int((T0 - timedelta(days=int(video_id) % 7 + 1)).timestamp()),
        download_status="downloaded",
        probe_status="valid",
        depth=int(video_id) % 3,
        source="foryou" if int(video_id) % 4 == 0 else "related",
        first_seen_at=T0 + timedelta(minutes=int(video_id) % 100),
    )
    values.update(overrides)
    return Video(**values)


def _media(data_dir, video_id: str, frame_count: int = 150) -> MediaFile:
    relative = f"media/{video_id}.mp4"
    path = data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    content = f"not really a video {video_id}".encode()
    path.write_bytes(content)
    return MediaFile(
        video_id=video_id,
        path=relative,
        size_bytes=path.stat().st_size,
        sha256=hashlib.sha256(content).hexdigest(),
        probed_sha256=hashlib.sha256(content).hexdigest(),
        duration_s=frame_count / 30.0,
        avg_fps=30.0,
        frame_count=frame_count,
        width=576,
        height=1024,
        has_audio=True,
        probed_at=utcnow(),  # after the file was written, as `corpus validate` leaves it
        downloaded_at=T0 + timedelta(hours=1),
    )


def populate_corpus(store, data_dir) -> list[str]:
    """Insert the synthetic corpus; returns the ids of the exportable videos."""
    exportable = [str(1000 + i) for i in range(EXPORTABLE)]
    with store.transaction() as session:
        session.add_all([Author(id=f"a{i}", unique_id=f"user{i}", follower_count=100 * (i + 1)) for i in range(4)])
        session.flush()
        tags = [Hashtag(name=name) for name in ("fun", "dance", "cat")]
        session.add_all(tags)
        session.flush()
        for i, video_id in enumerate(exportable):
            session.add(_video(video_id, f"a{i % 4}"))
            session.flush()
            session.add(_media(data_dir, video_id))
            # An older snapshot with huge counts, then the latest one: the export must use the latest.
            session.add(
                StatsSnapshot(
                    video_id=video_id,
                    captured_at=T0 - timedelta(days=1),
                    play_count=10**9,
                    like_count=10**9,
                    comment_count=10**9,
                    share_count=10**9,
                )
            )
            session.add(
                StatsSnapshot(
                    video_id=video_id,
                    captured_at=T0,
                    play_count=1000 * (i + 1),
                    like_count=100 * (i + 1),
                    comment_count=10 * (i % 5),
                    share_count=i % 3,
                    collect_count=i,
                )
            )
            for tag in tags[: i % 4]:
                session.add(VideoHashtag(video_id=video_id, hashtag_id=tag.id))
        excluded = [
            _video("2001", "a0", probe_status="too_short"),
            _video("2002", "a0", item_kind="photo", download_status="skipped"),
            _video("2003", "a1", download_status="failed"),
            _video("2004", "a1"),  # valid but too few frames
            _video("2005", "a2"),  # valid but no stats snapshot
        ]
        session.add_all(excluded)
        session.flush()
        session.add_all([_media(data_dir, "2001", 40), _media(data_dir, "2004", 50), _media(data_dir, "2005")])
        for video_id in ("2001", "2002", "2003", "2004"):
            session.add(
                StatsSnapshot(
                    video_id=video_id, captured_at=T0, play_count=1, like_count=1, comment_count=1, share_count=1
                )
            )
    return exportable


@pytest.fixture
def corpus(store, settings) -> list[str]:
    return populate_corpus(store, settings.data_dir)


@pytest.fixture
def db_store(any_db_url, tmp_path):
    """``(store, settings)`` of an empty, migrated database, once on SQLite and once on Postgres."""
    settings = Settings(data_dir=tmp_path / "data", db_url=any_db_url)
    store = open_store(settings, check_schema=False)
    upgrade(store.engine)
    yield store, settings
    store.dispose()
