"""Crawl throughput and memory against the replica.

Baseline (the limit): the same discovery (seeds from the recommend API, then related-list expansion with the
same fanout, random frontier picks) done by fetching the JSON endpoints directly with httpx and no browser,
with as many requests in flight as the crawler has (workers x in-flight per worker page).
Measured: `corpus crawl`'s library entry with --workers 4, zero delay, no rate cap, no downloads, on SQLite,
browser start-up included. The replica runs as a `corpus replica serve` subprocess for both, so its CPU is
spent outside the measured process in both. The ratio crawler / baseline is the result (goal >= 0.5).
With --memory-minutes M, a long paced crawl samples resident memory (this process plus Chromium and the
Playwright driver, not the replica) and prints the ratio at minute M to minute 1 (goal <= 1.2).

The default target is the paper's corpus (7,522 videos) in a 10,000-video catalog served without media
files (the crawl never fetches them), so browser start-up (~2 s) weighs as it does in real use.

With --methods fetch,signed,page (issue #14) it compares the related-list methods instead, each against a
bare-browser ceiling of its own kind, in rounds; one replica process serves every run (started from
bench/_replica.py so its request counters can be read; no media), its signing switched between runs:

- crawl METHOD: `--related-via METHOD` under the signing that makes it the method the site demands (fetch:
  none, signed: xbogus, page: gnarly; signed also under none), --workers 4, 4 in flight each, target
  --target (1,500 in a 2,500 catalog) or --page-target (500) for page;
- ceiling: the same browser set-up (4 contexts, 4 requests in flight each) doing as many lists as that crawl
  expanded and nothing else: `fetch` / `signed` run the crawler's own in-page fetch JS (signed: with
  frontierSign's X-Bogus) in each context's For You page; `navigate` keeps 4 pages per context, each opening
  /@_/video/{id} and waiting for the related list the page requests itself (body read);
- per run: videos/s (whole run, and once expanding: first expansion to target), related lists/s, CPU ms per
  discovered video (whole run) and per list (once expanding / the ceiling's timed part) for the crawler's
  Python, the Playwright driver, Chromium and the replica, each read from /proc; requests per video (the
  replica's counters: API calls, page loads);
- ratio: crawl lists/s once expanding / ceiling lists/s (goals: fetch and signed >= 0.8, page >= 0.5).
  Crawl and ceiling run back to back, the crawl first in odd rounds and the ceiling first in even ones.

    .venv/bin/python bench/bench_crawl.py [--videos 10000] [--target 7522] [--repeat 2] [--memory-minutes 10]
    .venv/bin/python bench/bench_crawl.py --methods fetch,signed,page [--videos 2500] [--target 1500]
        [--page-target 500] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
from _replica import CountedReplica, counted_replica, served_replica  # bench/ is the script's directory
from playwright.async_api import Page, async_playwright

from tiktok_corpus.config import Settings
from tiktok_corpus.crawl import CrawlCounters, CrawlOptions, CrawlSummary, crawl_async
from tiktok_corpus.errors import ContractError
from tiktok_corpus.replica import build_catalog
from tiktok_corpus.store.db import open_store
from tiktok_corpus.tiktok.browser import _FETCH_JS, FORYOU_PATH, default_user_agent, launch_browser
from tiktok_corpus.tiktok.contract import (
    page_url,
    parse_item_list,
    recommend_api_path,
    related_api_path,
    related_list_item_id,
)

SEEDS, FANOUT, WORKERS, IN_FLIGHT = 25, 5, 4, CrawlOptions().in_flight


async def direct_discovery(base_url: str, target: int, in_flight: int) -> float:
    """Videos discovered per second fetching the JSON endpoints directly (the limit)."""
    known: list[str] = []
    seen: set[str] = set()
    frontier: list[str] = []
    rng = random.Random(0)
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        while len(known) < SEEDS:
            batch = parse_item_list((await client.get(recommend_api_path(30))).content)
            for item in batch.items:
                if item.id not in seen and len(known) < SEEDS:
                    seen.add(item.id)
                    known.append(item.id)
                    frontier.append(item.id)

        videos, busy = len(known), 0

        async def expand(parent: str) -> None:
            nonlocal videos
            try:
                related = parse_item_list((await client.get(related_api_path(parent))).content)
            except ContractError:  # deleted / private parent: the crawler marks it failed too
                return
            added = 0
            for item in related.items:
                if item.id not in seen and added < FANOUT and videos < target:
                    seen.add(item.id)
                    known.append(item.id)
                    added += 1
                    if item.kind == "video" and not item.private:
                        videos += 1
                        frontier.append(item.id)

        async def worker() -> None:  # pipelined like the crawler's loops: no batch waits for its slowest
            nonlocal busy
            while videos < target and (frontier or busy):
                if not frontier:
                    await asyncio.sleep(0.005)
                    continue
                busy += 1
                try:
                    await expand(frontier.pop(rng.randrange(len(frontier))))
                finally:
                    busy -= 1

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return len(known) / (time.perf_counter() - started)


def tree_rss(process: psutil.Process, exclude: set[int]) -> int:
    """Resident bytes of ``process`` and its descendants, leaving out the ``exclude`` pids' trees."""
    skip = set(exclude)
    for pid in exclude:
        with contextlib.suppress(psutil.Error):
            skip.update(child.pid for child in psutil.Process(pid).children(recursive=True))
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        if proc.pid in skip:
            continue
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


class MemorySampler(threading.Thread):
    """Resident memory of this process and its children (Chromium), sampled every few seconds."""

    def __init__(self, exclude: set[int], every_s: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.exclude = exclude
        self.samples: list[tuple[float, int]] = []
        self.every_s = every_s
        self.stop = threading.Event()
        self.started = time.perf_counter()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(self.every_s):
            self.samples.append((time.perf_counter() - self.started, tree_rss(me, self.exclude)))

    def at(self, seconds: float) -> int:
        return min(self.samples, key=lambda s: abs(s[0] - seconds))[1]


@dataclass(frozen=True)
class Mark:
    """The crawl's counters as the live display saw them at one moment, and the CPU readings then."""

    at: float
    items: int
    expansions: int
    cpu: dict[str, float] | None = None


class ExpansionClock:
    """Notes when expansion starts (the live display's first update with an expansion), so the rate
    after start-up (browser, contexts, seeds) can be told apart from the rate including it; and when
    the display first shows the target reached, before the crawl closes its browser. With ``probe``
    (a :meth:`CpuMeter.read`) the CPU readings at both moments are kept too."""

    def __init__(self, probe: Callable[[], dict[str, float]] | None = None) -> None:
        self.probe = probe
        self.first: Mark | None = None  # expansion started
        self.last: Mark | None = None  # target reached

    @property
    def at(self) -> float | None:
        return self.first.at if self.first else None

    @property
    def items_then(self) -> int:
        return self.first.items if self.first else 0

    def _mark(self, counters: CrawlCounters) -> Mark:
        cpu = self.probe() if self.probe else None
        return Mark(time.perf_counter(), counters.new_items, counters.expansions, cpu)

    def update(self, counters: CrawlCounters) -> None:
        if self.first is None and counters.expansions:
            self.first = self._mark(counters)
        elif self.first is not None and self.last is None and counters.videos >= counters.target:
            self.last = self._mark(counters)


@dataclass
class TimedCrawl:
    summary: CrawlSummary
    started: float
    ended: float
    clock: ExpansionClock

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def browser_discovery(base_url: str, data_dir: Path, **overrides) -> tuple[float, float, float]:
    """(videos per second incl. start-up, seconds, videos per second once expanding) for the real crawler."""
    run = await timed_crawl(base_url, data_dir, **overrides)
    summary, clock = run.summary, run.clock
    steady = (summary.new_items - clock.items_then) / (run.ended - clock.at) if clock.at else 0.0
    return summary.new_items / run.seconds, run.seconds, steady


async def timed_crawl(
    base_url: str, data_dir: Path, probe: Callable[[], dict[str, float]] | None = None, **overrides
) -> TimedCrawl:
    """The real crawler (``corpus crawl``'s library entry) on a fresh SQLite store, timed."""
    settings = Settings(data_dir=data_dir, base_url=base_url)
    store = open_store(settings)
    clock = ExpansionClock(probe)
    try:
        options = CrawlOptions(
            **{
                "seeds": SEEDS,
                "fanout": FANOUT,
                "workers": WORKERS,
                "delay_s": 0.0,
                "max_rate": None,
                "download": False,
            }
            | overrides
        )
        started = time.perf_counter()
        summary = await crawl_async(store, settings, options, progress=clock)
        ended = time.perf_counter()
    finally:
        store.dispose()
    return TimedCrawl(summary, started, ended, clock)


def throughput(base_url: str, target: int, tmp: Path, run: int) -> None:
    limit = asyncio.run(direct_discovery(base_url, target, WORKERS * IN_FLIGHT))
    crawler, elapsed, steady = asyncio.run(browser_discovery(base_url, tmp / f"t{run}", max_videos=target))
    load = os.getloadavg()[0]
    print(
        f"run {run}  baseline httpx, {WORKERS * IN_FLIGHT} in flight: {limit:6.1f} videos/s | "
        f"crawl --workers {WORKERS}: {crawler:6.1f} videos/s in {elapsed:.1f}s incl. start-up, "
        f"ratio {crawler / limit:.3f} (goal >= 0.5) | once expanding: {steady:6.1f} videos/s, "
        f"ratio {steady / limit:.3f} | load {load:.1f}"
    )


def memory(base_url: str, replica_pid: int, videos: int, minutes: float, tmp: Path) -> None:
    """A crawl paced to last ``minutes`` (about one expansion per catalog video), RSS sampled throughout."""
    seconds = minutes * 60
    sampler = MemorySampler(exclude={replica_pid})
    sampler.start()

    async def timed() -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                browser_discovery(base_url, tmp / "m", max_videos=videos, max_rate=videos / seconds), seconds + 5
            )

    asyncio.run(timed())
    sampler.stop.set()
    sampler.join()
    end = sampler.samples[-1][0]
    first, last = sampler.at(60), sampler.at(min(seconds, end))
    peak = max(rss for _, rss in sampler.samples)
    print(
        f"memory  minute 1: {first / 2**20:6.0f} MiB   minute {min(seconds, end) / 60:.1f}: "
        f"{last / 2**20:6.0f} MiB   peak {peak / 2**20:6.0f} MiB   ratio {last / first:.3f} (goal <= 1.2)"
    )


# --- related-list methods (issue #14) --------------------------------------------------------------
# Each method is crawled against the signing that makes it the one the site demands (and signed also
# under none), and set beside a bare-browser ceiling of its own kind measured in the same run: the same
# browser, contexts (WORKERS) and requests in flight (IN_FLIGHT per context), the same number of lists
# as the crawl expanded, and nothing else: no parsing, no database.

SITE_SIGNING = {"fetch": "none", "signed": "xbogus", "page": "gnarly"}
CEILING_OF = {"fetch": "fetch", "signed": "signed", "page": "navigate"}
GROUPS = ("crawler", "driver", "chromium", "replica")
PAGE_ROUTES = ("feed_page", "video_page")
API_ROUTES = ("recommend", "related", "detail")


class CpuMeter(threading.Thread):
    """CPU seconds (user + system, from /proc through psutil) per process group: this process (the crawler
    or the ceiling's driving code, less this sampler thread), the Playwright driver (node), Chromium (every
    other descendant) and the replica. Descendants come and go (renderers die with their context), so they
    are read every ``every_s`` and one that exits keeps its last reading; :meth:`read` also returns what
    this process's exited descendants used in all (``reaped``). That total misses what Chromium's orphans
    used: a zygote that exits before its renderers leaves them to init."""

    def __init__(self, replica_pid: int, every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.me = psutil.Process()
        self.replica = psutil.Process(replica_pid)
        self.every_s = every_s
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._last: dict[tuple[int, float], tuple[str, float]] = {}
        self._sampler_cpu = 0.0

    @property
    def sampler_cpu(self) -> float:
        return self._sampler_cpu

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            self._sample()
            self._sampler_cpu = time.thread_time()

    def _sample(self) -> None:
        with self._lock:
            for proc in self.me.children(recursive=True):
                if proc.pid == self.replica.pid:
                    continue
                try:
                    with proc.oneshot():
                        key = (proc.pid, proc.create_time())
                        group = "driver" if proc.name().startswith("node") else "chromium"
                        times = proc.cpu_times()
                except psutil.Error:
                    continue
                self._last[key] = (group, times.user + times.system)

    def read(self) -> dict[str, float]:
        self._sample()
        totals = dict.fromkeys(GROUPS, 0.0)
        with self._lock:
            for group, cpu in self._last.values():
                totals[group] += cpu
        mine, replica = self.me.cpu_times(), self.replica.cpu_times()
        totals["crawler"] = mine.user + mine.system - self._sampler_cpu
        totals["replica"] = replica.user + replica.system
        totals["reaped"] = mine.children_user + mine.children_system
        machine = psutil.cpu_times()  # the whole machine (all CPUs): is anything else running?
        totals["busy"] = machine.user + machine.nice + machine.system + machine.irq + machine.softirq
        totals["steal"] = machine.steal
        return totals


def cpu_spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per group between two readings. Where nothing exited in between (a window inside a run)
    the sampled totals are exact. A process that exited lost its CPU since its last sample; the reaped
    total catches that, but not for orphans (see :class:`CpuMeter`), so Chromium gets the larger of its
    sampled total and the reaped total less the driver's."""
    spent = {key: after[key] - before[key] for key in (*GROUPS, "busy", "steal")}
    reaped = after["reaped"] - before["reaped"]
    spent["chromium"] = max(spent["chromium"], reaped - spent["driver"])
    return spent


@dataclass
class MethodRun:
    """One crawl or one ceiling: its counts, times, CPU and the requests the replica served for it."""

    name: str
    signing: str
    lists: int  # related lists got (a crawl's expansions)
    videos: int  # new items discovered (0 for a ceiling)
    seconds: float  # a crawl's whole run (browser start-up and teardown included); a ceiling's timed part
    cpu: dict[str, float]  # CPU seconds of the same span (a ceiling's: its whole phase, launch included)
    requests: Counter  # of the same span
    # The span rates are compared over: a crawl from its first expansion to its target; a ceiling's timed part.
    window_s: float
    window_lists: int
    window_videos: int
    window_cpu: dict[str, float]
    empty: int = 0  # a ceiling's empty answers; a crawl's blocks
    methods: dict[str, int] | None = None

    @property
    def lists_per_s(self) -> float:
        return self.window_lists / self.window_s if self.window_s else 0.0

    def client_ms_per_list(self) -> float:
        """Crawler + driver + Chromium CPU per list over the window."""
        return 1000 * sum(self.window_cpu[g] for g in ("crawler", "driver", "chromium")) / max(self.window_lists, 1)

    @property
    def refused(self) -> int:
        return sum(n for route, n in self.requests.items() if route.startswith("refused:"))


def method_crawl(
    replica: CountedReplica, meter: CpuMeter, method: str, signing: str, target: int, data_dir: Path
) -> MethodRun:
    replica.set_signing(signing)
    requests_before, cpu_before = replica.requests(), meter.read()
    run = asyncio.run(timed_crawl(replica.base_url, data_dir, meter.read, max_videos=target, related_via=method))
    cpu, requests = cpu_spent(cpu_before, meter.read()), replica.requests() - requests_before
    summary, first, last = run.summary, run.clock.first, run.clock.last
    if first is None or last is None:
        raise RuntimeError(f"the {method} crawl did not reach its target: {summary.status} {summary.message or ''}")
    assert first.cpu is not None and last.cpu is not None
    if last.cpu["reaped"] != first.cpu["reaped"]:  # the driver had exited: the window would hold the teardown
        raise RuntimeError("the crawl showed its target only after closing its browser")
    return MethodRun(
        name=f"crawl {method}",
        signing=signing,
        lists=summary.expansions,
        videos=summary.new_items,
        seconds=run.seconds,
        cpu=cpu,
        requests=requests,
        window_s=last.at - first.at,
        window_lists=last.expansions - first.expansions,
        window_videos=last.items - first.items,
        window_cpu=cpu_spent(first.cpu, last.cpu),
        empty=summary.blocks,
        methods=summary.methods,
    )


async def _ceiling(
    base_url: str, data_dir: Path, kind: str, ids: list[str], probe: Callable[[], dict[str, float]]
) -> tuple[float, int, dict[str, float]]:
    """(seconds, empty answers, CPU seconds) of the timed part of a ``kind`` ceiling over ``ids``. fetch and
    signed run the crawler's own in-page ``fetch()`` JS in each context's For You page, IN_FLIGHT at a time
    per context; navigate keeps IN_FLIGHT pages per context, each opening ``/@_/video/{id}`` and waiting for
    the related list that page requests itself (its body read, as the crawler reads it)."""
    settings = Settings(data_dir=data_dir, base_url=base_url)
    todo = iter(ids)
    empty = 0
    async with async_playwright() as playwright:
        browser = await launch_browser(playwright, settings)
        try:
            user_agent = await default_user_agent(browser)
            pages: list[Page] = []
            for _ in range(WORKERS):
                context = await browser.new_context(
                    user_agent=user_agent, locale="en-US", viewport={"width": 1280, "height": 900}
                )
                feed = await context.new_page()
                await feed.goto(base_url + FORYOU_PATH, wait_until="domcontentloaded")
                if kind == "navigate":
                    pages += [await context.new_page() for _ in range(IN_FLIGHT)]
                else:
                    await feed.wait_for_function("() => window.byted_acrawler !== undefined")
                    pages += [feed] * IN_FLIGHT

            async def fetch_loop(page: Page) -> None:
                nonlocal empty
                for video_id in todo:
                    answer = await page.evaluate(_FETCH_JS, [related_api_path(video_id), kind == "signed"])
                    empty += answer.get("status") != 200 or not answer.get("body")

            async def navigate_loop(page: Page) -> None:
                nonlocal empty
                for video_id in todo:
                    async with page.expect_response(lambda r, v=video_id: related_list_item_id(r.url) == v) as info:
                        await page.goto(page_url(base_url, video_id), wait_until="commit")
                    empty += not await (await info.value).text()

            loop = navigate_loop if kind == "navigate" else fetch_loop
            cpu_before, started = probe(), time.perf_counter()
            await asyncio.gather(*(loop(page) for page in pages))
            seconds, cpu = time.perf_counter() - started, cpu_spent(cpu_before, probe())
        finally:
            await browser.close()
    return seconds, empty, cpu


def method_ceiling(
    replica: CountedReplica, meter: CpuMeter, kind: str, signing: str, ids: list[str], data_dir: Path
) -> MethodRun:
    replica.set_signing(signing)
    requests_before, cpu_before = replica.requests(), meter.read()
    seconds, empty, window_cpu = asyncio.run(_ceiling(replica.base_url, data_dir, kind, ids, meter.read))
    cpu, requests = cpu_spent(cpu_before, meter.read()), replica.requests() - requests_before
    return MethodRun(
        name=f"ceiling {kind}",
        signing=signing,
        lists=len(ids),
        videos=0,
        seconds=seconds,
        cpu=cpu,
        requests=requests,
        window_s=seconds,
        window_lists=len(ids),
        window_videos=0,
        window_cpu=window_cpu,
        empty=empty,
    )


def per(cpu: dict[str, float], count: int) -> str:
    """CPU ms per item, by process group."""
    ms = {group: 1000 * cpu[group] / max(count, 1) for group in GROUPS}
    client = ms["crawler"] + ms["driver"] + ms["chromium"]
    return (
        f"crawler {ms['crawler']:5.2f} + driver {ms['driver']:5.2f} + chromium {ms['chromium']:6.2f} "
        f"= {client:6.2f}, replica {ms['replica']:5.2f}"
    )


def requests_per(requests: Counter, count: int) -> str:
    total = sum(n for route, n in requests.items() if not route.startswith("refused:"))
    api = sum(requests[route] for route in API_ROUTES)
    pages = sum(requests[route] for route in PAGE_ROUTES)
    return f"{total / count:4.2f} (API {api / count:4.2f}, pages {pages / count:4.2f})"


def machine(cpu: dict[str, float], seconds: float) -> str:
    """How many CPUs the machine kept busy over ``seconds``, how many of them this benchmark, and steal."""
    ours = sum(cpu[group] for group in GROUPS)
    return (
        f"machine {cpu['busy'] / seconds:.2f} of {os.cpu_count()} CPUs busy (this benchmark {ours / seconds:.2f}), "
        f"steal {cpu['steal'] / seconds:.2f}"
    )


def describe(run: MethodRun) -> str:
    """Two lines: the rates, then CPU and requests (per video for a crawl's whole run, per list in the window)."""
    if run.videos:
        head = (
            f"{run.name} ({run.signing}): {run.videos} videos in {run.seconds:.1f} s = "
            f"{run.videos / run.seconds:.1f} videos/s start-up incl.; expanding {run.window_s:.1f} s: "
            f"{run.window_videos / run.window_s:.1f} videos/s, {run.lists_per_s:.1f} lists/s "
            f"({run.window_videos / max(run.window_lists, 1):.2f} videos/list) | via {run.methods}, "
            f"blocks {run.empty}, refused {run.refused} | expanding: {machine(run.window_cpu, run.window_s)}"
        )
        costs = (
            f"per video, whole run: CPU ms {per(run.cpu, run.videos)}; "
            f"requests {requests_per(run.requests, run.videos)}"
            f" | per list, expanding: CPU ms {per(run.window_cpu, run.window_lists)}"
        )
    else:
        head = (
            f"{run.name} ({run.signing}): {run.lists} lists in {run.seconds:.1f} s = {run.lists_per_s:.1f} lists/s"
            f" | empty {run.empty}, refused {run.refused} | {machine(run.window_cpu, run.window_s)}"
        )
        costs = (
            f"per list, timed part: CPU ms {per(run.window_cpu, run.lists)} | whole phase (launch incl.): "
            f"CPU ms {per(run.cpu, run.lists)}; requests {requests_per(run.requests, run.lists)}"
        )
    return f"{head}\n        {costs}"


GOALS = {"fetch": 0.8, "signed": 0.8, "page": 0.5}


def ratio_line(method: str, crawl: MethodRun, ceiling: MethodRun, label: str, ratios: dict[str, list]) -> str:
    """Related lists per second of the crawl once expanding over the ceiling's (the goal's ratio); beside it,
    the crawl's rate with start-up included over the ceiling's, and the ceiling's client CPU per list
    over the crawl's (the ratio a crawl bound by CPU would reach)."""
    ratio = crawl.lists_per_s / ceiling.lists_per_s
    whole = crawl.lists / crawl.seconds / ceiling.lists_per_s
    cpu = ceiling.client_ms_per_list() / crawl.client_ms_per_list()
    goal = GOALS[method]
    ratios.setdefault(label, []).append((ratio, whole, cpu))
    return (
        f"{label:<24} {crawl.lists_per_s:6.1f} / {ceiling.lists_per_s:6.1f} lists/s = {ratio:5.3f} "
        f"(goal >= {goal}: {'met' if ratio >= goal else 'NOT met'}) | start-up incl. {whole:5.3f} | "
        f"client CPU/list {ceiling.client_ms_per_list():6.2f} / {crawl.client_ms_per_list():6.2f} ms = {cpu:5.3f}"
    )


def compare_methods(
    replica: CountedReplica,
    meter: CpuMeter,
    methods: list[str],
    targets: dict[str, int],
    ids: list[str],
    tmp: Path,
    run: int,
    lists_seen: dict[str, int],
    ratios: dict[str, list],
) -> None:
    """One round: per method, its crawl and its ceiling back to back (crawl first in odd rounds, the
    ceiling first in even ones, over as many lists as that method's last crawl expanded); signed is also
    crawled where the site signs nothing. Prints every run, then the ratios."""
    load_before = os.getloadavg()[0]
    crawls: dict[str, MethodRun] = {}
    ceilings: dict[str, MethodRun] = {}

    def crawl(method: str, signing: str) -> None:
        key = method if signing == SITE_SIGNING[method] else f"{method}@{signing}"
        crawls[key] = method_crawl(replica, meter, method, signing, targets[method], tmp / f"{key}{run}")
        if key == method:  # the ceiling does as many lists as its crawl did
            lists_seen[method] = crawls[key].lists
        print(f"run {run}  {describe(crawls[key])}", flush=True)

    def ceiling(method: str) -> None:
        kind, lists = CEILING_OF[method], lists_seen.get(method, targets[method] // 3)
        ceilings[kind] = method_ceiling(replica, meter, kind, SITE_SIGNING[method], ids[:lists], tmp / f"c{kind}{run}")
        print(f"run {run}  {describe(ceilings[kind])}", flush=True)

    for method in methods:
        steps = [lambda m=method: crawl(m, SITE_SIGNING[m]), lambda m=method: ceiling(m)]
        for step in steps if run % 2 else reversed(steps):
            step()
        if method == "signed":
            crawl(method, "none")
    print(f"run {run}  ratios, crawl once expanding / ceiling (load {load_before:.1f} -> {os.getloadavg()[0]:.1f}):")
    for method in methods:
        kind = CEILING_OF[method]
        comparisons = [(crawls[method], ceilings[kind], f"{method} / {kind} ceiling")]
        if method == "signed":
            comparisons.append((crawls["signed@none"], ceilings[kind], "signed@none / signed"))
            if "fetch" in ceilings:
                comparisons.append((crawls[method], ceilings["fetch"], "signed / fetch ceiling"))
        for crawl_run, ceiling_run, label in comparisons:
            print(f"run {run}    {ratio_line(method, crawl_run, ceiling_run, label, ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, help="replica catalog size (10000; 2500 with --methods)")
    parser.add_argument("--target", type=int, help="--max-videos of the throughput runs (7522; 1500 with --methods)")
    parser.add_argument("--repeat", type=int, default=2, help="throughput runs / method rounds (the machine is shared)")
    parser.add_argument("--memory-minutes", type=float, default=0, help="also run a memory test this long")
    parser.add_argument(
        "--methods",
        type=lambda text: [m for m in text.split(",") if m],
        default=[],
        help="compare related-list methods instead (e.g. fetch,signed,page): each crawled with --related-via "
        "METHOD under the signing that demands it, beside its bare-browser ceiling",
    )
    parser.add_argument("--page-target", type=int, default=500, help="--max-videos of the page crawls")
    args = parser.parse_args()
    if unknown := set(args.methods) - set(SITE_SIGNING):
        parser.error(f"unknown --methods {', '.join(sorted(unknown))}: use {', '.join(SITE_SIGNING)}")
    if args.methods:
        compare(args.videos or 2500, args.target or 1500, args.page_target, args.methods, args.repeat)
        return
    videos, target = args.videos or 10000, args.target or 7522
    with served_replica(videos, media=False) as (base_url, replica_pid), tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.repeat + 1):
            throughput(base_url, target, Path(tmp), run)
        if args.memory_minutes:
            memory(base_url, replica_pid, videos, args.memory_minutes, Path(tmp))


def compare(videos: int, target: int, page_target: int, methods: list[str], rounds: int) -> None:
    """``--methods``: one replica process for every round, its signing switched between runs."""
    ids = [video.id for video in build_catalog(videos, 0).videos if video.kind == "video"]
    random.Random(0).shuffle(ids)
    targets = {"fetch": target, "signed": target, "page": page_target}
    print(
        f"catalog {videos}, target {target} (page: {page_target}), --workers {WORKERS} x {IN_FLIGHT} in flight, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; CPU per video: the whole run (browser start-up and "
        "teardown included); per list: once expanding (crawl), the timed part (ceiling)"
    )
    lists_seen: dict[str, int] = {}
    ratios: dict[str, list] = {}
    with counted_replica(videos) as replica, tempfile.TemporaryDirectory() as tmp:
        meter = CpuMeter(replica.pid)
        meter.start()
        try:
            for run in range(1, rounds + 1):
                compare_methods(replica, meter, methods, targets, ids, Path(tmp), run, lists_seen, ratios)
        finally:
            meter.stop.set()
            meter.join()
    print(f"medians over {rounds} rounds: lists/s once expanding, start-up incl., client CPU per list")
    for label, values in ratios.items():
        ratio, whole, cpu = (statistics.median(column) for column in zip(*values))
        each = ", ".join(f"{value[0]:.3f}" for value in values)
        print(f"    {label:<24} {ratio:5.3f}  {whole:5.3f}  {cpu:5.3f}   (each round: {each})")
    print(f"(the CPU sampler itself: {meter.sampler_cpu:.2f} s, left out of the crawler's CPU)")


if __name__ == "__main__":
    main()
