"""Downloader fixtures: a real little MP4 made by ffmpeg, video rows, and quick retry options.

Pytest runs with ``--import-mode=importlib``, so helpers reach the tests as fixtures, not imports.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from tests.media_files import encode_lavfi
from tiktok_corpus.download import DownloadOptions
from tiktok_corpus.store.models import DownloadAttempt, MediaFile, Video


@pytest.fixture
def quick() -> DownloadOptions:
    """Short waits so retry paths run in milliseconds; yt-dlp off unless a test turns it on."""
    return DownloadOptions(
        backoff_initial_s=0.01,
        backoff_max_s=0.05,
        min_free_bytes=0,
        read_timeout_s=5.0,
        connect_timeout_s=5.0,
        use_ytdlp=False,
    )


@pytest.fixture(scope="session")
def sample_mp4(tmp_path_factory) -> bytes:
    """A real, playable 1-second H.264 MP4 (a few KB)."""
    path = tmp_path_factory.mktemp("media") / "sample.mp4"
    encode_lavfi(path, "testsrc=size=64x64:rate=10", t=1, movflags="+faststart")
    return path.read_bytes()


class Rows:
    """Reads and writes of the rows the downloader works on."""

    def __init__(self, store) -> None:
        self.store = store

    def add(self, video_id: str, urls: list[dict], *, status: str = "pending") -> None:
        """A video row as the crawler leaves it: candidate URLs in preference order, download pending."""
        with self.store.transaction() as session:
            session.add(Video(id=video_id, media_urls=urls, item_kind="video", download_status=status))

    def video(self, video_id: str) -> Video:
        with self.store.sessions() as session:
            return session.get(Video, video_id)

    def media(self, video_id: str) -> MediaFile | None:
        with self.store.sessions() as session:
            return session.get(MediaFile, video_id)

    def attempts(self, video_id: str) -> list[DownloadAttempt]:
        with self.store.sessions() as session:
            return list(
                session.scalars(
                    select(DownloadAttempt).where(DownloadAttempt.video_id == video_id).order_by(DownloadAttempt.id)
                )
            )

    @staticmethod
    def part_files(data_dir: Path) -> list[Path]:
        return sorted(Path(data_dir).rglob("*.part"))


@pytest.fixture
def rows(store) -> Rows:
    return Rows(store)


@pytest.fixture
def rows_of():
    """Rows for a store a test opens itself (Postgres)."""
    return Rows
