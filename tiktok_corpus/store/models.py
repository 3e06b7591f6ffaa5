"""The database schema: the corpus itself and the work queue between stages.

Rows are the queue. Each stage owns a group of ``{stage}_*`` columns on ``videos``:

* ``expand``   - crawl frontier: pending -> claimed -> expanded | failed | skipped
* ``download`` - pending -> claimed -> downloaded | failed | skipped (not a video)
* ``probe``    - pending -> claimed -> valid | too_short | corrupt | no_video | ... (a named outcome)

``claimed`` rows carry a lease (``{stage}_lease_until``); a dead worker's claim becomes claimable again
once the lease has passed, or at once where its worker is known gone (store/workers.py).
``{stage}_attempts`` counts claims, ``{stage}_error_kind``/``{stage}_error`` hold the last failure,
``{stage}_updated_at`` the last change. See docs/architecture.md.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names let one Alembic tree (batch mode) alter tables on SQLite and Postgres alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STAGES = ("expand", "download", "probe")


def table_of(model: type[Base]) -> Table:
    """A model's Core table, typed as one (Core statements on it skip the ORM's per-statement work)."""
    return cast(Table, model.__table__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _stage_columns(stage: str) -> type:
    """A mixin holding one stage's queue columns, so every stage's lifecycle looks the same."""
    return type(
        f"_{stage.title()}StageColumns",
        (),
        {
            f"{stage}_status": mapped_column(String(24), nullable=False, default="pending", server_default="pending"),
            f"{stage}_attempts": mapped_column(Integer, nullable=False, default=0, server_default="0"),
            f"{stage}_error_kind": mapped_column(String(48)),
            f"{stage}_error": mapped_column(Text),
            f"{stage}_lease_until": mapped_column(DateTime(timezone=True)),
            f"{stage}_worker": mapped_column(String(96)),
            f"{stage}_updated_at": mapped_column(DateTime(timezone=True)),
        },
    )


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    unique_id: Mapped[str | None] = mapped_column(String(128), index=True)
    nickname: Mapped[str | None] = mapped_column(Text)
    sec_uid: Mapped[str | None] = mapped_column(Text)
    verified: Mapped[bool | None] = mapped_column(Boolean)
    private_account: Mapped[bool | None] = mapped_column(Boolean)
    follower_count: Mapped[int | None] = mapped_column(BigInteger)
    following_count: Mapped[int | None] = mapped_column(BigInteger)
    heart_count: Mapped[int | None] = mapped_column(BigInteger)
    video_count: Mapped[int | None] = mapped_column(BigInteger)
    digg_count: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Video(Base, _stage_columns("expand"), _stage_columns("download"), _stage_columns("probe")):  # type: ignore[misc]
    __tablename__ = "videos"
    __table_args__ = (
        Index("ix_videos_expand_queue", "expand_status", "expand_order"),
        # (status, id): a claim walks its stage's pending rows in id order and stops at its limit.
        Index("ix_videos_download_queue", "download_status", "id"),
        Index("ix_videos_probe_queue", "probe_status", "id"),
        Index("ix_videos_item_kind", "item_kind"),  # the crawl counts videos in every expansion's write
        Index("ix_videos_create_time", "create_time"),  # the tracker schedules only videos young enough
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    author_id: Mapped[str | None] = mapped_column(ForeignKey("authors.id"), index=True)
    desc: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[int | None] = mapped_column(BigInteger)
    # video | photo | ad | live | unavailable: only "video" items are downloaded.
    item_kind: Mapped[str] = mapped_column(String(16), default="video", server_default="video")
    # TikTok's statusCode for the item (0 ok, 10204 deleted, 10216 private ...).
    status_code: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    declared_duration_s: Mapped[float | None] = mapped_column(Float)
    declared_size: Mapped[int | None] = mapped_column(BigInteger)
    declared_width: Mapped[int | None] = mapped_column(Integer)
    declared_height: Mapped[int | None] = mapped_column(Integer)
    codec: Mapped[str | None] = mapped_column(String(32))
    music_id: Mapped[str | None] = mapped_column(String(32))
    music_title: Mapped[str | None] = mapped_column(Text)
    # The site's flag for an "original sound" recorded on TikTok, not licensed music (its title says so only
    # in English: it is localised, or the recording author's own words).
    music_original: Mapped[bool | None] = mapped_column(Boolean)
    # Candidate media URLs in the contract's preference order, refreshed on every sighting.
    media_urls: Mapped[list | None] = mapped_column(JSON)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    parent_id: Mapped[str | None] = mapped_column(String(32))
    depth: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    source: Mapped[str] = mapped_column(String(16), default="foryou", server_default="foryou")
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    # Seeded pseudo-random key: the "random" frontier policy expands in this order, so a
    # resumed or multi-process crawl follows one deterministic order held in the database.
    expand_order: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # fetch | signed | page: how the related list of this expansion was had (tiktok/related_lists.py).
    expand_method: Mapped[str | None] = mapped_column(String(16))
    # A parent whose related list failed is not claimed again before this moment (its retry backoff).
    expand_not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StatsSnapshot(Base):
    """One row per sighting: engagement over time, never overwritten."""

    __tablename__ = "stats_snapshots"
    # Exports pick each video's latest snapshot: one index walk instead of a sort.
    __table_args__ = (Index("ix_stats_snapshots_latest", "video_id", "captured_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    play_count: Mapped[int | None] = mapped_column(BigInteger)
    like_count: Mapped[int | None] = mapped_column(BigInteger)
    comment_count: Mapped[int | None] = mapped_column(BigInteger)
    share_count: Mapped[int | None] = mapped_column(BigInteger)
    collect_count: Mapped[int | None] = mapped_column(BigInteger)
    repost_count: Mapped[int | None] = mapped_column(BigInteger)
    exact: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    source: Mapped[str | None] = mapped_column(String(16))
    crawl_run_id: Mapped[int | None] = mapped_column(ForeignKey("crawl_runs.id"))
    # site | local: ``captured_at`` read off the site's own clock (the answer's ``extra.now``), or ours.
    clock: Mapped[str | None] = mapped_column(String(8))
    # The video's age at ``captured_at`` (seconds since createTime), where both are known.
    age_s: Mapped[float | None] = mapped_column(Float)


class AuthorSnapshot(Base):
    """An author's counts at one moment, never overwritten: their growth over time. One per author and
    moment of a crawl's lists, and one per ``corpus track`` observation, taken with the video's stats."""

    __tablename__ = "author_snapshots"
    __table_args__ = (Index("ix_author_snapshots_author", "author_id", "captured_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("authors.id", ondelete="CASCADE"))
    captured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    clock: Mapped[str | None] = mapped_column(String(8))
    follower_count: Mapped[int | None] = mapped_column(BigInteger)
    following_count: Mapped[int | None] = mapped_column(BigInteger)
    heart_count: Mapped[int | None] = mapped_column(BigInteger)
    video_count: Mapped[int | None] = mapped_column(BigInteger)
    digg_count: Mapped[int | None] = mapped_column(BigInteger)
    verified: Mapped[bool | None] = mapped_column(Boolean)  # the badge may follow a hit, like the counts
    video_id: Mapped[str | None] = mapped_column(String(32))  # the item whose answer carried them


class TrackTarget(Base):
    """One scheduled re-observation: ``video_id`` at ``age_s`` seconds after posting (``corpus track``).

    The rows are the tracker's queue: pending -> claimed -> observed | missed (taken later than the
    lateness allowed) | gone (deleted or private: the video's schedule stops) | failed. ``due_at`` is
    ``create_time + age_s`` in unix seconds on the site's clock; a failed try's target waits for
    ``retry_at`` too.
    """

    __tablename__ = "track_targets"
    __table_args__ = (
        Index("ix_track_targets_queue", "status", "due_at"),
        # One age's due targets in deadline order (its due_at order): a claim reads a few rows per age.
        Index("ix_track_targets_age_queue", "status", "age_s", "due_at"),
        Index("ix_track_targets_retries", "status", "retry_at"),  # the next retry, without a scan
    )

    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    age_s: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    due_at: Mapped[int] = mapped_column(BigInteger)
    retry_at: Mapped[int | None] = mapped_column(BigInteger)  # after a failed try: not claimed before (site clock)
    status: Mapped[str] = mapped_column(String(24), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error_kind: Mapped[str | None] = mapped_column(String(48))
    error: Mapped[str | None] = mapped_column(Text)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(String(96))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    observed_age_s: Mapped[float | None] = mapped_column(Float)  # of its snapshot, or when found gone
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("stats_snapshots.id", ondelete="SET NULL"))


class Hashtag(Base):
    __tablename__ = "hashtags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    tiktok_id: Mapped[str | None] = mapped_column(String(32))


class VideoHashtag(Base):
    __tablename__ = "video_hashtags"
    __table_args__ = (Index("ix_video_hashtags_hashtag", "hashtag_id"),)  # a hashtag's videos (browse's filter)

    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    hashtag_id: Mapped[int] = mapped_column(ForeignKey("hashtags.id", ondelete="CASCADE"), primary_key=True)


class RelatedEdge(Base):
    """``child`` appeared at ``rank`` (0-based) in ``parent``'s related list."""

    __tablename__ = "related_edges"
    __table_args__ = (Index("ix_related_edges_child", "child_id"),)  # who listed a video (its browse page)

    parent_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    child_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MediaFile(Base):
    """The downloaded file of a video and, once probed, what ffprobe found in it."""

    __tablename__ = "media_files"

    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(Text)  # relative to the data dir
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    downloaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source_url_kind: Mapped[str | None] = mapped_column(String(32))
    probed_sha256: Mapped[str | None] = mapped_column(String(64))
    probed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    container: Mapped[str | None] = mapped_column(String(64))
    video_codec: Mapped[str | None] = mapped_column(String(32))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    avg_fps: Mapped[float | None] = mapped_column(Float)
    r_fps: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float | None] = mapped_column(Float)
    frame_count: Mapped[int | None] = mapped_column(Integer)
    frame_count_method: Mapped[str | None] = mapped_column(String(16))
    has_audio: Mapped[bool | None] = mapped_column(Boolean)
    audio_codec: Mapped[str | None] = mapped_column(String(32))
    bitrate: Mapped[int | None] = mapped_column(BigInteger)


class DownloadAttempt(Base):
    """Every try at fetching a file, successful or not: the downloader's audit trail."""

    __tablename__ = "download_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    video_id: Mapped[str] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    method: Mapped[str] = mapped_column(String(16))  # http | ytdlp
    url_kind: Mapped[str | None] = mapped_column(String(32))
    http_status: Mapped[int | None] = mapped_column(Integer)
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    duration_s: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(48))  # "ok" or an error kind
    message: Mapped[str | None] = mapped_column(Text)


class CrawlRun(Base):
    __tablename__ = "crawl_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(24), default="running")
    params: Mapped[dict | None] = mapped_column(JSON)
    counts: Mapped[dict | None] = mapped_column(JSON)
    host: Mapped[str | None] = mapped_column(String(128))
    # host:pid of the process running it: a ``running`` row whose process is gone was killed.
    worker: Mapped[str | None] = mapped_column(String(96))


class Worker(Base):
    """A process that claims work, there while it runs: its lock says whether it still does (workers.py)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(96), primary_key=True)  # host:pid, as its claims carry it
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Export(Base):
    __tablename__ = "exports"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    path: Mapped[str] = mapped_column(Text)
    params: Mapped[dict | None] = mapped_column(JSON)
    row_count: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
