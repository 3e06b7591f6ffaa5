"""Discovery, the way the paper built its corpus: For You seeds, then related-video expansion.

The frontier is the ``videos`` table: a video waits in ``expand_status = pending`` until a worker
claims it, fetches its related list and, in ONE transaction, adds up to ``fanout`` new videos, records
an edge (with rank) to every related video in the corpus, appends a stats snapshot per sighting and
marks the parent ``expanded``. A crawl killed at any moment therefore resumes where it stopped, and
several processes on one Postgres share the work through row claims.

``random`` expands in ``expand_order`` (a seeded hash of the id): the smallest key among the pending
rows is a uniformly random pick, and the order is the same in every process and after a restart.
``bfs`` expands by depth, then discovery time.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import socket
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Protocol, Sequence

from playwright.async_api import async_playwright
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .config import Settings
from .errors import BlockedError, ConfigError, ContractError, PersistentlyBlocked
from .store import queue
from .store.db import Store, open_store
from .store.models import (Author, CrawlRun, Hashtag, RelatedEdge, StatsSnapshot, Video, VideoHashtag,
                           utcnow)
from .tiktok.browser import (BlockMonitor, BlockPolicy, Pacer, WorkerSession, default_user_agent,
                             launch_browser)
from .tiktok.contract import ItemList, ItemRecord

log = logging.getLogger(__name__)

STRATEGIES = ("random", "bfs")
DEFAULT_DELAY_S = 2.0   # per worker, jittered: conservative for the real site
DEFAULT_MAX_RATE = 1.0  # requests per second across all workers of a process
# Serialises the "is there still room?" check with the inserts it allows, across processes (Postgres).
_CORPUS_LOCK_KEY = 0x7C0AF05
IDLE_POLL_S = 0.5


@dataclass(frozen=True)
class CrawlOptions:
    seeds: int = 25
    fanout: int = 5
    max_videos: int = 7522
    strategy: str = "random"
    workers: int = 1
    delay_s: float = DEFAULT_DELAY_S
    max_rate: float | None = DEFAULT_MAX_RATE  # None or 0: no global cap
    download: bool = True
    headful: bool = False
    seed: int = 0
    related_count: int = 16

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown --strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        for name in ("seeds", "fanout", "max_videos", "workers"):
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


def _insert(session: Session, table):
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    return dialect.insert(table)


def _lock_corpus(session: Session) -> None:
    """Make room checks and inserts atomic across processes (SQLite's BEGIN IMMEDIATE already does)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CORPUS_LOCK_KEY})


def _stored_kind(item: ItemRecord) -> str:
    return "private" if item.private else item.kind


def _media_urls_json(item: ItemRecord) -> list[dict]:
    return [{"kind": m.kind, "url": m.url, "data_size": m.data_size, "codec": m.codec} for m in item.media_urls]


def _item_columns(item: ItemRecord, now) -> dict[str, Any]:
    """The columns a sighting refreshes (latest wins; unknown values keep what was there)."""
    return {
        "author_id": item.author.id if item.author and item.author.id else None,
        "desc": item.desc, "create_time": item.create_time, "item_kind": _stored_kind(item),
        "declared_duration_s": item.duration_s, "declared_size": item.size,
        "declared_width": item.width, "declared_height": item.height, "codec": item.codec,
        "music_id": item.music_id, "music_title": item.music_title,
        "media_urls": _media_urls_json(item) or None, "last_seen_at": now,
    }


def _upsert_authors(session: Session, items: Sequence[ItemRecord], now) -> None:
    """Latest wins, but a field this sighting lacks keeps its stored value."""
    rows = {item.author.id: asdict(item.author) | {"updated_at": now}
            for item in items if item.author is not None and item.author.id}
    if not rows:
        return
    stmt = _insert(session, Author)
    refresh = {k: func.coalesce(stmt.excluded[k], getattr(Author, k)) for k in next(iter(rows.values())) if k != "id"}
    session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=refresh), list(rows.values()))


def _link_hashtags(session: Session, items: Sequence[ItemRecord]) -> None:
    tags = {name: tiktok_id for item in items for name, tiktok_id in item.hashtags}
    if not tags:
        return
    session.execute(_insert(session, Hashtag).on_conflict_do_nothing(index_elements=["name"]),
                    [{"name": name, "tiktok_id": tiktok_id} for name, tiktok_id in tags.items()])
    ids = dict(session.execute(select(Hashtag.name, Hashtag.id).where(Hashtag.name.in_(list(tags)))).all())
    links = [{"video_id": item.id, "hashtag_id": ids[name]} for item in items for name, _ in item.hashtags]
    session.execute(_insert(session, VideoHashtag).on_conflict_do_nothing(), links)


def _new_video_row(item: ItemRecord, *, source: str, parent_id: str | None, depth: int, run_id: int | None,
                   seed: int, now) -> dict[str, Any]:
    kind = _stored_kind(item)
    expandable = kind == "video"
    downloadable = item.downloadable
    return _item_columns(item, now) | {
        "id": item.id, "first_seen_at": now, "parent_id": parent_id, "depth": depth, "source": source,
        "crawl_run_id": run_id, "expand_order": expand_order_key(seed, item.id),
        "expand_status": "pending" if expandable else "skipped",
        "expand_error_kind": None if expandable else kind,
        "download_status": "pending" if downloadable else "skipped",
        "download_error_kind": None if downloadable else (kind if kind != "video" else "no_media_urls"),
    }


def _refresh_video(session: Session, item: ItemRecord, now) -> None:
    known = {k: v for k, v in _item_columns(item, now).items() if v is not None}
    session.execute(update(Video).where(Video.id == item.id).values(known)
                    .execution_options(synchronize_session=False))


def _snapshot_row(item: ItemRecord, source: str, run_id: int | None, now) -> dict[str, Any]:
    stats = asdict(item.stats) if item.stats is not None else {
        name: None for name in ("play_count", "like_count", "comment_count", "share_count", "collect_count",
                                "repost_count")} | {"exact": False}
    return {"video_id": item.id, "captured_at": now, "source": source, "crawl_run_id": run_id} | stats


def _video_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Video).where(Video.item_kind == "video")) or 0


@dataclass(frozen=True)
class Sighting:
    """What one batch added: the ids now in the corpus from this list and which of them are new."""

    in_corpus: tuple[str, ...]
    new: tuple[str, ...]


def record_sightings(session: Session, items: Sequence[ItemRecord], *, source: str, parent_id: str | None,
                     depth: int, run_id: int | None, seed: int, max_new: int, max_videos: int) -> Sighting:
    """Upsert the items of one list (a seed batch or a related list) inside the caller's transaction.

    Items already in the corpus are refreshed and get a snapshot; up to ``max_new`` unknown ones (in list
    order, while video items stay within ``max_videos``) are added; the rest are not part of the corpus.
    """
    _lock_corpus(session)
    now = utcnow()
    unique = list({item.id: item for item in items}.values())
    known = set(session.scalars(select(Video.id).where(Video.id.in_([i.id for i in unique]))))
    room = max_videos - _video_count(session)
    seen, new = [], []
    for item in unique:
        if item.id not in known:
            counts_toward_target = _stored_kind(item) == "video"
            if len(new) >= max_new or (counts_toward_target and room <= 0):
                continue
            room -= counts_toward_target
            new.append(item)
        seen.append(item)
    _upsert_authors(session, seen, now)
    if new:
        session.execute(_insert(session, Video).on_conflict_do_nothing(index_elements=["id"]),
                        [_new_video_row(item, source=source, parent_id=parent_id, depth=depth, run_id=run_id,
                                        seed=seed, now=now) for item in new])
    for item in seen:
        if item.id in known:
            _refresh_video(session, item, now)
    _link_hashtags(session, seen)
    if seen:
        session.execute(_insert(session, StatsSnapshot), [_snapshot_row(item, source, run_id, now) for item in seen])
    in_corpus, new_ids = tuple(item.id for item in seen), tuple(item.id for item in new)
    return Sighting(in_corpus, new_ids)


def record_expansion(store: Store, parent_id: str, related: ItemList, *, fanout: int, max_videos: int,
                     run_id: int | None, seed: int) -> Sighting:
    """One expansion, all or nothing: children, edges with ranks, snapshots and the parent's status."""
    with store.transaction() as session:
        depth = session.scalar(select(Video.depth).where(Video.id == parent_id))
        children = [item for item in related.items if item.id != parent_id]
        sighting = record_sightings(session, children, source="related", parent_id=parent_id,
                                    depth=(depth or 0) + 1, run_id=run_id, seed=seed, max_new=fanout,
                                    max_videos=max_videos)
        in_corpus = set(sighting.in_corpus)
        ranks: dict[str, int] = {}
        for rank, item in enumerate(children):
            if item.id in in_corpus:
                ranks.setdefault(item.id, rank)
        for child_id, rank in ranks.items():
            session.execute(_insert(session, RelatedEdge)
                            .values(parent_id=parent_id, child_id=child_id, rank=rank, first_seen_at=utcnow())
                            .on_conflict_do_nothing(index_elements=["parent_id", "child_id"]))
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


def claim_parent(store: Store, strategy: str, worker: str) -> str | None:
    ids = queue.claim(store, "expand", 1, order_by=frontier_order(strategy), where=[Video.item_kind == "video"],
                      worker=worker)
    return ids[0] if ids else None


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

    def _publish(self, videos: int | None = None) -> None:
        if videos is not None:
            self.counters.videos = videos
        self.counters.blocks = self.monitor.total
        if self.options.download:
            self.counters.downloaded = downloaded_count(self.store)
        if self.progress is not None:
            self.progress.update(self.counters)

    def _count(self, sighting: Sighting) -> None:
        self.counters.new_items += len(sighting.new)
        self.counters.snapshots += len(sighting.in_corpus)

    async def collect_seeds(self, session: WorkerSession) -> None:
        options = self.options

        def take(batch: ItemList) -> bool:
            sighting = record_seeds(self.store, batch, seeds=options.seeds, max_videos=options.max_videos,
                                    run_id=self.run_id, seed=options.seed)
            self._count(sighting)
            self._publish(corpus_video_count(self.store))
            return seed_count(self.store) >= options.seeds

        if seed_count(self.store) < options.seeds:
            await session.recommended(take)

    async def expand_loop(self, session: WorkerSession) -> None:
        options = self.options
        worker = queue.worker_name(session.name)
        while not self.done.is_set():
            videos = corpus_video_count(self.store)
            self._publish(videos)
            if videos >= options.max_videos:
                self.done.set()
                return
            parent_id = claim_parent(self.store, options.strategy, worker)
            if parent_id is None:
                pending, claimed = frontier_state(self.store)
                if not pending and not claimed:
                    self.done.set()
                    return
                await asyncio.sleep(IDLE_POLL_S)  # another worker's expansion may still add videos
                continue
            await self._expand(session, parent_id)

    async def _expand(self, session: WorkerSession, parent_id: str) -> None:
        try:
            related = await session.related(parent_id, self.options.related_count)
        except PersistentlyBlocked:
            queue.release(self.store, "expand", [parent_id])
            raise
        except BlockedError:
            # The block is about us, not the video: it goes back to the frontier for a later try.
            queue.release(self.store, "expand", [parent_id])
            self.counters.errors["blocked"] += 1
            return
        except ContractError as exc:
            with self.store.transaction() as db:
                queue.finish(db, "expand", parent_id, "failed", error_kind=exc.kind, error=exc.message)
            self.counters.errors[exc.kind] += 1
            return
        except BaseException:
            queue.release(self.store, "expand", [parent_id])
            raise
        sighting = record_expansion(self.store, parent_id, related, fanout=self.options.fanout,
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
                    await first.save_session(self.settings.data_dir / "session")
                    download_task = await self._start_downloads(first, user_agent)
                    await asyncio.gather(self.collect_seeds(first), *(s.start() for s in self.sessions[1:]))
                    await asyncio.gather(*(self.expand_loop(s) for s in self.sessions))
                    videos = corpus_video_count(self.store)
                    status = "target_reached" if videos >= options.max_videos else "frontier_exhausted"
                except PersistentlyBlocked as exc:
                    status, message = "blocked", exc.message
                except BlockedError as exc:  # a session never got past the blocks in its retries
                    status, message = "blocked", f"persistently blocked: {exc.message}"
                finally:
                    self.done.set()
                    if download_task is not None:
                        downloads = await self._finish_downloads(download_task)
                    if first.context is not None:
                        await first.save_session(self.settings.data_dir / "session")
            except BaseException:
                end_run(self.store, self.run_id, "failed", asdict(self.counters))
                raise
            finally:
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
        return (await task).as_dict()

    def _summarise(self, status: str, message: str | None, downloads, elapsed: float) -> CrawlSummary:
        counters = self.counters
        counters.videos = corpus_video_count(self.store)
        counters.blocks = self.monitor.total
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
    store = open_store(settings)
    try:
        summary = asyncio.run(crawl_async(store, settings, options, policy=policy, progress=progress))
    finally:
        store.dispose()
    if summary.status == "blocked":
        raise PersistentlyBlocked(summary.message or "persistently blocked")
    return summary


class LiveCrawlDisplay:
    """A rich live line: found / target, expansions, downloads, blocks and discovery rate."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("crawl"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                                  console=console, transient=False)
        self._task = self._progress.add_task("crawl", total=None, detail="")
        self._started = time.monotonic()

    def __enter__(self) -> "LiveCrawlDisplay":
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._progress.stop()

    def update(self, counters: CrawlCounters) -> None:
        rate = counters.new_items / max(time.monotonic() - self._started, 1e-9)
        detail = (f"expansions {counters.expansions}  downloads {counters.downloaded}  "
                  f"blocks {counters.blocks}  {rate:.2f} new/s")
        self._progress.update(self._task, completed=counters.videos, total=counters.target, detail=detail)


def summary_lines(summary: CrawlSummary) -> Iterable[str]:
    yield (f"crawl {summary.status}: {summary.videos}/{summary.target} videos, {summary.seeds} seeds, "
           f"{summary.new_items} new items, {summary.expansions} expansions, {summary.edges} edges "
           f"in {summary.elapsed_s:.1f}s ({summary.videos_per_s:.2f} new/s)")
    if summary.blocks:
        kinds = ", ".join(f"{k}={n}" for k, n in sorted(summary.block_kinds.items()))
        yield f"blocks: {summary.blocks} ({kinds}); context recycles: {summary.recycles}"
    if summary.errors:
        yield "errors: " + ", ".join(f"{k}={n}" for k, n in sorted(summary.errors.items()))
    if summary.downloads:
        yield "downloads: " + ", ".join(f"{k}={v}" for k, v in summary.downloads.items())
