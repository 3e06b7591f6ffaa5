"""The crawl stage's SQL: what a sighting, a seed batch and an expansion write, and the frontier's
claims and counts (the ``crawl_runs`` bookkeeping is in :mod:`.crawl_runs`).

An expansion is a few statements on a hot path, so they are Core statements on the session's
connection (the ORM's per-statement work costs a few hundred microseconds each), built once per
dialect (a statement built per call costs its cache key and, with ``in_([...])``, more), and the whole
expansion is ONE transaction: children, edges, snapshots and the parent's ``expanded`` land together
or not at all.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, String, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from ..tiktok.contract import AuthorRecord, ItemList, ItemRecord, StatsRecord, media_urls_json
from . import queue
from .db import Store, table_insert
from .models import Author, Hashtag, RelatedEdge, StatsSnapshot, Video, VideoHashtag, table_of, utcnow

_VIDEOS = table_of(Video)
# The frontier policies, by name: the order ``claim_parents`` takes pending rows in.
FRONTIER_ORDERS = {"random": (Video.expand_order,), "bfs": (Video.depth, Video.first_seen_at)}
# Serialises the "is there still room?" check with the inserts it allows, across processes (Postgres).
CORPUS_LOCK_KEY = 0x7C0AF05
_REFRESHED_COLUMNS = (
    "author_id",
    "desc",
    "create_time",
    "item_kind",
    "declared_duration_s",
    "declared_size",
    "declared_width",
    "declared_height",
    "codec",
    "music_id",
    "music_title",
    "media_urls",
    "last_seen_at",
)


def expand_order_key(seed: int, video_id: str) -> float:
    """A seeded pseudo-random key in [0, 1), the same in every process and on every restart: the
    smallest key among the pending rows is a uniformly random pick of the ``random`` policy."""
    digest = hashlib.blake2b(f"{seed}:{video_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# --- statements, built once ----------------------------------------------------------------------


def _insert_ignoring(connection: Connection, model, *conflict_columns: str):
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` (any conflict when none are named), built once."""
    return _built_insert_ignoring(connection.dialect.name, model, conflict_columns)


@functools.cache
def _built_insert_ignoring(dialect_name: str, model, conflict_columns: tuple[str, ...]):
    return table_insert(dialect_name, model).on_conflict_do_nothing(index_elements=list(conflict_columns) or None)


# The ids (and depths) of the listed videos that are in the corpus: one select answers both "which of
# this list are known" and the parent's depth.
_KNOWN_DEPTHS = select(_VIDEOS.c.id, _VIDEOS.c.depth).where(_VIDEOS.c.id.in_(bindparam("ids", expanding=True)))
_VIDEO_COUNT = select(func.count()).select_from(_VIDEOS).where(_VIDEOS.c.item_kind == "video")


@functools.cache
def _hashtag_links(dialect_name: str):
    """Link a video to a hashtag by name, the hashtag's id looked up in the same statement."""
    hashtags = table_of(Hashtag)
    by_name = select(bindparam("video_id", type_=String(32)), hashtags.c.id).where(hashtags.c.name == bindparam("name"))
    return (
        table_insert(dialect_name, VideoHashtag)
        .from_select(["video_id", "hashtag_id"], by_name)
        .on_conflict_do_nothing()
    )


@functools.cache
def _author_upsert(dialect_name: str):
    """Built once per dialect: an expansion's writes are a few statements, so building them is a real cost."""
    stmt = table_insert(dialect_name, Author)
    table = table_of(Author)
    refresh = {
        name: func.coalesce(stmt.excluded[name], table.c[name])
        for name in [field.name for field in fields(AuthorRecord)] + ["updated_at"]
        if name != "id"
    }
    return stmt.on_conflict_do_update(index_elements=["id"], set_=refresh)


@functools.cache
def _video_refresh():
    """One UPDATE for every re-sighted video of a list; a value this sighting lacks (NULL) keeps the stored one."""

    def refreshed(name: str):  # JSON None must bind as SQL NULL for coalesce to keep the old value
        kind = JSON(none_as_null=True) if name == "media_urls" else _VIDEOS.c[name].type
        return func.coalesce(bindparam(f"b_{name}", type_=kind), _VIDEOS.c[name])

    return (
        update(_VIDEOS)
        .where(_VIDEOS.c.id == bindparam("b_id"))
        .values({name: refreshed(name) for name in _REFRESHED_COLUMNS})
    )


def _lock_corpus(connection: Connection) -> None:
    """Make room checks and inserts atomic across processes (SQLite's BEGIN IMMEDIATE already does)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CORPUS_LOCK_KEY})


# --- rows ----------------------------------------------------------------------------------------


def _stored_kind(item: ItemRecord) -> str:
    return "private" if item.private else item.kind


def _item_columns(item: ItemRecord, now) -> dict[str, Any]:
    """The columns a sighting refreshes (latest wins; unknown values keep what was there): _REFRESHED_COLUMNS."""
    return {
        "author_id": item.author.id if item.author and item.author.id else None,
        "desc": item.desc,
        "create_time": item.create_time,
        "item_kind": _stored_kind(item),
        "declared_duration_s": item.duration_s,
        "declared_size": item.size,
        "declared_width": item.width,
        "declared_height": item.height,
        "codec": item.codec,
        "music_id": item.music_id,
        "music_title": item.music_title,
        "media_urls": media_urls_json(item.media_urls) or None,
        "last_seen_at": now,
    }


def _new_video_row(
    item: ItemRecord, *, source: str, parent_id: str | None, depth: int, run_id: int | None, seed: int, now
) -> dict[str, Any]:
    kind = _stored_kind(item)
    no_file = kind if kind != "video" else "no_media_urls"  # why neither download nor probe has work
    return (
        _item_columns(item, now)
        | {
            "id": item.id,
            "first_seen_at": now,
            "parent_id": parent_id,
            "depth": depth,
            "source": source,
            "crawl_run_id": run_id,
            "expand_order": expand_order_key(seed, item.id),
        }
        | _stage_start("expand", kind == "video", kind)
        | _stage_start("download", item.downloadable, no_file)
        | _stage_start("probe", item.downloadable, no_file)
    )


def _stage_start(stage: str, has_work: bool, why_not: str) -> dict[str, Any]:
    """A new row's queue columns for one stage: pending work, or skipped with the reason."""
    return {
        f"{stage}_status": "pending" if has_work else "skipped",
        f"{stage}_error_kind": None if has_work else why_not,
    }


def _snapshot_row(item: ItemRecord, source: str, run_id: int | None, now, site_time: float | None) -> dict[str, Any]:
    """A sighting's snapshot, taken at the site's own time where the list said it (``extra.now``)."""
    stats = vars(item.stats or StatsRecord())
    captured_at = now if site_time is None else datetime.fromtimestamp(site_time, UTC)
    age_s = captured_at.timestamp() - item.create_time if item.create_time is not None else None
    return {
        "video_id": item.id,
        "captured_at": captured_at,
        "clock": "local" if site_time is None else "site",
        "age_s": age_s,
        "source": source,
        "crawl_run_id": run_id,
    } | stats


# --- the writes of one or more lists --------------------------------------------------------------


def _folded(stored: dict[str, Any] | None, latest: dict[str, Any]) -> dict[str, Any]:
    """``latest`` over ``stored``, where a value ``latest`` lacks (None) keeps the stored one: what two
    coalescing writes one after the other leave behind."""
    if stored is None:
        return latest
    return stored | {name: value for name, value in latest.items() if value is not None}


class _Rows:
    """The rows that one or more lists write, merged so that each statement runs once for all of them
    and the tables end up as if the lists had been written one after another: latest wins, a value a
    later sighting lacks keeps the earlier one, and a video added and re-sighted is inserted once with
    both folded in. A crawl writes several expansions per transaction, so statements and commits are
    paid per batch instead of per list."""

    def __init__(self, now) -> None:
        self.now = now
        self.authors: dict[str, dict[str, Any]] = {}
        self.new_videos: dict[str, dict[str, Any]] = {}
        self.refreshed: dict[str, dict[str, Any]] = {}
        self.hashtags: dict[str, str | None] = {}
        self.hashtag_links: dict[tuple[str, str], None] = {}
        self.snapshots: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.expanded: dict[str, list[str]] = {}  # method -> the parents it expanded

    def sighted(self, item: ItemRecord, *, source: str, run_id: int | None, site_time: float | None) -> None:
        if item.author is not None and item.author.id:
            self.authors[item.author.id] = _folded(
                self.authors.get(item.author.id), vars(item.author) | {"updated_at": self.now}
            )
        columns = _item_columns(item, self.now)
        if item.id in self.new_videos:
            self.new_videos[item.id] = _folded(self.new_videos[item.id], columns)
        else:
            self.refreshed[item.id] = _folded(self.refreshed.get(item.id), columns)
        for name, tiktok_id in item.hashtags:
            self.hashtags[name] = tiktok_id
            self.hashtag_links[(item.id, name)] = None
        self.snapshots.append(_snapshot_row(item, source, run_id, self.now, site_time))

    def write(self, connection: Connection) -> None:
        """Every row, parents before children: authors, videos, hashtags, snapshots, edges, outcomes."""
        if self.authors:
            connection.execute(_author_upsert(connection.dialect.name), list(self.authors.values()))
        if self.new_videos:
            connection.execute(_insert_ignoring(connection, Video, "id"), list(self.new_videos.values()))
        if self.refreshed:
            connection.execute(
                _video_refresh(),
                [
                    {"b_id": video_id} | {f"b_{name}": value for name, value in columns.items()}
                    for video_id, columns in self.refreshed.items()
                ],
            )
        if self.hashtags:
            connection.execute(
                _insert_ignoring(connection, Hashtag, "name"),
                [{"name": name, "tiktok_id": tiktok_id} for name, tiktok_id in self.hashtags.items()],
            )
            connection.execute(
                _hashtag_links(connection.dialect.name),
                [{"video_id": video_id, "name": name} for video_id, name in self.hashtag_links],
            )
        if self.snapshots:
            connection.execute(table_insert(connection.dialect.name, StatsSnapshot), self.snapshots)
        if self.edges:
            connection.execute(_insert_ignoring(connection, RelatedEdge, "parent_id", "child_id"), self.edges)
        for method, parents in self.expanded.items():
            queue.finish_many(connection, "expand", parents, "expanded", expand_method=method)


def upsert_authors(connection: Connection, items: Sequence[ItemRecord], now) -> None:
    """Latest wins, but a field this sighting lacks keeps its stored value (in the connection's transaction)."""
    rows = {
        item.author.id: vars(item.author) | {"updated_at": now}
        for item in items
        if item.author is not None and item.author.id
    }
    if rows:
        connection.execute(_author_upsert(connection.dialect.name), list(rows.values()))


def _known_depths(connection: Connection, ids: Sequence[str]) -> dict[str, int]:
    """The depth of each of ``ids`` that is in the corpus."""
    return {video_id: depth for video_id, depth in connection.execute(_KNOWN_DEPTHS, {"ids": list(ids)})}


def _video_count(connection: Connection) -> int:
    return connection.scalar(_VIDEO_COUNT) or 0


def _seed_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Video).where(Video.source == "foryou")) or 0


@dataclass(frozen=True)
class Sighting:
    """What one batch added: the ids now in the corpus from this list, which of them are new, and the
    corpus's video count once it lands (so callers need no count query of their own)."""

    in_corpus: tuple[str, ...]
    new: tuple[str, ...]
    videos: int


@dataclass(frozen=True)
class Expansion:
    """One parent's related list and the method that got it: what :func:`record_expansions` writes."""

    parent_id: str
    related: ItemList
    method: str


def record_sightings(
    session: Session,
    items: Sequence[ItemRecord],
    *,
    source: str,
    parent_id: str | None,
    depth: int,
    run_id: int | None,
    seed: int,
    max_new: int,
    max_videos: int,
    site_time: float | None = None,
) -> Sighting:
    """Upsert the items of one list (a seed batch or a related list) inside the caller's transaction.

    Items already in the corpus are refreshed and get a snapshot; up to ``max_new`` unknown ones (in list
    order, while video items stay within ``max_videos``) are added; the rest are not part of the corpus.
    """
    connection = session.connection()
    _lock_corpus(connection)
    rows = _Rows(utcnow())
    sighting = _sight(
        rows,
        items,
        _known_depths(connection, [item.id for item in items]),
        videos=_video_count(connection),
        source=source,
        parent_id=parent_id,
        depth=depth,
        run_id=run_id,
        seed=seed,
        max_new=max_new,
        max_videos=max_videos,
        site_time=site_time,
    )
    rows.write(connection)
    return sighting


def _sight(
    rows: _Rows,
    items: Sequence[ItemRecord],
    known: dict[str, int],
    *,
    videos: int,
    source: str,
    parent_id: str | None,
    depth: int,
    run_id: int | None,
    seed: int,
    max_new: int,
    max_videos: int,
    site_time: float | None,
) -> Sighting:
    """One list's sightings, decided against the ``known`` ids (the corpus's and the earlier lists' of
    this batch, with their depths; the ones added here join it) and a corpus of ``videos`` videos."""
    unique = list({item.id: item for item in items}.values())
    room = max_videos - videos
    seen: list[ItemRecord] = []
    new: list[ItemRecord] = []
    for item in unique:
        if item.id not in known:
            counts_toward_target = _stored_kind(item) == "video"
            if len(new) >= max_new or (counts_toward_target and room <= 0):
                continue
            room -= counts_toward_target
            videos += counts_toward_target
            new.append(item)
        seen.append(item)
    for item in new:
        known[item.id] = depth
        rows.new_videos[item.id] = _new_video_row(
            item, source=source, parent_id=parent_id, depth=depth, run_id=run_id, seed=seed, now=rows.now
        )
    for item in seen:
        rows.sighted(item, source=source, run_id=run_id, site_time=site_time)
    return Sighting(tuple(item.id for item in seen), tuple(item.id for item in new), videos)


def record_expansions(
    store: Store, expansions: Sequence[Expansion], *, fanout: int, max_videos: int, run_id: int | None, seed: int
) -> list[Sighting]:
    """Expansions, all or nothing, in ONE transaction, as if recorded one after another in their order:
    children, edges with ranks, snapshots, and each parent's status with the method that got its related
    list (``expand_method``). Their sightings, in the same order."""
    with store.transaction() as session:
        connection = session.connection()
        _lock_corpus(connection)
        ids = {expansion.parent_id for expansion in expansions}
        ids.update(item.id for expansion in expansions for item in expansion.related.items)
        known = _known_depths(connection, sorted(ids))
        videos = _video_count(connection)
        rows = _Rows(utcnow())
        sightings = []
        for expansion in expansions:
            parent_id = expansion.parent_id
            children = [item for item in expansion.related.items if item.id != parent_id]
            sighting = _sight(
                rows,
                children,
                known,
                videos=videos,
                source="related",
                parent_id=parent_id,
                depth=(known.get(parent_id) or 0) + 1,
                run_id=run_id,
                seed=seed,
                max_new=fanout,
                max_videos=max_videos,
                site_time=expansion.related.site_time,
            )
            videos = sighting.videos
            in_corpus = set(sighting.in_corpus)
            ranks: dict[str, int] = {}
            for rank, item in enumerate(children):
                if item.id in in_corpus:
                    ranks.setdefault(item.id, rank)
            rows.edges += [
                {"parent_id": parent_id, "child_id": child_id, "rank": rank, "first_seen_at": rows.now}
                for child_id, rank in ranks.items()
            ]
            rows.expanded.setdefault(expansion.method, []).append(parent_id)
            sightings.append(sighting)
        rows.write(connection)
    return sightings


def record_expansion(
    store: Store,
    parent_id: str,
    related: ItemList,
    *,
    method: str,
    fanout: int,
    max_videos: int,
    run_id: int | None,
    seed: int,
) -> Sighting:
    """One expansion in its own transaction (:func:`record_expansions` of one)."""
    [sighting] = record_expansions(
        store, [Expansion(parent_id, related, method)], fanout=fanout, max_videos=max_videos, run_id=run_id, seed=seed
    )
    return sighting


def record_seeds(
    store: Store, batch: ItemList, *, seeds: int, max_videos: int, run_id: int | None, seed: int
) -> Sighting:
    """A For You batch: new videos become seeds until the corpus holds ``seeds`` of them."""
    with store.transaction() as session:
        _lock_corpus(session.connection())
        have = _seed_count(session)
        return record_sightings(
            session,
            batch.items,
            source="foryou",
            parent_id=None,
            depth=0,
            run_id=run_id,
            seed=seed,
            max_new=max(0, seeds - have),
            max_videos=max_videos,
            site_time=batch.site_time,
        )


# --- the frontier and the counts -----------------------------------------------------------------


def claim_parents(store: Store, strategy: str, worker: str, limit: int = 1) -> list[str]:
    """The next ``limit`` frontier rows in the strategy's order, claimed in one transaction."""
    return queue.claim(
        store, "expand", limit, order_by=FRONTIER_ORDERS[strategy], where=[Video.item_kind == "video"], worker=worker
    )


def fail_parent(store: Store, parent_id: str, error_kind: str, error: str) -> None:
    """A parent whose related list cannot be had (deleted, private, unparseable): ``expand`` failed."""
    with store.transaction() as session:
        queue.finish(session, "expand", parent_id, "failed", error_kind=error_kind, error=error)


def frontier_state(store: Store) -> tuple[int, int]:
    """(pending, claimed) expandable rows, across every process."""
    with store.sessions() as session:
        rows: dict[str, int] = dict(
            session.execute(
                select(Video.expand_status, func.count())
                .where(Video.expand_status.in_(["pending", "claimed"]))
                .group_by(Video.expand_status)
            ).all()
        )
    return rows.get("pending", 0), rows.get("claimed", 0)


def seed_count(store: Store) -> int:
    with store.sessions() as session:
        return _seed_count(session)


def corpus_video_count(store: Store) -> int:
    with store.sessions() as session:
        return _video_count(session.connection())


def downloaded_count(store: Store) -> int:
    with store.sessions() as session:
        return session.scalar(select(func.count()).select_from(Video).where(Video.download_status == "downloaded")) or 0
