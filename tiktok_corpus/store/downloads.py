"""Every statement of the download stage: its claims, what a job needs, and what a run leaves behind.

The stage keeps its transfers on asyncio and sends these calls to its database thread, in order. A
landed file's rows go in one transaction with its rename (see :func:`land_downloads`), so ``downloaded``
lands with the file or not at all. The statements run per file are Core and built once per dialect:
the ORM's bookkeeping of an executemany cost more than the SQL.

A run renews its claims while it works (:func:`.queue.renew`: a job can outlast one lease), and
every write that settles a row (landing, failure, release) settles only the rows its worker still
claims: a claim that lapsed belongs to the worker that took it next.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, Row, and_, func, or_, select, update

from .db import Store, table_insert
from .models import Author, DownloadAttempt, MediaFile, Video, table_of, utcnow
from .queue import claim, count_claimable, finish_many

# Probe outcomes that say the file on disk is no good: ``--retry-failed`` fetches it again, never taking
# it as already present (its sha256 may still match: a file can be corrupt just as the site served it).
DAMAGED_PROBES = ("corrupt", "missing_file")


@dataclass
class AttemptRecord:
    """One try at fetching a file, in the columns of ``download_attempts``; filled in as the try goes."""

    method: str  # http | ytdlp
    url_kind: str | None
    started_at: datetime
    http_status: int | None = None
    bytes: int | None = None
    duration_s: float | None = None
    outcome: str = "unfinished"  # "ok" only once the try says so
    message: str | None = None


class TriedDownload(Protocol):
    """What a claimed video's run leaves besides its status: its tries, and its URLs if it fetched new ones."""

    @property
    def video_id(self) -> str: ...

    @property
    def attempts(self) -> Sequence[AttemptRecord]: ...

    @property
    def refreshed_urls(self) -> list[dict] | None: ...


@dataclass(frozen=True)
class LandedFile:
    """A checked file's ``media_files`` row; ``path`` is relative to the data directory."""

    tried: TriedDownload
    path: str
    size_bytes: int
    sha256: str
    source_url_kind: str | None


def _claimable_downloads(retry_failed: bool, since: datetime) -> tuple[tuple[str, ...], list]:
    """The statuses and conditions of a download claim; a row that failed since ``since`` (in this run)
    is not retried again by this run."""
    statuses = ("pending", "failed") if retry_failed else ("pending",)
    where = [Video.item_kind == "video"]
    if retry_failed:
        where.append(
            or_(
                Video.download_status != "failed",
                Video.download_updated_at.is_(None),
                Video.download_updated_at < since,
            )
        )
    return statuses, where


def count_claimable_downloads(store: Store, *, retry_failed: bool, since: datetime) -> int:
    """How many videos a download run started at ``since`` could claim now (its progress-bar total)."""
    statuses, where = _claimable_downloads(retry_failed, since)
    return count_claimable(store, "download", statuses=statuses, where=where)


def claim_downloads(
    store: Store, limit: int, *, retry_failed: bool, since: datetime, worker: str, lease_s: float
) -> list[str]:
    """Claim up to ``limit`` videos to download (see :func:`.queue.claim`); returns their ids."""
    statuses, where = _claimable_downloads(retry_failed, since)
    return claim(store, "download", limit, statuses=statuses, where=where, worker=worker, lease_s=lease_s)


def count_media_files(store: Store) -> int:
    """How many downloaded files the corpus records (rows of ``media_files``)."""
    with store.sessions() as session:
        return session.scalar(select(func.count()).select_from(table_of(MediaFile))) or 0


def requeue_damaged_downloads(store: Store) -> int:
    """Put downloaded videos whose file validate found damaged or gone (:data:`DAMAGED_PROBES`) back to
    ``pending``, to be fetched again; returns how many. The probe status stays until a file lands, so
    the job knows not to trust the recorded file."""
    with store.engine.begin() as connection:
        videos = table_of(Video)
        result = connection.execute(
            update(videos)
            .where(videos.c.probe_status.in_(DAMAGED_PROBES), videos.c.download_status == "downloaded")
            .values(download_status="pending", download_updated_at=utcnow())
        )
        return result.rowcount or 0


def load_download_rows(store: Store, ids: Iterable[str]) -> dict[str, Row]:
    """What claimed videos' downloads need, by id: ``id``, ``media_urls``, the author's ``unique_id``,
    ``probe_status``, and an earlier download's ``path``, ``size_bytes`` and ``sha256`` (None when there
    was none)."""
    with store.sessions() as session:
        return {
            row.id: row
            for row in session.execute(
                select(
                    Video.id,
                    Video.media_urls,
                    Video.probe_status,
                    Author.unique_id,
                    MediaFile.path,
                    MediaFile.size_bytes,
                    MediaFile.sha256,
                )
                .outerjoin(Author, Author.id == Video.author_id)
                .outerjoin(MediaFile, MediaFile.video_id == Video.id)
                .where(Video.id.in_(list(ids)))
            )
        }


def mark_downloaded(store: Store, video_id: str, *, worker: str) -> bool:
    """Mark a video whose recorded file still matches as downloaded again; False (nothing written) when
    ``worker`` no longer claims it."""
    with store.engine.begin() as connection:
        if held := _held_ids(connection, store.dialect, [video_id], worker):
            finish_many(connection, "download", held, "downloaded")
        return bool(held)


@contextmanager
def land_downloads(store: Store, files: Sequence[LandedFile], *, worker: str) -> Iterator[set[str]]:
    """Write checked files' rows in one transaction that commits when the ``with`` block ends; yields
    the ids ``worker`` still claims, the only files to put in place.

    The block puts those files in place, so a file and its rows land together: an error in it, or in
    the commit, leaves no row (the block must then put its files back). ``media_files`` is upserted (an
    earlier download's probe results no longer describe the file), the attempts appended (every file's:
    they happened), refreshed URLs kept, and the videos marked downloaded with their probe pending: a
    few statements per group.
    """
    with store.engine.begin() as connection:  # Core: no ORM session per group commit
        now = utcnow()
        held = set(_held_ids(connection, store.dialect, [file.tried.video_id for file in files], worker))
        if landing := [file for file in files if file.tried.video_id in held]:
            connection.execute(
                _media_file_upsert(store.dialect),
                [
                    {
                        "video_id": file.tried.video_id,
                        "size_bytes": file.size_bytes,
                        "path": file.path,
                        "sha256": file.sha256,
                        "downloaded_at": now,
                        "source_url_kind": file.source_url_kind,
                        "probed_sha256": None,
                        "probed_at": None,
                    }
                    for file in landing
                ],
            )
            finish_many(
                connection,
                "download",
                list(held),
                "downloaded",
                probe_status="pending",
                probe_error_kind=None,
                probe_error=None,
                probe_updated_at=now,
            )
        _write_tries(connection, store.dialect, [file.tried for file in files])
        yield held


def record_download_failure(
    store: Store, video_id: str, tried: TriedDownload | None, kind: str, message: str, *, worker: str
) -> bool:
    """Mark a video failed with its kind, together with its tries (none when it never became a job);
    the tries only, and False, when ``worker`` no longer claims it."""
    with store.engine.begin() as connection:
        if tried is not None:
            _write_tries(connection, store.dialect, [tried])
        if held := _held_ids(connection, store.dialect, [video_id], worker):
            finish_many(connection, "download", held, "failed", error_kind=kind, error=message)
        return bool(held)


def busy_download_ids(store: Store, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` a live claim (lease not run out) is downloading now."""
    with store.sessions() as session:
        return set(
            session.scalars(
                select(Video.id).where(
                    Video.id.in_(list(ids)),
                    Video.download_status == "claimed",
                    and_(Video.download_lease_until.is_not(None), Video.download_lease_until > utcnow()),
                )
            )
        )


def _held(videos, ids: Sequence[str], worker: str):
    """The rows of ``ids`` that ``worker`` claims now."""
    return and_(videos.c.id.in_(ids), videos.c.download_status == "claimed", videos.c.download_worker == worker)


def _held_ids(connection: Connection, dialect: str, ids: Sequence[str], worker: str) -> list[str]:
    """Those of ``ids`` that ``worker`` claims, locked until the transaction ends (on SQLite the
    transaction's write lock already keeps every other claimer out)."""
    videos = table_of(Video)
    query = select(videos.c.id).where(_held(videos, ids, worker))
    if dialect == "postgresql":
        query = query.order_by(videos.c.id).with_for_update()  # in id order, as every writer of many rows
    return list(connection.scalars(query))


def _write_tries(connection: Connection, dialect: str, tried: Sequence[TriedDownload]) -> None:
    """Append the videos' attempts and keep the URLs of those that were refreshed."""
    rows = [
        {
            "video_id": item.video_id,
            "started_at": a.started_at,
            "method": a.method,
            "url_kind": a.url_kind,
            "http_status": a.http_status,
            "bytes": a.bytes,
            "duration_s": a.duration_s,
            "outcome": a.outcome,
            "message": a.message,
        }
        for item in tried
        for a in item.attempts
    ]
    if rows:
        connection.execute(table_insert(dialect, DownloadAttempt), rows)
    videos = table_of(Video)
    for item in tried:
        if (urls := item.refreshed_urls) is not None:
            connection.execute(update(videos).where(videos.c.id == item.video_id).values(media_urls=urls))


@functools.cache
def _media_file_upsert(dialect_name: str):
    """Insert a landed file's row, or overwrite an earlier download's (its probe results are then stale)."""
    stmt = table_insert(dialect_name, MediaFile)
    landed = ("path", "size_bytes", "sha256", "downloaded_at", "source_url_kind", "probed_sha256", "probed_at")
    return stmt.on_conflict_do_update(index_elements=["video_id"], set_={name: stmt.excluded[name] for name in landed})
