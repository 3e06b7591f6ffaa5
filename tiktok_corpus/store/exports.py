"""The export stage's statements: the exportable rows with their latest stats, every snapshot of them
(labels at a fixed age) and of their authors, their hashtags, and the ``exports`` table (versions, the
row of a new export, and :class:`VersionTaken` when another export took that version first).

Reads come back as pandas frames from one set-based query each, read in bounded chunks and typed as
one unchunked read (:func:`.frames.read_frame`); the stage does the rest vectorised. They take the
connection of one :meth:`.db.Store.consistent_read`, so an export's several reads all see the same moment: a
video validated, tracked or re-tagged between two of them would otherwise be in one and not the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Connection, and_, func, select
from sqlalchemy.exc import IntegrityError

from ..errors import CorpusError
from .db import Store
from .frames import read_frame
from .models import (
    Author,
    AuthorSnapshot,
    Export,
    Hashtag,
    MediaFile,
    StatsSnapshot,
    TrackTarget,
    Video,
    VideoHashtag,
    table_of,
)

# The engagement counts an export reads from a stats snapshot.
SNAPSHOT_COUNTS = ("play_count", "like_count", "comment_count", "share_count", "collect_count")
# A snapshot that holds counts: a list item sighted without its stats leaves one with none, which must
# neither blank a video's latest counts nor place its counts at an age.
_COUNTED = table_of(StatsSnapshot).c.play_count.is_not(None)
# The author's profile counts an export reads from the author's row or from one of their snapshots.
PROFILE_COUNTS = ("follower_count", "following_count", "heart_count", "video_count")
# The profile as one of the author's snapshots keeps it: the counts and the badge.
PROFILE_AT_MOMENT = (*PROFILE_COUNTS, "verified")
# Probe outcomes of a whole, readable video: ``too_short`` passed every check but `corpus validate`'s
# frame threshold, which an export applies anew with its own ``min_frames``.
PROBED_WHOLE = ("valid", "too_short")


class VersionTaken(CorpusError):
    """Another export recorded this name and version first (two exports of one name at once)."""

    kind = "export_version_taken"
    expected = True
    retryable = True


def _exportable(min_frames: int):
    """What a video must meet to be exported, besides having a stats snapshot (joined with its file):
    the frame threshold is the export's own, not the one the last `corpus validate` classified by."""
    return and_(
        Video.item_kind == "video",
        Video.download_status == "downloaded",
        Video.probe_status.in_(PROBED_WHOLE),
        MediaFile.frame_count >= min_frames,
    )


def exportable_rows(reader: Connection, *, min_frames: int, as_of: datetime | None) -> pd.DataFrame:
    """Exportable videos, sorted by id, with their author, file and latest stats snapshot (at or before
    ``as_of``); the snapshot's columns are null where a video has none.

    Columns: ``video_id, author_id, author_unique_id, create_time, desc``, the five counts,
    ``follower_count, stats_captured_at, duration_s, fps, frame_count, width, height, has_audio,
    media_path`` (relative to the data dir), ``sha256``, the author's ``following_count, heart_count,
    video_count, verified``, the video's ``music_title`` and ``music_original``, and the file's
    ``size_bytes`` and ``probed_at`` (what its file must still match).
    """
    snap = table_of(StatsSnapshot)
    recency = func.row_number().over(
        partition_by=snap.c.video_id, order_by=(snap.c.captured_at.desc(), snap.c.id.desc())
    )
    ranked = select(
        snap.c.video_id,
        snap.c.captured_at,
        *(snap.c[name] for name in SNAPSHOT_COUNTS),
        recency.label("recency"),
    ).where(_COUNTED)
    if as_of is not None:
        ranked = ranked.where(snap.c.captured_at <= as_of.astimezone(UTC))
    latest = ranked.subquery("latest")
    query = (
        select(
            Video.id.label("video_id"),
            Video.author_id,
            Author.unique_id.label("author_unique_id"),
            Video.create_time,
            Video.desc,
            latest.c.play_count,
            latest.c.like_count,
            latest.c.comment_count,
            latest.c.share_count,
            latest.c.collect_count,
            Author.follower_count,
            latest.c.captured_at.label("stats_captured_at"),
            MediaFile.duration_s,
            MediaFile.avg_fps.label("fps"),
            MediaFile.frame_count,
            MediaFile.width,
            MediaFile.height,
            MediaFile.has_audio,
            MediaFile.path.label("media_path"),
            MediaFile.sha256,
            Author.following_count,
            Author.heart_count,
            Author.video_count,
            Author.verified,
            Video.music_title,
            Video.music_original,
            MediaFile.size_bytes,
            MediaFile.probed_at,
        )
        .select_from(Video)
        .join(MediaFile, MediaFile.video_id == Video.id)
        .outerjoin(Author, Author.id == Video.author_id)
        .outerjoin(latest, and_(latest.c.video_id == Video.id, latest.c.recency == 1))
        .where(_exportable(min_frames))
        .order_by(Video.id)
    )
    return read_frame(reader, query)


def exportable_snapshots(reader: Connection, *, min_frames: int, as_of: datetime | None = None) -> pd.DataFrame:
    """Every stats snapshot of every exportable video (taken at or before ``as_of``), ordered by video,
    capture time and id (the order of insertion among snapshots taken at the same moment).

    Columns: ``video_id, captured_at`` and the five counts. Videos without a snapshot have no row.
    """
    snap = table_of(StatsSnapshot)
    query = (
        select(
            snap.c.video_id,
            snap.c.captured_at,
            *(snap.c[name] for name in SNAPSHOT_COUNTS),
        )
        .select_from(snap)
        .join(Video, Video.id == snap.c.video_id)
        .join(MediaFile, MediaFile.video_id == Video.id)
        .where(_exportable(min_frames), _COUNTED, *_by(snap.c.captured_at, as_of))
        .order_by(snap.c.video_id, snap.c.captured_at, snap.c.id)
    )
    return read_frame(reader, query)


def _by(moment, as_of: datetime | None) -> list:
    """The condition "``moment`` at or before ``as_of``", none without a cutoff."""
    return [] if as_of is None else [moment <= as_of.astimezone(UTC)]


def tracked_gone(reader: Connection, *, min_frames: int, as_of: datetime | None = None) -> pd.Series:
    """When the tracker first found each exportable video deleted or private (a ``gone`` target; by
    ``as_of``), on the site's clock as its snapshots are, indexed by video id, sorted. A video that is
    gone grows no older on the site: an age it had not reached by then is one it never will."""
    moment = Video.create_time + TrackTarget.observed_age_s
    cutoff = [] if as_of is None else [moment <= as_of.timestamp()]
    query = (
        select(TrackTarget.video_id, func.min(moment).label("found_at"))
        .join(Video, Video.id == TrackTarget.video_id)
        .join(MediaFile, MediaFile.video_id == Video.id)
        .where(_exportable(min_frames), TrackTarget.status == "gone", *cutoff)
        .group_by(TrackTarget.video_id)
        .order_by(TrackTarget.video_id)
    )
    found = read_frame(reader, query).set_index("video_id")["found_at"]
    return pd.to_datetime(found.astype("float64"), unit="s", utc=True)


def exportable_author_snapshots(reader: Connection, *, min_frames: int, as_of: datetime | None = None) -> pd.DataFrame:
    """Every snapshot of the authors of exportable videos (one per sighting of a crawl's lists or a
    tracker's observation; taken at or before ``as_of``), ordered by author, capture time and id.

    Columns: ``author_id, captured_at`` and :data:`PROFILE_AT_MOMENT` (``verified`` null in snapshots
    taken before it was kept).
    """
    snap = table_of(AuthorSnapshot)
    authors = select(Video.author_id).join(MediaFile, MediaFile.video_id == Video.id).where(_exportable(min_frames))
    query = (
        select(snap.c.author_id, snap.c.captured_at, *(snap.c[name] for name in PROFILE_AT_MOMENT))
        .where(snap.c.author_id.in_(authors), *_by(snap.c.captured_at, as_of))
        .order_by(snap.c.author_id, snap.c.captured_at, snap.c.id)
    )
    return read_frame(reader, query)


def exportable_hashtags(reader: Connection, *, min_frames: int) -> pd.DataFrame:
    """``video_id, name``: every hashtag of every exportable video, in no particular order."""
    query = (
        select(VideoHashtag.video_id, Hashtag.name)
        .join(Hashtag, Hashtag.id == VideoHashtag.hashtag_id)
        .join(Video, Video.id == VideoHashtag.video_id)
        .join(MediaFile, MediaFile.video_id == Video.id)
        .where(_exportable(min_frames))
    )
    return read_frame(reader, query)


def latest_export_version(store: Store, name: str) -> int:
    """The highest version of ``name`` in the ``exports`` table (0: none)."""
    with store.sessions() as session:
        return session.scalar(select(func.max(Export.version)).where(Export.name == name)) or 0


def made_export(store: Store, data_sha256: str | None) -> bool:
    """Whether this database recorded an export of that video table (its manifest's ``data_sha256``)."""
    if not data_sha256:
        return False
    with store.sessions() as session:
        return session.scalar(select(Export.name).where(Export.sha256 == data_sha256).limit(1)) is not None


def recorded_exports(store: Store) -> set[tuple[str, int]]:
    """The ``(name, version)`` of every ``exports`` row."""
    with store.sessions() as session:
        return {(name, version) for name, version in session.execute(select(Export.name, Export.version))}


@contextmanager
def recording_export(
    store: Store, *, name: str, version: int, created_at: datetime, path: str, params: dict, row_count: int, sha256: str
) -> Iterator[None]:
    """Insert the ``exports`` row of a new version, committed only if the block succeeds.

    The block moves the export into place, so a failure there leaves neither the row nor the directory;
    a process killed between the move and the commit leaves the directory alone, for the next export
    to record (``export.write.record_landed_versions``).
    A unique (name, version) clash - another export took the version since it was chosen - raises
    :class:`VersionTaken` before the block runs.
    """
    with store.transaction() as session:
        session.add(
            Export(
                name=name,
                version=version,
                created_at=created_at,
                path=path,
                params=params,
                row_count=row_count,
                sha256=sha256,
            )
        )
        try:
            session.flush()
        except IntegrityError as exc:
            if not _is_unique_violation(exc):
                raise
            raise VersionTaken(f"{name} v{version} was recorded by another export") from exc
        yield


def _is_unique_violation(exc: IntegrityError) -> bool:
    """A unique constraint's clash, on Postgres (SQLSTATE 23505) or SQLite (its message)."""
    return getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(exc.orig)
