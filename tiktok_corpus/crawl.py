"""Discovery, the way the paper built its corpus: For You seeds, then related-video expansion.

The frontier is the ``videos`` table: a video waits in ``expand_status = pending`` until a worker
claims it, fetches its related list and, in ONE transaction, adds up to ``fanout`` new videos, records
an edge (with rank) to every related video in the corpus, appends a stats snapshot per sighting and
marks the parent ``expanded``. A crawl killed at any moment therefore resumes where it stopped, and
several processes on one Postgres share the work through row claims.

``random`` expands in ``expand_order`` (a seeded hash of the id): the smallest key among the pending
rows is a uniformly random pick, and the order is the same in every process and after a restart.
``bfs`` expands by depth, then discovery time.

The pages' fetches run on the event loop; the claims and expansion writes go, in order, to one
database thread, so a transaction in progress never holds up the pages (the downloader does the same).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import socket
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol, Sequence

from playwright.async_api import async_playwright
from sqlalchemy import JSON, bindparam, func, select, text, update
from sqlalchemy.orm import Session

from .config import Settings, described
from .errors import BlockedError, ConfigError, ContractError, PersistentlyBlocked
from .store import queue
from .store.db import Store, dialect_insert, open_store, table_insert
from .store.thread import DatabaseThread
from .store.models import (Author, CrawlRun, Hashtag, RelatedEdge, StatsSnapshot, Video, VideoHashtag,
                           utcnow)
from .tiktok.browser import (BlockMonitor, BlockPolicy, Pacer, WorkerSession, default_user_agent,
                             launch_browser)
from .tiktok.session_files import session_dir
from .tiktok.contract import AuthorRecord, ItemList, ItemRecord, StatsRecord, media_urls_json

log = logging.getLogger(__name__)
# The expansion's hot statements run on the table through the session's connection: Core execution
# skips the ORM's per-statement work, a few hundred microseconds each.
_VIDEOS = Video.__table__

STRATEGIES = ("random", "bfs")
# Serialises the "is there still room?" check with the inserts it allows, across processes (Postgres).
_CORPUS_LOCK_KEY = 0x7C0AF05
IDLE_POLL_S = 0.5
PUBLISH_EVERY_S = 0.25  # the live display needs no more, and downloads are counted with a query


@dataclass(frozen=True)
class CrawlOptions:
    """One crawl's parameters; the defaults are the paper's method, paced for the real site."""

    seeds: int = described(25, "Distinct For You videos to start from.")
    fanout: int = described(5, "New related videos added per expansion.")
    max_videos: int = described(7522, "Stop once the corpus holds this many videos.")
    strategy: str = described("random", "Frontier policy: random | bfs.")
    workers: int = described(1, "Browser workers in this process.")
    delay_s: float = described(2.0, "Politeness delay per worker (s, jittered): conservative for the real site.")
    max_rate: float | None = described(1.0, "Requests per second across all workers of this process "
                                       "(0: no cap).")
    download: bool = described(True, "Download files while discovering.")
    headful: bool = described(False, "Show the browser (solve a captcha).")
    seed: int = described(0, "RNG seed of the frontier policy.")
    related_count: int = 16
    # Related-list fetches each worker page keeps in flight: hides the answer latency, while the
    # per-worker delay still spaces their starts (see WorkerSession.fetch_text).
    in_flight: int = described(4, "Related-list fetches each worker keeps running at once (still paced "
                               "by --delay and --max-rate).")

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown --strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        for name in ("seeds", "fanout", "max_videos", "workers", "in_flight"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        if self.seeds > self.max_videos:
            raise ConfigError("--seeds cannot exceed --max-videos")
        if self.delay_s < 0 or (self.max_rate or 0) < 0:
            raise ConfigError("--delay and --max-rate cannot be negative")


@dataclass
class CrawlCounters:
    """What the live display shows and the summary reports (this process only, except ``videos``)."""

    videos: int = 0          # video items in the corpus (all processes)
    target: int = 0
    new_items: int = 0
    expansions: int = 0
    edges: int = 0
    snapshots: int = 0
    blocks: int = 0
    downloaded: int = 0
    errors: Counter = field(default_factory=Counter)


@dataclass
class CrawlSummary:
    run_id: int
    status: str  # target_reached | frontier_exhausted | blocked
    videos: int
    target: int
    seeds: int
    new_items: int
    expansions: int
    edges: int
    snapshots: int
    blocks: int
    block_kinds: dict[str, int]
    errors: dict[str, int]
    recycles: int
    elapsed_s: float
    videos_per_s: float
    downloads: dict[str, Any] | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CrawlProgress(Protocol):
    def update(self, counters: CrawlCounters) -> None: ...


# --- persistence ---------------------------------------------------------------------------------

def expand_order_key(seed: int, video_id: str) -> float:
    """A seeded pseudo-random key in [0, 1), the same in every process and on every restart."""
    digest = hashlib.blake2b(f"{seed}:{video_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 64


def _insert_ignoring(session: Session, model, *conflict_columns: str):
    """``INSERT ... ON CONFLICT (columns) DO NOTHING`` (any conflict when none are named), built once."""
    return _built_insert_ignoring(session.get_bind().dialect.name, model, conflict_columns)


@functools.cache
def _built_insert_ignoring(dialect_name: str, model, conflict_columns: tuple[str, ...]):
    return table_insert(dialect_name, model).on_conflict_do_nothing(index_elements=list(conflict_columns) or None)


@functools.cache
def _author_upsert(dialect_name: str):
    """Built once per dialect: an expansion's writes are a few statements, so building them is a real cost."""
    stmt = table_insert(dialect_name, Author)
    table = Author.__table__
    refresh = {name: func.coalesce(stmt.excluded[name], table.c[name])
               for name in [field.name for field in fields(AuthorRecord)] + ["updated_at"] if name != "id"}
    return stmt.on_conflict_do_update(index_elements=["id"], set_=refresh)


@functools.cache
def _video_refresh():
    """One UPDATE for every re-sighted video of a list; a value this sighting lacks (NULL) keeps the stored one."""
    table = Video.__table__

    def refreshed(name: str):  # JSON None must bind as SQL NULL for coalesce to keep the old value
        kind = JSON(none_as_null=True) if name == "media_urls" else table.c[name].type
        return func.coalesce(bindparam(f"b_{name}", type_=kind), table.c[name])

    return (update(table).where(table.c.id == bindparam("b_id"))
            .values({name: refreshed(name) for name in _REFRESHED_COLUMNS}))


def _lock_corpus(session: Session) -> None:
    """Make room checks and inserts atomic across processes (SQLite's BEGIN IMMEDIATE already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CORPUS_LOCK_KEY})


def _stored_kind(item: ItemRecord) -> str:
    return "private" if item.private else item.kind


_REFRESHED_COLUMNS = ("author_id", "desc", "create_time", "item_kind", "declared_duration_s", "declared_size",
                      "declared_width", "declared_height", "codec", "music_id", "music_title", "media_urls",
                      "last_seen_at")


def _item_columns(item: ItemRecord, now) -> dict[str, Any]:
    """The columns a sighting refreshes (latest wins; unknown values keep what was there): _REFRESHED_COLUMNS."""
    return {
        "author_id": item.author.id if item.author and item.author.id else None,
        "desc": item.desc, "create_time": item.create_time, "item_kind": _stored_kind(item),
        "declared_duration_s": item.duration_s, "declared_size": item.size,
        "declared_width": item.width, "declared_height": item.height, "codec": item.codec,
        "music_id": item.music_id, "music_title": item.music_title,
        "media_urls": media_urls_json(item.media_urls) or None, "last_seen_at": now,
    }


def _upsert_authors(session: Session, items: Sequence[ItemRecord], now) -> None:
    """Latest wins, but a field this sighting lacks keeps its stored value."""
    rows = {item.author.id: vars(item.author) | {"updated_at": now}
            for item in items if item.author is not None and item.author.id}
    if rows:
        session.connection().execute(_author_upsert(session.get_bind().dialect.name), list(rows.values()))


def _link_hashtags(session: Session, items: Sequence[ItemRecord]) -> None:
    tags = {name: tiktok_id for item in items for name, tiktok_id in item.hashtags}
    if not tags:
        return
    session.connection().execute(_insert_ignoring(session, Hashtag, "name"),
                                 [{"name": name, "tiktok_id": tiktok_id} for name, tiktok_id in tags.items()])
    hashtags = Hashtag.__table__
    ids = dict(session.connection().execute(select(hashtags.c.name, hashtags.c.id)
                                            .where(hashtags.c.name.in_(list(tags)))).all())
    links = [{"video_id": item.id, "hashtag_id": ids[name]} for item in items for name, _ in item.hashtags]
    session.connection().execute(_insert_ignoring(session, VideoHashtag), links)


def _new_video_row(item: ItemRecord, *, source: str, parent_id: str | None, depth: int, run_id: int | None,
                   seed: int, now) -> dict[str, Any]:
    kind = _stored_kind(item)
    no_file = kind if kind != "video" else "no_media_urls"  # why neither download nor probe has work
    return (_item_columns(item, now)
            | {"id": item.id, "first_seen_at": now, "parent_id": parent_id, "depth": depth, "source": source,
               "crawl_run_id": run_id, "expand_order": expand_order_key(seed, item.id)}
            | _stage_start("expand", kind == "video", kind)
            | _stage_start("download", item.downloadable, no_file)
            | _stage_start("probe", item.downloadable, no_file))


def _stage_start(stage: str, has_work: bool, why_not: str) -> dict[str, Any]:
    """A new row's queue columns for one stage: pending work, or skipped with the reason."""
    return {f"{stage}_status": "pending" if has_work else "skipped",
            f"{stage}_error_kind": None if has_work else why_not}


def _refresh_videos(session: Session, items: Sequence[ItemRecord], now) -> None:
    if items:
        rows = [{"b_id": item.id} | {f"b_{name}": value for name, value in _item_columns(item, now).items()}
                for item in items]
        session.connection().execute(_video_refresh(), rows)


def _snapshot_row(item: ItemRecord, source: str, run_id: int | None, now) -> dict[str, Any]:
    stats = vars(item.stats or StatsRecord())
    return {"video_id": item.id, "captured_at": now, "source": source, "crawl_run_id": run_id} | stats


def _video_count(session: Session) -> int:
    return session.connection().scalar(select(func.count()).select_from(_VIDEOS)
                                       .where(_VIDEOS.c.item_kind == "video")) or 0


@dataclass(frozen=True)
class Sighting:
    """What one batch added: the ids now in the corpus from this list, which of them are new, and the
    corpus's video count once it lands (so callers need no count query of their own)."""

    in_corpus: tuple[str, ...]
    new: tuple[str, ...]
    videos: int


def record_sightings(session: Session, items: Sequence[ItemRecord], *, source: str, parent_id: str | None,
                     depth: int, run_id: int | None, seed: int, max_new: int, max_videos: int) -> Sighting:
    """Upsert the items of one list (a seed batch or a related list) inside the caller's transaction.

    Items already in the corpus are refreshed and get a snapshot; up to ``max_new`` unknown ones (in list
    order, while video items stay within ``max_videos``) are added; the rest are not part of the corpus.
    """
    _lock_corpus(session)
    now = utcnow()
    unique = list({item.id: item for item in items}.values())
    known = set(session.connection().scalars(select(_VIDEOS.c.id).where(_VIDEOS.c.id.in_([i.id for i in unique]))))
    videos = _video_count(session)
    room = max_videos - videos
    seen, new = [], []
    for item in unique:
        if item.id not in known:
            counts_toward_target = _stored_kind(item) == "video"
            if len(new) >= max_new or (counts_toward_target and room <= 0):
                continue
            room -= counts_toward_target
            videos += counts_toward_target
            new.append(item)
        seen.append(item)
    _upsert_authors(session, seen, now)
    if new:
        session.connection().execute(_insert_ignoring(session, Video, "id"), [
            _new_video_row(item, source=source, parent_id=parent_id, depth=depth, run_id=run_id, seed=seed,
                           now=now) for item in new])
    _refresh_videos(session, [item for item in seen if item.id in known], now)
    _link_hashtags(session, seen)
    if seen:
        session.connection().execute(dialect_insert(session, StatsSnapshot),
                                     [_snapshot_row(item, source, run_id, now) for item in seen])
    return Sighting(tuple(item.id for item in seen), tuple(item.id for item in new), videos)


def record_expansion(store: Store, parent_id: str, related: ItemList, *, fanout: int, max_videos: int,
                     run_id: int | None, seed: int) -> Sighting:
    """One expansion, all or nothing: children, edges with ranks, snapshots and the parent's status."""
    with store.transaction() as session:
        depth = session.connection().scalar(select(_VIDEOS.c.depth).where(_VIDEOS.c.id == parent_id))
        children = [item for item in related.items if item.id != parent_id]
        sighting = record_sightings(session, children, source="related", parent_id=parent_id,
                                    depth=(depth or 0) + 1, run_id=run_id, seed=seed, max_new=fanout,
                                    max_videos=max_videos)
        in_corpus = set(sighting.in_corpus)
        ranks: dict[str, int] = {}
        for rank, item in enumerate(children):
            if item.id in in_corpus:
                ranks.setdefault(item.id, rank)
        if ranks:
            now = utcnow()
            edges = _insert_ignoring(session, RelatedEdge, "parent_id", "child_id")
            session.connection().execute(edges, [{"parent_id": parent_id, "child_id": child_id, "rank": rank,
                                                  "first_seen_at": now} for child_id, rank in ranks.items()])
        queue.finish(session, "expand", parent_id, "expanded")
    return sighting


def record_seeds(store: Store, batch: ItemList, *, seeds: int, max_videos: int, run_id: int | None,
                 seed: int) -> Sighting:
    """A For You batch: new videos become seeds until the corpus holds ``seeds`` of them."""
    with store.transaction() as session:
        _lock_corpus(session)
        have = _seed_count(session)
        return record_sightings(session, batch.items, source="foryou", parent_id=None, depth=0, run_id=run_id,
                                seed=seed, max_new=max(0, seeds - have), max_videos=max_videos)


def _seed_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Video).where(Video.source == "foryou")) or 0


def seed_count(store: Store) -> int:
    with store.sessions() as session:
        return _seed_count(session)


def corpus_video_count(store: Store) -> int:
    with store.sessions() as session:
        return _video_count(session)


def downloaded_count(store: Store) -> int:
    with store.sessions() as session:
        return session.scalar(select(func.count()).select_from(Video)
                              .where(Video.download_status == "downloaded")) or 0


def frontier_order(strategy: str) -> list:
    return [Video.expand_order] if strategy == "random" else [Video.depth, Video.first_seen_at]


def claim_parents(store: Store, strategy: str, worker: str, limit: int = 1) -> list[str]:
    """The next ``limit`` frontier rows in the strategy's order, claimed in one transaction."""
    return queue.claim(store, "expand", limit, order_by=frontier_order(strategy),
                       where=[Video.item_kind == "video"], worker=worker)


def frontier_state(store: Store) -> tuple[int, int]:
    """(pending, claimed) expandable rows, across every process."""
    with store.sessions() as session:
        rows = dict(session.execute(select(Video.expand_status, func.count())
                                    .where(Video.expand_status.in_(["pending", "claimed"]))
                                    .group_by(Video.expand_status)).all())
    return rows.get("pending", 0), rows.get("claimed", 0)


def start_run(store: Store, options: CrawlOptions, base_url: str) -> int:
    params = asdict(options) | {"base_url": base_url}
    with store.transaction() as session:
        run = CrawlRun(params=params, host=socket.gethostname(), status="running")
        session.add(run)
        session.flush()
        return run.id


def end_run(store: Store, run_id: int, status: str, counts: dict[str, Any]) -> None:
    with store.transaction() as session:
        session.execute(update(CrawlRun).where(CrawlRun.id == run_id)
                        .values(status=status, finished_at=utcnow(), counts=counts))


# --- the crawl -----------------------------------------------------------------------------------

class _Crawl:
    """One process's crawl: seeds, then ``workers`` expansion loops sharing one browser."""

    def __init__(self, store: Store, settings: Settings, options: CrawlOptions, *,
                 policy: BlockPolicy, progress: CrawlProgress | None, rng: random.Random) -> None:
        self.store = store
        self.settings = settings
        self.options = options
        self.progress = progress
        self.monitor = BlockMonitor(policy)
        self.policy = policy
        self.pacer = Pacer(options.delay_s, options.max_rate or None, rng)
        self.counters = CrawlCounters(target=options.max_videos)
        self.run_id = 0
        self.sessions: list[WorkerSession] = []
        self.done = asyncio.Event()
        self._published_at = 0.0
        # Parents a worker has claimed (one claim per ``in_flight`` of them) but not yet started.
        self._claimed: dict[str, deque[str]] = {}
        self._claiming: dict[str, asyncio.Lock] = {}
        # The expansion loops' claims and writes run here, in order, so the event loop keeps feeding
        # the pages while an expansion is recorded.
        self._db = DatabaseThread("crawl")

    def _publish(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._published_at < PUBLISH_EVERY_S:
            return
        self._published_at = time.monotonic()
        self.counters.blocks = self.monitor.total
        if self.options.download:
            self.counters.downloaded = downloaded_count(self.store)
        if self.progress is not None:
            self.progress.update(self.counters)

    def _count(self, sighting: Sighting) -> None:
        self.counters.new_items += len(sighting.new)
        self.counters.snapshots += len(sighting.in_corpus)
        self.counters.videos = sighting.videos  # counted inside the write's lock: current for all processes

    async def collect_seeds(self, session: WorkerSession) -> None:
        options = self.options

        def take(batch: ItemList) -> bool:
            sighting = record_seeds(self.store, batch, seeds=options.seeds, max_videos=options.max_videos,
                                    run_id=self.run_id, seed=options.seed)
            self._count(sighting)
            self._publish()
            return seed_count(self.store) >= options.seeds

        if seed_count(self.store) < options.seeds:
            await session.recommended(take)

    async def expand_loop(self, session: WorkerSession) -> None:
        """One of a worker page's ``in_flight`` loops: claim a parent, fetch its related list, record it.

        The video count comes from the last expansion's own transaction; another process's additions
        show up there too, so the loop stops at the target without a count query per round.
        """
        options = self.options
        worker = queue.worker_name(session.name)
        while not self.done.is_set():
            self._publish()
            if self.counters.videos >= options.max_videos:
                self.done.set()
                return
            parent_id = await self._next_parent(session.name, worker)
            if parent_id is None:
                pending, claimed = await self._db(frontier_state, self.store)
                if not pending and not claimed:
                    self.done.set()
                    return
                await asyncio.sleep(IDLE_POLL_S)  # another worker's expansion may still add videos
                continue
            await self._expand(session, parent_id)

    async def _next_parent(self, name: str, worker: str) -> str | None:
        """A parent for one of the worker's loops; one claim refills for all of them.

        The claimed ids enter the worker's deque on the database thread, in the claim's own call, so a
        loop cancelled while waiting still leaves them where ``_release_unstarted`` gives them back.
        """
        claimed = self._claimed.setdefault(name, deque())
        async with self._claiming.setdefault(name, asyncio.Lock()):
            if not claimed:
                await self._db(lambda: claimed.extend(
                    claim_parents(self.store, self.options.strategy, worker, self.options.in_flight)))
        return claimed.popleft() if claimed else None

    def _release_unstarted(self) -> None:
        queue.release(self.store, "expand", [parent for claimed in self._claimed.values() for parent in claimed])
        self._claimed.clear()

    def _fail_parent(self, parent_id: str, error: ContractError) -> None:
        with self.store.transaction() as db:
            queue.finish(db, "expand", parent_id, "failed", error_kind=error.kind, error=error.message)

    async def _expand(self, session: WorkerSession, parent_id: str) -> None:
        try:
            related = await session.related(parent_id, self.options.related_count)
        except BlockedError:
            # The block is about us, not the video: it goes back to the frontier for a later try.
            await self._db(queue.release, self.store, "expand", [parent_id])
            self.counters.errors["blocked"] += 1
            return
        except ContractError as exc:
            await self._db(self._fail_parent, parent_id, exc)
            self.counters.errors[exc.kind] += 1
            return
        except BaseException:
            queue.release(self.store, "expand", [parent_id])
            raise
        sighting = await self._db(record_expansion, self.store, parent_id, related, fanout=self.options.fanout,
                                  max_videos=self.options.max_videos, run_id=self.run_id, seed=self.options.seed)
        self._count(sighting)
        self.counters.expansions += 1
        self.counters.edges += len(sighting.in_corpus)

    async def run(self) -> CrawlSummary:
        options, started = self.options, time.monotonic()
        queue.reclaim_dead_local(self.store, "expand")
        self.run_id = start_run(self.store, options, self.settings.base_url)
        status, message, downloads = "running", None, None
        async with async_playwright() as playwright:
            browser = await launch_browser(playwright, self.settings, headful=options.headful)
            try:
                user_agent = await default_user_agent(browser)
                self.sessions = [WorkerSession(browser, self.settings.base_url, policy=self.policy,
                                               monitor=self.monitor, pacer=self.pacer, user_agent=user_agent,
                                               name=f"w{i}") for i in range(options.workers)]
                first, download_task = self.sessions[0], None
                try:
                    await first.start()
                    await first.save_session(session_dir(self.settings))
                    download_task = await self._start_downloads(first, user_agent)
                    await asyncio.gather(self.collect_seeds(first), *(s.start() for s in self.sessions[1:]))
                    self.counters.videos = corpus_video_count(self.store)
                    await asyncio.gather(*(self.expand_loop(s) for s in self.sessions
                                           for _ in range(options.in_flight)))
                    videos = corpus_video_count(self.store)
                    status = "target_reached" if videos >= options.max_videos else "frontier_exhausted"
                except PersistentlyBlocked as exc:
                    status, message = "blocked", exc.message
                except BlockedError as exc:  # a session never got past the blocks in its retries
                    status, message = "blocked", f"persistently blocked: {exc.message}"
                finally:
                    self.done.set()
                    await self._db(self._release_unstarted)  # after the writes queued before it
                    if download_task is not None:
                        downloads = await self._finish_downloads(download_task)
                    if first.context is not None:
                        await first.save_session(session_dir(self.settings))
            except BaseException:
                end_run(self.store, self.run_id, "failed", asdict(self.counters))
                raise
            finally:
                self._db.shutdown()
                for session in self.sessions:
                    await session.close()
                await browser.close()
        return self._summarise(status, message, downloads, time.monotonic() - started)

    async def _start_downloads(self, session: WorkerSession, user_agent: str) -> asyncio.Task | None:
        if not self.options.download:
            return None
        from .download import download_pending  # the download stage, run alongside discovery

        self.download_follow = asyncio.Event()
        cookies = await session.cookies()
        return asyncio.create_task(download_pending(self.store, self.settings, cookies=cookies,
                                                    user_agent=user_agent, follow=self.download_follow))

    async def _finish_downloads(self, task: asyncio.Task) -> dict[str, Any]:
        """Discovery is over: the download stage drains what is pending, then reports."""
        self.download_follow.set()
        return (await task).to_dict()

    def _summarise(self, status: str, message: str | None, downloads, elapsed: float) -> CrawlSummary:
        counters = self.counters
        counters.videos = corpus_video_count(self.store)
        self._publish(force=True)
        summary = CrawlSummary(
            run_id=self.run_id, status=status, videos=counters.videos, target=counters.target,
            seeds=seed_count(self.store), new_items=counters.new_items, expansions=counters.expansions,
            edges=counters.edges, snapshots=counters.snapshots, blocks=counters.blocks,
            block_kinds=dict(self.monitor.kinds), errors=dict(counters.errors),
            recycles=sum(s.recycles for s in self.sessions), elapsed_s=round(elapsed, 3),
            videos_per_s=round(counters.new_items / elapsed, 3) if elapsed else 0.0,
            downloads=downloads, message=message)
        end_run(self.store, self.run_id, status, {k: v for k, v in summary.as_dict().items()
                                                  if k not in ("message",)})
        return summary


async def crawl_async(store: Store, settings: Settings, options: CrawlOptions, *,
                      policy: BlockPolicy | None = None, progress: CrawlProgress | None = None,
                      rng: random.Random | None = None) -> CrawlSummary:
    """Run (or resume) a crawl in the running event loop; returns its summary.

    Raises :class:`PersistentlyBlocked` only through :func:`crawl`; here a blocked run ends with
    ``status == "blocked"`` so callers can still read its counts.
    """
    options.validate()
    crawl = _Crawl(store, settings, options, policy=policy or BlockPolicy(), progress=progress,
                   rng=rng or random.Random(options.seed))
    return await crawl.run()


def crawl(settings: Settings, options: CrawlOptions, *, progress: CrawlProgress | None = None,
          policy: BlockPolicy | None = None) -> CrawlSummary:
    """``corpus crawl``: open the store, crawl, close; a persistently blocked run raises
    :class:`PersistentlyBlocked` (exit code 3) after its summary is saved in ``crawl_runs``."""
    options.validate()
    with open_store(settings) as store:
        summary = asyncio.run(crawl_async(store, settings, options, policy=policy, progress=progress))
    if summary.status == "blocked":
        raise PersistentlyBlocked(summary.message or "persistently blocked")
    return summary
