"""The tracker's SQL (``corpus track``): the schedule of re-observations by age, its claims, and what
an observation writes.

The schedule is rows of ``track_targets``, one per (video, target age), so it is a work queue like the
other stages: claimed with a lease (``FOR UPDATE SKIP LOCKED`` on Postgres), several processes share it,
and an observation's snapshot and the rows it settles land in ONE transaction, so after kill -9 a row
is either settled with its snapshot or still due, never both and never lost.

Times: ``now`` and ``due_at`` are unix seconds on the site's clock (the tracker's injected clock);
leases run on this machine's clock, as the other stages' do.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import CursorResult, and_, func, literal, or_, select, tuple_, union_all, update

from ..config import AGE_TOLERANCE_CAP_S
from ..tiktok.contract import ItemRecord, StatsRecord
from .db import Store, table_insert
from .models import AuthorSnapshot, StatsSnapshot, TrackTarget, Video, table_of, utcnow
from .sightings import author_snapshot_row, upsert_authors
from .workers import confirm_presence, dead_workers

_TARGETS = table_of(TrackTarget)
_VIDEOS = table_of(Video)
TRACKED_KINDS = ("video", "photo")  # posts with engagement to follow (not ads, lives, unavailable ones)
FINAL_STATUSES = ("observed", "missed", "gone", "failed")


def _ready(now: float):
    """Pending targets whose backoff is over (their due time is the caller's own condition: an index range)."""
    return or_(_TARGETS.c.retry_at.is_(None), _TARGETS.c.retry_at <= math.floor(now))


@dataclass(frozen=True)
class DueVideo:
    """A claimed video and the target ages it is due for (one observation settles them all)."""

    video_id: str
    ages_s: tuple[int, ...]
    create_time: int  # what the targets' due times were counted from


MIN_LATENESS_S = 60.0


def allowed_lateness_s(age_s: int, late_fraction: float) -> float:
    """How long after its due time an observation still counts as taken at its age (else ``missed``):
    ``late_fraction`` of the age, at least a minute and at most :data:`AGE_TOLERANCE_CAP_S` (a day), the
    most an export at that age lets a lone sighting stand for it."""
    return max(MIN_LATENESS_S, min(AGE_TOLERANCE_CAP_S, age_s * late_fraction))


# A video a tracker found gone (deleted, private): no age of it is scheduled any more.
_FOUND_GONE = select(_TARGETS.c.video_id).where(_TARGETS.c.video_id == _VIDEOS.c.id, _TARGETS.c.status == "gone")


def schedule_targets(store: Store, ages_s: Sequence[int], *, now: float, late_fraction: float) -> int:
    """Add the target ages still ahead of every tracked video (those not already scheduled); returns
    how many rows were added. A video found at 2 days old gets no 1h target: it would be missed; one a
    tracker found gone (a target of it ``gone``) gets no new age either."""
    added = 0
    with store.transaction() as session:
        insert = table_insert(store.dialect, TrackTarget)
        for age in sorted(set(ages_s)):
            scheduled = select(_TARGETS.c.video_id).where(_TARGETS.c.video_id == _VIDEOS.c.id, _TARGETS.c.age_s == age)
            rows = select(
                _VIDEOS.c.id, literal(age), _VIDEOS.c.create_time + age, literal("pending"), literal(0)
            ).where(
                _VIDEOS.c.create_time.is_not(None),
                _VIDEOS.c.item_kind.in_(TRACKED_KINDS),
                _VIDEOS.c.status_code == 0,
                # Posted recently enough for this age to be ahead: an index range, not the whole corpus.
                _VIDEOS.c.create_time >= math.ceil(now - age - allowed_lateness_s(age, late_fraction)),
                ~scheduled.exists(),
                ~_FOUND_GONE.exists(),
            )
            added += len(
                session.execute(
                    insert.from_select(["video_id", "age_s", "due_at", "status", "attempts"], rows)
                    .on_conflict_do_nothing()
                    .returning(_TARGETS.c.video_id)
                ).all()
            )
    return added


def newest_trackable(store: Store) -> tuple[int, int | None]:
    """How many videos tracking could follow (a posting time, a kind it tracks, not found gone), and when
    the newest of them was posted: why a run found nothing to schedule."""
    with store.sessions() as session:
        count, newest = session.execute(
            select(func.count(), func.max(_VIDEOS.c.create_time)).where(
                _VIDEOS.c.create_time.is_not(None),
                _VIDEOS.c.item_kind.in_(TRACKED_KINDS),
                _VIDEOS.c.status_code == 0,
                ~_FOUND_GONE.exists(),
            )
        ).one()
    return count, newest


def _pending_ages(session) -> list[int]:
    """The distinct ages of pending targets: a loose scan of the age index (one seek per age, in one
    recursive query), not a read of every pending row."""
    pending = _TARGETS.c.status == "pending"
    ages = select(func.min(_TARGETS.c.age_s).label("age_s")).where(pending).cte("ages", recursive=True)
    following = select(func.min(_TARGETS.c.age_s)).where(pending, _TARGETS.c.age_s > ages.c.age_s).scalar_subquery()
    ages = ages.union_all(select(following).where(ages.c.age_s.is_not(None)))
    return list(session.scalars(select(ages.c.age_s).where(ages.c.age_s.is_not(None))))


def _claimable(session, store: Store, limit: int, *, now: float, wall: datetime, late_fraction: float) -> list[str]:
    """The videos of the ``limit`` claimable targets with the soonest deadlines, targets past their
    deadline last (locked on Postgres, skipping those another claim holds).

    Within one age the deadline order is the due time's order, so each age gives its first ``limit`` rows
    in time and its first ``limit`` overdue rows from the age index, and the merge of those few rows is
    the order over all of them: a claim no longer sorts the whole backlog."""
    columns = (_TARGETS.c.video_id, _TARGETS.c.age_s, _TARGETS.c.due_at)
    candidates = [select(*columns).where(_TARGETS.c.status == "claimed", _TARGETS.c.lease_until < wall)]
    for age in _pending_ages(session):
        # Whole seconds, as due_at is (a float bound would cast the column and lose the index).
        cutoff = math.ceil(now - allowed_lateness_s(age, late_fraction))  # due before it: past the deadline
        pending = select(*columns).where(_TARGETS.c.status == "pending", _TARGETS.c.age_s == age, _ready(now))
        in_time = and_(_TARGETS.c.due_at >= cutoff, _TARGETS.c.due_at <= math.floor(now))
        for window in (in_time, _TARGETS.c.due_at < cutoff):
            candidates.append(pending.where(window).order_by(_TARGETS.c.due_at, _TARGETS.c.video_id).limit(limit))
    if store.dialect == "postgresql":
        candidates = [query.with_for_update(skip_locked=True) for query in candidates]
    # One statement: each candidate query a CTE of its own (Postgres locks inside a CTE, not a UNION).
    parts = [query.cte(f"candidates_{n}") for n, query in enumerate(candidates)]
    rows = session.execute(union_all(*(select(*part.c) for part in parts))).all()

    def order(row) -> tuple:
        deadline = row.due_at + allowed_lateness_s(row.age_s, late_fraction)
        return (deadline < now, deadline, row.video_id)

    return list(dict.fromkeys(row.video_id for row in sorted(rows, key=order)))[:limit]


def claim_due(
    store: Store, limit: int, *, now: float, worker: str, lease_s: float, late_fraction: float
) -> list[DueVideo]:
    """Claim up to ``limit`` videos with a due target (or a lapsed claim) and every due target of theirs,
    so one observation settles them all.

    The soonest deadline (due time plus allowed lateness) goes first: a 1h target with 15 minutes of slack
    before a 7d one with 42 hours. Targets already past their deadline go last, so they take no request
    from one still in time; read when there is room, their snapshot still dates the video's growth."""
    confirm_presence(store)
    wall = utcnow()
    due = (
        and_(_TARGETS.c.status == "claimed", _TARGETS.c.lease_until < wall),
        and_(_TARGETS.c.status == "pending", _TARGETS.c.due_at <= now, _ready(now)),
    )
    with store.transaction() as session:
        postgres = store.dialect == "postgresql"
        video_ids = _claimable(session, store, limit, now=now, wall=wall, late_fraction=late_fraction)
        if postgres and video_ids:
            video_ids = _rows_taken(session, video_ids)
        if not video_ids:
            return []
        # Lock every due target of those videos that no other claim holds, then update exactly those: an
        # update of all their due targets waited on rows another tracker had locked, which waited on ours
        # (Postgres: deadlock detected).
        targets = select(_TARGETS.c.video_id, _TARGETS.c.age_s).where(_TARGETS.c.video_id.in_(video_ids), or_(*due))
        if postgres:
            targets = targets.with_for_update(skip_locked=True)
        locked = [tuple(row) for row in session.execute(targets)]
        if postgres:
            locked = _whole_videos(session, locked, due)
        if not locked:
            return []
        claimed = session.execute(
            update(_TARGETS)
            .where(tuple_(_TARGETS.c.video_id, _TARGETS.c.age_s).in_(locked))  # by key: locked just above
            .values(
                status="claimed",
                lease_until=wall + timedelta(seconds=lease_s),
                worker=worker,
                attempts=_TARGETS.c.attempts + 1,
                updated_at=wall,
            )
            .returning(_TARGETS.c.video_id, _TARGETS.c.age_s)
        ).all()
        created = dict(
            session.execute(select(_VIDEOS.c.id, _VIDEOS.c.create_time).where(_VIDEOS.c.id.in_(video_ids))).all()
        )
    ages: dict[str, list[int]] = defaultdict(list)
    for video_id, age in claimed:
        ages[video_id].append(age)
    return [
        DueVideo(video_id, tuple(sorted(ages[video_id])), created[video_id]) for video_id in video_ids if ages[video_id]
    ]


def _rows_taken(session, video_ids: list[str]) -> list[str]:
    """Postgres: those of ``video_ids`` whose video row this claim locks, in their order (SKIP LOCKED: a
    claim never waits). Each claim's candidates lock target rows, so two claims at once could each lock
    one age of a video and claim the rest around the other's: one video read twice at the same moment.
    The video's row is the one key for all its ages (FOR NO KEY UPDATE: snapshots may still refer to it)."""
    rows = select(_VIDEOS.c.id).where(_VIDEOS.c.id.in_(video_ids)).with_for_update(skip_locked=True, key_share=True)
    taken = set(session.scalars(rows))
    return [video_id for video_id in video_ids if video_id in taken]


def _whole_videos(session, locked: list[tuple[str, int]], due) -> list[tuple[str, int]]:
    """Postgres: the locked targets of the videos whose every due target this claim locked. Another claim's
    candidates may still hold one for a moment; the video is then left, for a later claim to take whole."""
    held = Counter(video_id for video_id, _ in locked)
    due_by_video = dict(
        session.execute(
            select(_TARGETS.c.video_id, func.count())
            .where(_TARGETS.c.video_id.in_(list(held)), or_(*due))
            .group_by(_TARGETS.c.video_id)
        ).all()
    )
    return [(video_id, age) for video_id, age in locked if held[video_id] == due_by_video.get(video_id)]


def _held(video_id: str, worker: str, ages_s: Sequence[int]):
    """The targets among ``ages_s`` that ``worker`` still claims (a claim lost to a lapsed lease is not)."""
    return and_(
        _TARGETS.c.video_id == video_id,
        _TARGETS.c.age_s.in_(list(ages_s)),
        _TARGETS.c.status == "claimed",
        _TARGETS.c.worker == worker,
    )


def _still_held(session, store: Store, due: DueVideo, worker: str) -> list[int]:
    """The ages of ``due`` this worker still claims, locked until the transaction ends (Postgres), so
    no claim can take them between this check and the writes that settle them."""
    query = select(_TARGETS.c.age_s).where(_held(due.video_id, worker, due.ages_s))
    if store.dialect == "postgresql":
        query = query.with_for_update()
    return sorted(session.scalars(query))


def _settle(session, video_id: str, worker: str, ages_s: Sequence[int], **values) -> int:
    """Close this worker's claim on some of a video's targets; returns how many were still its own."""
    result = session.execute(
        update(_TARGETS).where(_held(video_id, worker, ages_s)).values(lease_until=None, updated_at=utcnow(), **values)
    )
    return cast(CursorResult, result).rowcount or 0


def renew_claim(store: Store, due: DueVideo, *, worker: str, lease_s: float) -> bool:
    """Extend this worker's claim by ``lease_s`` from now (a read can outlast one lease: blocked tries
    back off for minutes); False once the claim is no longer its own."""
    confirm_presence(store)
    with store.transaction() as session:
        result = session.execute(
            update(_TARGETS)
            .where(_held(due.video_id, worker, due.ages_s))
            .values(lease_until=utcnow() + timedelta(seconds=lease_s))
        )
        return bool(cast(CursorResult, result).rowcount)


def record_observation(
    store: Store,
    due: DueVideo,
    item: ItemRecord,
    *,
    captured_at: float,
    clock: str,
    worker: str,
    late_fraction: float,
) -> dict[str, int]:
    """The observation's snapshot (and its author's), and each target still claimed settled as
    ``observed`` or, when taken later than its allowed lateness, ``missed``; one transaction. Returns
    counts by status: none, and nothing written, when the claim was lost (another worker reads it)."""
    moment = datetime.fromtimestamp(captured_at, UTC)
    age = captured_at - due.create_time
    stats = vars(item.stats or StatsRecord())
    with store.transaction() as session:
        held = _still_held(session, store, due, worker)
        if not held:
            return {}
        outcomes: dict[str, list[int]] = defaultdict(list)
        for target in held:
            late = age - target > allowed_lateness_s(target, late_fraction)
            outcomes["missed" if late else "observed"].append(target)
        snapshot_id = session.execute(
            table_insert(store.dialect, StatsSnapshot)
            .values(video_id=due.video_id, captured_at=moment, source="track", clock=clock, age_s=age, **stats)
            .returning(table_of(StatsSnapshot).c.id)
        ).scalar_one()
        author = author_snapshot_row(item.author, captured_at=moment, clock=clock, video_id=due.video_id)
        if author is not None:
            upsert_authors(session.connection(), [item], utcnow())
            session.execute(table_insert(store.dialect, AuthorSnapshot).values(**author))
        for status, ages in outcomes.items():
            _settle(
                session,
                due.video_id,
                worker,
                ages,
                status=status,
                observed_age_s=age,
                snapshot_id=snapshot_id,
                error_kind=None,
                error=None,
            )
    return {status: len(ages) for status, ages in outcomes.items()}


def record_gone(store: Store, due: DueVideo, *, worker: str, kind: str, message: str, now: float) -> int:
    """The video is deleted or private: every target of it not yet settled stops, with the reason and
    the age it was found so at (``now``: the site's clock, as its ages are); returns how many. Nothing,
    unless this worker still holds its claim."""
    with store.transaction() as session:
        if not _still_held(session, store, due, worker):
            return 0
        result = session.execute(
            update(_TARGETS)
            .where(
                _TARGETS.c.video_id == due.video_id,
                or_(_TARGETS.c.status == "pending", and_(_TARGETS.c.status == "claimed", _TARGETS.c.worker == worker)),
            )
            .values(
                status="gone",
                error_kind=kind,
                error=message[:2000],
                observed_age_s=now - due.create_time,
                lease_until=None,
                updated_at=utcnow(),
            )
        )
        return cast(CursorResult, result).rowcount or 0


def record_failure(
    store: Store,
    due: DueVideo,
    *,
    worker: str,
    kind: str,
    message: str,
    max_attempts: int,
    now: float,
    retry_after_s: Callable[[int], float],
) -> dict[str, int] | None:
    """A failed try: each target goes back to ``pending`` for a later try, not claimed before
    ``retry_after_s(its tries)`` from ``now`` (site clock), or to ``failed`` once it had ``max_attempts``
    claims of its own (an age claimed beside a retry-worn one keeps its tries); returns how many went
    each way (None: the claim was no longer this worker's, nothing written)."""
    with store.transaction() as session:
        tries = select(_TARGETS.c.age_s, _TARGETS.c.attempts).where(_held(due.video_id, worker, due.ages_s))
        by_age = {age: attempts or 0 for age, attempts in session.execute(tries)}
        settled: dict[str, int] = {}
        for age, attempts in by_age.items():
            worn = attempts >= max_attempts
            status = "failed" if worn else "pending"
            retry_at = None if worn else math.ceil(now + retry_after_s(attempts))
            settled[status] = settled.get(status, 0) + _settle(
                session,
                due.video_id,
                worker,
                [age],
                status=status,
                error_kind=kind,
                error=message[:2000],
                retry_at=retry_at,
            )
    return settled or None


def release_targets(store: Store, claimed: Sequence[DueVideo], *, worker: str) -> None:
    """Give claims back untouched (a clean stop): they are due again at once."""
    with store.transaction() as session:
        for due in claimed:
            _settle(session, due.video_id, worker, due.ages_s, status="pending", attempts=_TARGETS.c.attempts - 1)


def restore_gone(store: Store, video_ids: Sequence[str]) -> int:
    """The schedules stopped as gone of videos whose unavailable answers then proved a block's (a region
    or IP block answers 10204 too): pending again, due at once where their time came. Returns how many."""
    with store.transaction() as session:
        result = session.execute(
            update(_TARGETS)
            .where(_TARGETS.c.video_id.in_(list(video_ids)), _TARGETS.c.status == "gone")
            .values(status="pending", error_kind="unavailable_run", updated_at=utcnow())
        )
        return cast(CursorResult, result).rowcount or 0


def reclaim_dead_targets(store: Store) -> int:
    """Claims of workers known gone (:func:`.dead_workers`: kill -9, a killed container) go back to
    ``pending`` at once."""
    with store.sessions() as session:
        holders = session.scalars(select(_TARGETS.c.worker).where(_TARGETS.c.status == "claimed").distinct()).all()
    dead = dead_workers(store, (holder for holder in holders if holder))
    if not dead:
        return 0
    with store.transaction() as session:
        result = session.execute(
            update(_TARGETS)
            .where(_TARGETS.c.status == "claimed", _TARGETS.c.worker.in_(dead))
            .values(status="pending", lease_until=None, updated_at=utcnow())
        )
        return cast(CursorResult, result).rowcount or 0


def next_due_at(store: Store) -> float | None:
    """When the earliest pending target falls due, or its backoff ends (site clock); None when nothing is
    pending or held by a lapsed claim. A lapsed claim (its tracker killed on another machine: this one's
    dead trackers are reclaimed first) was due when it was claimed: :func:`claim_due` takes it at once, so a
    run that finds only such claims still opens the browser for them."""
    pending = _TARGETS.c.status == "pending"
    lapsed = and_(_TARGETS.c.status == "claimed", _TARGETS.c.lease_until < utcnow())
    with store.sessions() as session:  # a failed try's retry_at is always past its due_at: two index seeks
        fresh = session.scalar(select(func.min(_TARGETS.c.due_at)).where(pending, _TARGETS.c.retry_at.is_(None)))
        orphaned = session.scalar(select(func.min(_TARGETS.c.due_at)).where(lapsed))
    return min((at for at in (fresh, orphaned, next_retry_at(store)) if at is not None), default=None)


def next_retry_at(store: Store) -> float | None:
    """When the earliest failed try's backoff ends (site clock), or None when no pending target waits one:
    a run that takes what is due waits for it, rather than leave the retry to the next run, by when its
    age may be missed."""
    with store.sessions() as session:
        return session.scalar(select(func.min(_TARGETS.c.retry_at)).where(_TARGETS.c.status == "pending"))


def tracking_counts(store: Store, *, now: float) -> dict[str, int]:
    """The tracking queue for ``corpus status``: due now, due later, claimed, and each final status.

    Two index reads: the count per status, then the pending targets due by ``now`` whose backoff is over
    (one query grouping every row by both read each row's ``retry_at``: seconds on a million targets), of
    one moment (a target scheduled between them made ``due_later`` negative on Postgres)."""
    with store.consistent_read() as session:
        rows = session.execute(select(_TARGETS.c.status, func.count()).group_by(_TARGETS.c.status)).all()
        by_status: dict[str, int] = {status: count for status, count in rows}
        due_now = session.scalar(
            select(func.count()).where(_TARGETS.c.status == "pending", _TARGETS.c.due_at <= now, _ready(now))
        )
    pending = by_status.pop("pending", 0)
    counts = dict.fromkeys(("claimed", *FINAL_STATUSES), 0) | by_status
    return {"due_now": due_now or 0, "due_later": pending - (due_now or 0), **counts}
