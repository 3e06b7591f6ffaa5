"""The validate stage's statements: which probes to redo, claims, one probe's record, reclassification.

The probe stage only ever works on downloaded rows, so every query here carries that condition; the
outcome vocabulary and the thresholds stay with the stage (:mod:`tiktok_corpus.validate`) and come in
as arguments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Row, func, select, update

from .db import Store
from .models import MediaFile, Video, utcnow
from .queue import claim, count_claimable, finish, finish_many

UPDATE_CHUNK = 500  # ids per UPDATE ... IN (...), well under SQLite's variable limit
_DOWNLOADED = Video.download_status == "downloaded"
# What classification reads of a probed file (the measured columns, not the whole row).
_CLASSIFIED_COLUMNS = (
    MediaFile.video_codec,
    MediaFile.width,
    MediaFile.height,
    MediaFile.duration_s,
    MediaFile.frame_count,
)

# An outcome as the queue records it: (status, error_kind, error).
Outcome = tuple[str, str | None, str | None]


def probed_downloads(store: Store, statuses: Collection[str]) -> list[Row]:
    """Downloaded rows in ``statuses`` with what tells whether their file changed since its probe:
    ``id, probe_status, probe_error_kind`` and the file's ``path, size_bytes, sha256, probed_sha256,
    probed_at, video_codec, frame_count_method`` (all None where the row has no file)."""
    query = (
        select(
            Video.id,
            Video.probe_status,
            Video.probe_error_kind,
            MediaFile.path,
            MediaFile.size_bytes,
            MediaFile.sha256,
            MediaFile.probed_sha256,
            MediaFile.probed_at,
            MediaFile.video_codec,
            MediaFile.frame_count_method,
        )
        .outerjoin(MediaFile, MediaFile.video_id == Video.id)
        .where(_DOWNLOADED, Video.probe_status.in_(list(statuses)))
    )
    with store.sessions() as session:
        return list(session.execute(query))


def requeue_probes(store: Store, video_ids: Sequence[str]) -> None:
    """Put rows back to ``pending`` keeping their probe columns, in one transaction; a row another run
    claimed since the list was made stays its own."""
    with store.transaction() as session:
        for chunk in _chunks(video_ids):
            session.execute(
                update(Video)
                .where(Video.id.in_(chunk), Video.probe_status != "claimed")
                .values(probe_status="pending", probe_updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )


def count_probe_claimable(store: Store) -> int:
    """Downloaded rows a probe claim could take now (the progress bar's total)."""
    return count_claimable(store, "probe", where=[_DOWNLOADED])


def claim_probes(store: Store, limit: int, *, lease_s: float) -> list[str]:
    """Claim up to ``limit`` downloaded rows for probing; returns their ids."""
    return claim(store, "probe", limit, where=[_DOWNLOADED], lease_s=lease_s)


def downloaded_files(store: Store, video_ids: Sequence[str]) -> dict[str, Row]:
    """The ``path`` (relative to the data dir) and the download's ``sha256`` of each of these rows that
    has a file."""
    if not video_ids:
        return {}
    with store.sessions() as session:
        query = select(MediaFile.video_id, MediaFile.path, MediaFile.sha256).where(
            MediaFile.video_id.in_(list(video_ids))
        )
        return {row.video_id: row for row in session.execute(query)}


def record_probe(store: Store, video_id: str, outcome: Outcome, measured: Mapping[str, Any] | None) -> None:
    """One probe's outcome and what it measured, in one transaction.

    ``measured`` (``probed_sha256``, the hash of the bytes read, ``probed_at``, when reading them began, and
    the probe columns) is set on the file's row; ``None`` leaves the row alone (the file was not read). The download's
    ``sha256`` and ``size_bytes`` are never written here: they are the record of what the site served.
    """
    status, error_kind, error = outcome
    with store.transaction() as session:
        if measured is not None:
            session.execute(
                update(MediaFile)
                .where(MediaFile.video_id == video_id)
                .values(**measured)
                .execution_options(synchronize_session=False)
            )
        finish(session, "probe", video_id, status, error_kind=error_kind, error=error)


def reclassify_probes(store: Store, statuses: Collection[str], outcome_of: Callable[[Row], Outcome]) -> int:
    """Give every downloaded row in ``statuses`` probed from its current bytes the outcome
    ``outcome_of`` finds in its stored probe columns; returns how many changed.

    One write transaction; the changed rows are written one UPDATE per distinct outcome (per
    :data:`UPDATE_CHUNK` ids), not one per row.
    """
    changed: dict[Outcome, list[str]] = defaultdict(list)
    with store.transaction() as session:
        rows = session.execute(
            select(Video.id, Video.probe_status, *_CLASSIFIED_COLUMNS)
            .join(MediaFile, MediaFile.video_id == Video.id)
            .where(_DOWNLOADED, Video.probe_status.in_(list(statuses)), MediaFile.probed_sha256 == MediaFile.sha256)
        ).all()
        for row in rows:
            outcome = outcome_of(row)
            if outcome[0] != row.probe_status:
                changed[outcome].append(row.id)
        connection = session.connection()
        for (status, error_kind, error), video_ids in changed.items():
            for chunk in _chunks(video_ids):
                finish_many(connection, "probe", chunk, status, error_kind=error_kind, error=error)
    return sum(len(video_ids) for video_ids in changed.values())


def probe_counts(store: Store) -> dict[str, int]:
    """Downloaded rows by probe status, sorted by status."""
    with store.sessions() as session:
        rows = session.execute(
            select(Video.probe_status, func.count()).where(_DOWNLOADED).group_by(Video.probe_status)
        ).all()
    return {status: count for status, count in sorted(rows)}


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), UPDATE_CHUNK):
        yield ids[start : start + UPDATE_CHUNK]
