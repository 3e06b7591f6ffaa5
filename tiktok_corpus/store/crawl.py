"""The crawl stage's SQL: which of a list's items join the corpus (room, fanout, depth), the edges and
outcomes of an expansion, and the corpus's counts. The rows a sighting writes are in
:mod:`.sightings`, the frontier's claims and outcomes in :mod:`.frontier`, the ``crawl_runs`` bookkeeping in
:mod:`.crawl_runs`.

Each expansion (or batch of them) is ONE transaction: children, edges, snapshots and the parent's
``expanded`` land together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, func, select, text
from sqlalchemy.orm import Session

from ..tiktok.contract import ItemList, ItemRecord
from .db import Store
from .frontier import held_parents
from .models import Video, table_of, utcnow
from .sightings import SightingRows, new_video_row, stored_kind

_VIDEOS = table_of(Video)
# Serialises the "is there still room?" check with the inserts it allows, across processes (Postgres).
CORPUS_LOCK_KEY = 0x7C0AF05


# --- statements, built once ----------------------------------------------------------------------


# The ids (with depths and kinds) of the listed videos that are in the corpus: one select answers "which
# of this list are known", the parent's depth, and whose kind a sighting changes.
# media_urls read whole: a row inserted without them holds JSON null, which SQL's IS NULL does not see.
_KNOWN = select(_VIDEOS.c.id, _VIDEOS.c.depth, _VIDEOS.c.item_kind, _VIDEOS.c.media_urls).where(
    _VIDEOS.c.id.in_(bindparam("ids", expanding=True))
)
_VIDEO_COUNT = select(func.count()).select_from(_VIDEOS).where(_VIDEOS.c.item_kind == "video")


def _lock_corpus(connection: Connection) -> None:
    """Make room checks and inserts atomic across processes (SQLite's BEGIN IMMEDIATE already does)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CORPUS_LOCK_KEY})


def _known(connection: Connection, ids: Sequence[str]) -> tuple[dict[str, int], SightingRows]:
    """The depth of each of ``ids`` that is in the corpus, and the rows a sighting of them fills, which
    know the kind each is stored as and whether its file URLs are.

    On Postgres the rows are locked here, all at once and in id order, before the write touches any: a
    download landing locks its rows in id order too, and a write that took them in its lists' order (a
    parent first, then the children it re-sights) deadlocked with it."""
    postgres = connection.dialect.name == "postgresql"
    # FOR NO KEY UPDATE: the write changes no key, so another's foreign keys to these rows (a tracker's
    # snapshot) do not wait for it.
    query = _KNOWN.order_by(_VIDEOS.c.id).with_for_update(key_share=True) if postgres else _KNOWN
    rows = connection.execute(query, {"ids": list(ids)}).all()
    return {video_id: depth for video_id, depth, _, _ in rows}, SightingRows(
        utcnow(),
        stored_kinds={video_id: kind for video_id, _, kind, _ in rows},
        urls_stored={video_id for video_id, _, _, urls in rows if urls is not None},
    )


def _video_count(connection: Connection) -> int:
    return connection.scalar(_VIDEO_COUNT) or 0


def _seed_count(session: Session) -> int:
    """The For You videos: the ads, photos and private posts of a batch are recorded, but no seed."""
    return (
        session.scalar(
            select(func.count()).select_from(Video).where(Video.source == "foryou", Video.item_kind == "video")
        )
        or 0
    )


@dataclass(frozen=True)
class Sighting:
    """What one batch added: the ids now in the corpus from this list, which of them are new, and the
    corpus's video count once it lands (so callers need no count query of their own). ``expanded`` False:
    the list of a parent that found the corpus full, which wrote nothing and left the parent to a run with
    a larger target."""

    in_corpus: tuple[str, ...]
    new: tuple[str, ...]
    videos: int
    expanded: bool = True


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
    max_new_videos: int,
    max_videos: int,
    site_time: float | None = None,
) -> Sighting:
    """Upsert the items of a For You batch inside the caller's transaction.

    Items already in the corpus are refreshed and get a snapshot; unknown ones are added in list order, up
    to ``max_new_videos`` videos (the ads, photos and private posts among them take no place: the seeds
    count videos) while videos stay within ``max_videos``; the rest are not part of the corpus.
    """
    connection = session.connection()
    _lock_corpus(connection)
    depths, rows = _known(connection, [item.id for item in items])
    sighting = _sight(
        rows,
        items,
        depths,
        videos=_video_count(connection),
        source=source,
        parent_id=parent_id,
        depth=depth,
        run_id=run_id,
        seed=seed,
        max_new=max_new_videos,
        max_videos=max_videos,
        site_time=site_time,
    )
    rows.write(connection)
    return sighting


def _sight(
    rows: SightingRows,
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
    this batch, with their depths; the ones added here join it) and a corpus of ``videos`` videos. At most
    ``max_new`` new videos join, other kinds (photo posts, ads, private posts: recorded, never expanded)
    joining freely, as the seeds' places and ``--fanout`` count videos."""
    unique = list({item.id: item for item in items}.values())
    room = max_videos - videos
    seen: list[ItemRecord] = []
    new: list[ItemRecord] = []
    places_taken = 0  # of max_new
    for item in unique:
        if item.id not in known:
            counts_toward_target = stored_kind(item) == "video"
            if counts_toward_target and (places_taken >= max_new or room <= 0):
                continue
            places_taken += counts_toward_target
            room -= counts_toward_target
            videos += counts_toward_target
            new.append(item)
        seen.append(item)
    new_rows = {}
    for item in new:
        known[item.id] = depth
        new_rows[item.id] = new_video_row(
            item, source=source, parent_id=parent_id, depth=depth, run_id=run_id, seed=seed, now=rows.now
        )
    for item in seen:
        rows.sighted(item, source=source, run_id=run_id, site_time=site_time, new_row=new_rows.get(item.id))
    return Sighting(tuple(item.id for item in seen), tuple(item.id for item in new), videos)


def record_expansions(
    store: Store,
    expansions: Sequence[Expansion],
    *,
    fanout: int,
    max_videos: int,
    run_id: int | None,
    seed: int,
    worker: str | None = None,
) -> list[Sighting | None]:
    """Expansions, all or nothing, in ONE transaction, as if recorded one after another in their order:
    children, edges with ranks, snapshots, and each parent's status with the method that got its related
    list (``expand_method``). Their sightings, in the same order.

    With ``worker``, only the parents it still claims: one whose lease lapsed (a machine suspended past it)
    may be another worker's now, expanding it too; its list writes nothing and its sighting is None.

    A list that lands once the corpus holds ``max_videos`` (its fetch began before the last places went)
    writes nothing either, and its parent goes back to the frontier untried: recorded as expanded, with
    no child, it was never expanded by a later run asked for more videos, and its subtree was lost."""
    with store.transaction() as session:
        connection = session.connection()
        _lock_corpus(connection)
        parents = sorted({expansion.parent_id for expansion in expansions})
        ids = set(parents)
        ids.update(item.id for expansion in expansions for item in expansion.related.items)
        known, rows = _known(connection, sorted(ids))  # first: it takes the rows' locks in order
        held = set(parents) if worker is None else held_parents(connection, parents, worker)
        videos = _video_count(connection)
        sightings: list[Sighting | None] = []
        for expansion in expansions:
            parent_id = expansion.parent_id
            if parent_id not in held:
                sightings.append(None)
                continue
            if videos >= max_videos:
                rows.left_unexpanded.append(parent_id)
                sightings.append(Sighting((), (), videos, expanded=False))
                continue
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
    """One expansion in its own transaction (:func:`record_expansions` of one, whatever claims its parent)."""
    [sighting] = record_expansions(
        store, [Expansion(parent_id, related, method)], fanout=fanout, max_videos=max_videos, run_id=run_id, seed=seed
    )
    assert sighting is not None  # no worker: nothing is skipped
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
            max_new_videos=max(0, seeds - have),
            max_videos=max_videos,
            site_time=batch.site_time,
        )


# --- the counts ---------------------------------------------------------------------------------


def seed_count(store: Store) -> int:
    with store.sessions() as session:
        return _seed_count(session)


def corpus_video_count(store: Store) -> int:
    with store.sessions() as session:
        return _video_count(session.connection())


def downloaded_count(store: Store) -> int:
    with store.sessions() as session:
        return session.scalar(select(func.count()).select_from(Video).where(Video.download_status == "downloaded")) or 0
