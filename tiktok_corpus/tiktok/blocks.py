"""How hard a browser session tries, how blocks are counted, and how requests are paced.

The policy is data (tenacity reads it), one :class:`BlockMonitor` is shared by every worker of a process
so that persistent blocking stops the crawl, and one :class:`Pacer` keeps the politeness delay per worker
and a rate cap across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState, stop_after_attempt, stop_after_delay

from ..config import described
from ..errors import (
    BlockedError,
    ContractError,
    CorpusError,
    PersistentlyBlocked,
    SiteUnreachable,
    http_status_kind,
    is_transient_status,
)
from .contract import redact_url

# Failures where the site gave no answer at all (the connection refused or reset, a host that does not
# resolve, no answer in time), as opposed to a block or an HTTP error, which the site sent. A request is
# tried only ``BlockPolicy.unanswered_attempts`` times for them, and a session's first page load that got
# none is an unreachable site (:func:`unanswered_is_unreachable`).
UNANSWERED_KINDS = frozenset({"network", "timeout"})
# What counts towards an outage (:meth:`BlockMonitor.record_unreachable`): those, and the browser's own
# failures (a crashed page), which are no answer either.
TRANSPORT_KINDS = UNANSWERED_KINDS | {"browser_error"}
# Once a session's first page loaded, what fails a video page for the whole site counts towards an outage
# too, and is no failure of that video: an address Chromium will not load (a certificate it now rejects, a
# proxy whose TLS fails) is every video page's, as they share the site's scheme, host and certificate.
SITE_WIDE_KINDS = TRANSPORT_KINDS | {"unloadable"}
UNREACHABLE_HINT = "check the network, the proxy or --base-url, then run the same command again"


@dataclass(frozen=True)
class BlockPolicy:
    """How hard to try before giving up; the defaults suit the real site."""

    attempts: int = 8  # tries per request
    unanswered_attempts: int = 3  # of which at most this many when they get no answer (UNANSWERED_KINDS)
    request_deadline_s: float = 180.0  # and at most this long per request
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    recycle_after_blocks: int = 3  # consecutive blocked tries on one worker -> fresh context
    recycle_every: int = 150  # requests per context, so a long run's memory stays flat
    give_up_after_blocks: int = 15  # consecutive blocked tries across all workers -> stop
    # Requests in a row (across all workers, each after all its tries) that got no answer -> stop.
    give_up_after_unreachable: int = 8
    # A parent whose related list failed waits this long before its next claim, doubling with each
    # failed claim, up to the maximum.
    parent_retry_after_s: float = 60.0
    parent_retry_max_s: float = 3600.0
    # "Deleted" answers in a row with no answer between them, after which more count as blocks: 10204
    # is also the site's answer to a region or IP it blocks.
    unavailable_run: int = 5
    page_timeout_s: float = 30.0
    page_list_wait_s: float = 10.0  # how long a loaded video page may take to request its related list
    waf_wait_s: float = 10.0  # how long a WAF interstitial may take to solve itself
    warmup_wait_s: float = 5.0

    def parent_retry_after(self, attempts: int) -> float:
        """Seconds a parent waits after its ``attempts``-th claim failed."""
        return doubling_backoff(attempts, self.parent_retry_after_s, self.parent_retry_max_s)


def tries_over(policy: BlockPolicy) -> Callable[[RetryCallState], bool]:
    """When a request's tries end (tenacity's ``stop``): after ``policy.attempts`` or
    ``policy.request_deadline_s``, and after ``policy.unanswered_attempts`` when the last got no answer
    at all (:data:`UNANSWERED_KINDS`): a site that is down, or a wrong address, shows in seconds."""
    limits = stop_after_attempt(policy.attempts) | stop_after_delay(policy.request_deadline_s)

    def over(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome is not None else None
        unanswered = getattr(exc, "kind", None) in UNANSWERED_KINDS
        return limits(state) or (unanswered and state.attempt_number >= policy.unanswered_attempts)

    return over


def doubling_backoff(attempts: int, first_s: float, most_s: float) -> float:
    """``first_s`` after the first failed try, doubling with each one after it, at most ``most_s``."""
    return min(first_s * 2 ** min(max(attempts - 1, 0), 30), most_s)  # a bounded power: no overflow


@dataclass
class BlockMonitor:
    """Counts blocks across every worker of the process; says when blocking is persistent."""

    policy: BlockPolicy
    consecutive: int = 0
    total: int = 0
    kinds: Counter = field(default_factory=Counter)
    unavailable_in_a_row: int = 0
    unreachable_in_a_row: int = 0
    believed: list[str] = field(default_factory=list)  # items taken as unavailable since the last answer
    _run_was_a_block: bool = False

    def record_block(self, kind: str) -> None:
        self.unreachable_in_a_row = 0  # a block is the site's answer
        self.total += 1
        self.kinds[kind] += 1
        self.consecutive += 1
        if self.consecutive >= self.policy.give_up_after_blocks:
            summary = ", ".join(f"{k}={n}" for k, n in self.kinds.most_common())
            raise PersistentlyBlocked(
                f"persistently blocked: the last {self.consecutive} requests were all blocked ({summary}); "
                "wait before resuming, try --proxy, or --headful to solve a captcha by hand"
            )

    def record_unreachable(self, error: CorpusError) -> None:
        """A request whose tries all got no answer, or a page Chromium will not load (:data:`SITE_WIDE_KINDS`); after
        ``policy.give_up_after_unreachable`` in a row the site is unreachable: :class:`SiteUnreachable`."""
        self.unreachable_in_a_row += 1
        if self.unreachable_in_a_row >= self.policy.give_up_after_unreachable:
            raise SiteUnreachable(
                f"the site did not answer the last {self.unreachable_in_a_row} requests (last: {error.message}); "
                + UNREACHABLE_HINT
            )

    def record_success(self) -> None:
        self.consecutive = 0
        self.unavailable_in_a_row = 0
        self.unreachable_in_a_row = 0
        self.believed.clear()
        self._run_was_a_block = False

    def unavailable_believed(self, item_id: str) -> bool:
        """Whether an item-unavailable answer (deleted, private) for ``item_id`` is taken at its word: not
        once ``policy.unavailable_run`` of them came with no answer between, when it counts as a block
        instead (and may stop the run as persistently blocked); :meth:`take_doubted` then names the
        items believed in that run."""
        if self.unavailable_in_a_row >= self.policy.unavailable_run:
            self._run_was_a_block = True
            self.record_block("unavailable_run")
            return False
        self.unavailable_in_a_row += 1
        self.believed.append(item_id)
        return True

    def take_doubted(self) -> list[str]:
        """The items taken as unavailable in a run of such answers that proved a block (theirs were the
        block's answers too), each handed over once for the caller to set back; else none."""
        if not self._run_was_a_block:
            return []
        doubted, self.believed = self.believed, []
        return doubted


@contextlib.contextmanager
def unanswered_is_unreachable(what: str) -> Iterator[None]:
    """Around a session's first page load (its start, the For You feed it reads seeds from): when none of
    the request's tries got an answer (:data:`UNANSWERED_KINDS`) nothing can be read without it, so the
    site is unreachable (:class:`SiteUnreachable`) at once, not after ``give_up_after_unreachable`` more."""
    try:
        yield
    except ContractError as exc:
        if exc.kind not in UNANSWERED_KINDS:
            raise
        raise SiteUnreachable(f"the site did not answer {what} ({exc.message}); {UNREACHABLE_HINT}") from exc


# The options both browser stages (crawl, track) take alike, written once: their requests add up against
# the same site, so their politeness moves together.


def browser_workers() -> Any:
    return described(1, "Browser workers in this process.")


def politeness_delay() -> Any:
    return described(2.0, "Politeness delay per worker (s, jittered): conservative for the real site.")


def rate_cap() -> Any:
    return described(1.0, "Requests per second across all workers of this process (0: no cap).")


def headful_browser() -> Any:
    return described(False, "Show the browser (solve a captcha).")


class Pacer:
    """Politeness: a jittered delay per worker plus one rate cap shared by all workers."""

    def __init__(
        self, delay_s: float, max_rate: float | None, rng: random.Random, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.delay_s = delay_s
        self.min_interval = 1.0 / max_rate if max_rate else 0.0
        self.rng = rng
        self.clock = clock
        self._next_slot = 0.0
        self._lock = asyncio.Lock()

    def jittered_delay(self) -> float:
        return self.delay_s * self.rng.uniform(0.5, 1.5) if self.delay_s else 0.0

    async def wait(self, worker_ready_at: float) -> float:
        """Sleep until both this worker's delay and the global cap allow a request; returns when
        the worker may go next time."""
        if worker_ready_at > self.clock():
            await asyncio.sleep(worker_ready_at - self.clock())
        if self.min_interval:
            async with self._lock:
                now = self.clock()
                slot = max(now, self._next_slot)
                self._next_slot = slot + self.min_interval
            if slot > now:
                await asyncio.sleep(slot - now)
        return self.clock() + self.jittered_delay()


def http_status_error(status: int, url: str) -> ContractError | None:
    """A transient status is retried as a contract error; any other 4xx/5xx is a block of this session."""
    if status < 400:
        return None
    message = f"HTTP {status} from {redact_url(url)}"
    if is_transient_status(status):
        return ContractError(message, kind=http_status_kind(status))
    return BlockedError(message, kind=http_status_kind(status))


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, CorpusError) and exc.retryable
