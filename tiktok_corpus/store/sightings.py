"""The rows a sighting of TikTok items writes, and the statements that write them.

Several lists (a batch of expansions, a seed batch, a tracker's re-observation) are merged into one
:class:`SightingRows` so that each statement runs once for all of them; the statements are Core, built
once per dialect, because an expansion is a few of them on the crawl's hot path (the ORM's
per-statement work costs a few hundred microseconds each, and a statement built per call costs its
cache key). The crawl's bookkeeping around them (room, depth, edges, claims) is in :mod:`.crawl`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, String, and_, bindparam, case, func, literal, or_, select, update

from ..tiktok.contract import AuthorRecord, ItemRecord, StatsRecord, media_urls_json
from . import queue
from .db import table_insert
from .models import (
    STAGES,
    Author,
    AuthorSnapshot,
    Hashtag,
    RelatedEdge,
    StatsSnapshot,
    Video,
    VideoHashtag,
    table_of,
)

_VIDEOS = table_of(Video)
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
    "music_original",
    "media_urls",
    "last_seen_at",
)
_NO_MEDIA = "no_media_urls"
# Why a sighting leaves a stage without work (the kind of a post that is no video, or a video without
# file URLs): a stage skipped for one of these has not begun, and follows the post's kind when it changes.
_SIGHTING_SKIPS = ("photo", "ad", "live", "private", _NO_MEDIA)


def expand_order_key(seed: int, video_id: str) -> float:
    """A seeded pseudo-random key in [0, 1), the same in every process and on every restart: the order
    the ``random`` policy lists the frontier in, along its (status, key) index, before it draws from the
    whole list (the smallest key first was no uniform pick: see :func:`.queue.claim`)."""
    digest = hashlib.blake2b(f"{seed}:{video_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


# --- statements, built once ----------------------------------------------------------------------


def _insert_ignoring(connection: Connection, model, *conflict_columns: str):
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` (any conflict when none are named), built once."""
    return _built_insert_ignoring(connection.dialect.name, model, conflict_columns)


@functools.cache
def _built_insert_ignoring(dialect_name: str, model, conflict_columns: tuple[str, ...]):
    return table_insert(dialect_name, model).on_conflict_do_nothing(index_elements=list(conflict_columns) or None)


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


@functools.cache
def _stages_moved():
    """For videos whose kind a sighting changed: each stage that has not begun (pending, or skipped for
    a kind) takes what the new kind gives; one that has begun keeps its course."""

    def moved(stage: str, name: str):
        status, why = _VIDEOS.c[f"{stage}_status"], _VIDEOS.c[f"{stage}_error_kind"]
        skips = [literal(reason) for reason in _SIGHTING_SKIPS]  # not an expanding IN: this runs as executemany
        not_begun = or_(status == "pending", and_(status == "skipped", why.in_(skips)))
        column = _VIDEOS.c[f"{stage}_{name}"]
        return case((not_begun, bindparam(f"b_{stage}_{name}", type_=column.type)), else_=column)

    return (
        update(_VIDEOS)
        .where(_VIDEOS.c.id == bindparam("b_id"))
        .values({f"{stage}_{name}": moved(stage, name) for stage in STAGES for name in ("status", "error_kind")})
    )


# --- rows ----------------------------------------------------------------------------------------


def stored_kind(item: ItemRecord) -> str:
    return "private" if item.private else item.kind


def _item_columns(item: ItemRecord, now) -> dict[str, Any]:
    """The columns a sighting refreshes (latest wins; unknown values keep what was there): _REFRESHED_COLUMNS."""
    return {
        "author_id": item.author.id if item.author and item.author.id else None,
        "desc": item.desc,
        "create_time": item.create_time,
        "item_kind": stored_kind(item),
        "declared_duration_s": item.duration_s,
        "declared_size": item.size,
        "declared_width": item.width,
        "declared_height": item.height,
        "codec": item.codec,
        "music_id": item.music_id,
        "music_title": item.music_title,
        "music_original": item.music_original,
        "media_urls": media_urls_json(item.media_urls) or None,
        "last_seen_at": now,
    }


def new_video_row(
    item: ItemRecord, *, source: str, parent_id: str | None, depth: int, run_id: int | None, seed: int, now
) -> dict[str, Any]:
    """A first sighting's row, without its stages: they follow from the kind its batch leaves it with
    (:func:`_stages`, when the rows are written)."""
    return _item_columns(item, now) | {
        "id": item.id,
        "first_seen_at": now,
        "parent_id": parent_id,
        "depth": depth,
        "source": source,
        "crawl_run_id": run_id,
        "expand_order": expand_order_key(seed, item.id),
    }


def _stages(columns: dict[str, Any], *, urls_stored: bool = False) -> dict[str, Any]:
    """The queue columns that a row's kind and file URLs (this sighting's, or stored) give its stages."""
    kind = columns["item_kind"]
    no_file = kind if kind != "video" else _NO_MEDIA  # why neither download nor probe has work
    has_file = kind == "video" and (columns["media_urls"] is not None or urls_stored)
    return (
        _stage_start("expand", kind == "video", kind)
        | _stage_start("download", has_file, no_file)
        | _stage_start("probe", has_file, no_file)
    )


def _stage_start(stage: str, has_work: bool, why_not: str) -> dict[str, Any]:
    """One stage's queue columns: pending work, or skipped with the reason."""
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


def author_snapshot_row(
    author: AuthorRecord | None, *, captured_at, clock: str, video_id: str
) -> dict[str, Any] | None:
    """The author's counts as the item's answer carried them, at the moment of its stats snapshot; None
    when the answer carried no counts."""
    if author is None or not author.id or author.follower_count is None:
        return None
    return {
        "author_id": author.id,
        "captured_at": captured_at,
        "clock": clock,
        "follower_count": author.follower_count,
        "following_count": author.following_count,
        "heart_count": author.heart_count,
        "video_count": author.video_count,
        "digg_count": author.digg_count,
        "verified": author.verified,
        "video_id": video_id,
    }


# --- the writes of one or more lists --------------------------------------------------------------


def _folded(stored: dict[str, Any] | None, latest: dict[str, Any]) -> dict[str, Any]:
    """``latest`` over ``stored``, where a value ``latest`` lacks (None) keeps the stored one: what two
    coalescing writes one after the other leave behind."""
    if stored is None:
        return latest
    return stored | {name: value for name, value in latest.items() if value is not None}


class SightingRows:
    """The rows that one or more lists write, merged so that each statement runs once for all of them
    and the tables end up as if the lists had been written one after another: latest wins, a value a
    later sighting lacks keeps the earlier one, and a video added and re-sighted is inserted once with
    both folded in. A crawl writes several expansions per transaction, so statements and commits are
    paid per batch instead of per list."""

    def __init__(self, now, *, stored_kinds: dict[str, str] | None = None, urls_stored: set[str] | None = None) -> None:
        self.now = now
        self.stored_kinds = stored_kinds or {}  # of the re-sighted videos, as the database holds them
        self.urls_stored = urls_stored or set()  # the re-sighted videos stored with file URLs
        self.authors: dict[str, dict[str, Any]] = {}
        self.new_videos: dict[str, dict[str, Any]] = {}
        self.refreshed: dict[str, dict[str, Any]] = {}
        self.hashtags: dict[str, str | None] = {}
        self.hashtag_links: dict[tuple[str, str], None] = {}
        self.snapshots: list[dict[str, Any]] = []
        self.author_snapshots: dict[tuple[str, datetime], dict[str, Any]] = {}  # one per author and moment
        self.edges: list[dict[str, Any]] = []
        self.expanded: dict[str, list[str]] = {}  # method -> the parents it expanded
        self.left_unexpanded: list[str] = []  # parents whose list found the corpus full: back to the frontier

    def author_sighted(self, author: AuthorRecord | None) -> None:
        if author is not None and author.id:
            self.authors[author.id] = _folded(self.authors.get(author.id), vars(author) | {"updated_at": self.now})

    def sighted(
        self,
        item: ItemRecord,
        *,
        source: str,
        run_id: int | None,
        site_time: float | None,
        new_row: dict[str, Any] | None = None,
    ) -> None:
        """One item of a list. ``new_row`` (:func:`new_video_row`): its first sighting, inserted whole."""
        self.author_sighted(item.author)
        if new_row is not None:
            self.new_videos[item.id] = new_row
        else:  # a video added by an earlier list of this batch is still to be inserted, with this folded in
            rows = self.new_videos if item.id in self.new_videos else self.refreshed
            rows[item.id] = _folded(rows.get(item.id), _item_columns(item, self.now))
        for name, tiktok_id in item.hashtags:
            self.hashtags[name] = tiktok_id
            self.hashtag_links[(item.id, name)] = None
        snapshot = _snapshot_row(item, source, run_id, self.now, site_time)
        self.snapshots.append(snapshot)
        moment = snapshot["captured_at"]
        author = author_snapshot_row(item.author, captured_at=moment, clock=snapshot["clock"], video_id=item.id)
        if author is not None:
            self.author_snapshots[(author["author_id"], moment)] = author

    def write(self, connection: Connection) -> None:
        """Every row, parents before children: authors, videos, hashtags, snapshots (the videos' and their
        authors'), edges, outcomes."""
        if self.authors:
            connection.execute(_author_upsert(connection.dialect.name), list(self.authors.values()))
        if self.new_videos:
            connection.execute(
                _insert_ignoring(connection, Video, "id"), [row | _stages(row) for row in self.new_videos.values()]
            )
        if self.refreshed:
            connection.execute(
                _video_refresh(),
                [
                    {"b_id": video_id} | {f"b_{name}": value for name, value in columns.items()}
                    for video_id, columns in self.refreshed.items()
                ],
            )
            # A queued video turned private (or an ad seen as a plain video), or a video first seen without
            # file URLs that has them now, moves its stages in this same write: a frontier row no claim can
            # take, or a video no stage will touch, is never left.
            changed = [
                {"b_id": video_id}
                | {
                    f"b_{name}": value
                    for name, value in _stages(columns, urls_stored=video_id in self.urls_stored).items()
                }
                for video_id, columns in self.refreshed.items()
                if columns["item_kind"] != self.stored_kinds.get(video_id, columns["item_kind"])
                or (video_id not in self.urls_stored and columns["media_urls"] is not None)
            ]
            if changed:
                connection.execute(_stages_moved(), changed)
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
        if self.author_snapshots:
            connection.execute(
                table_insert(connection.dialect.name, AuthorSnapshot), list(self.author_snapshots.values())
            )
        if self.edges:
            connection.execute(_insert_ignoring(connection, RelatedEdge, "parent_id", "child_id"), self.edges)
        for method, parents in self.expanded.items():
            queue.finish_many(connection, "expand", parents, "expanded", expand_method=method)
        if self.left_unexpanded:
            queue.give_back_in(connection, "expand", self.left_unexpanded)


def upsert_authors(connection: Connection, items: Iterable[ItemRecord], now) -> None:
    """Latest wins, but a field this sighting lacks keeps its stored value (in the connection's transaction)."""
    rows = SightingRows(now)
    for item in items:
        rows.author_sighted(item.author)
    rows.write(connection)
