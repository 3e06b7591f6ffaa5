"""Fault injection: each real-world failure is a named knob with a rate, all off by default.

A fault's draw for a request is seeded by (seed, fault, route, the request's number on its route), so
for a given seed and request sequence the same requests fail, and turning one knob never shifts when
another fires: a request answered 429 skips the 5xx draw without moving the next request's.
"""

from __future__ import annotations

import random
import threading
import zlib
from collections import Counter
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import ConfigError

T = TypeVar("T")

# The request being answered, as (route, its number on that route): set by FaultPlan.count in the
# request's own task, read by its draws.
_REQUEST: ContextVar[tuple[str, int] | None] = ContextVar("replica_request", default=None)

FAULTS = {
    "waf": "HTML pages answer the WAF 'Please wait...' interstitial; its JS sets a cookie and reloads",
    "empty_body": "API calls answer HTTP 200 with a 0-byte body (bot detection)",
    "empty_first": "the first API call of a new session (ttwid cookie) answers an empty body",
    "captcha": "API calls answer the captcha JSON ({'code': '10000', 'type': 'verify'})",
    "http_429": "any route answers 429 Too Many Requests",
    "http_5xx": "any route answers 500/502/503/504",
    "slow": "any route waits `slow_seconds` before answering",
    "truncated": "CDN bodies stop early: Content-Length promised, connection closed",
    "cdn_html": "the CDN answers an HTML error page with status 200",
    "zero_byte": "the CDN answers 200 with an empty body",
    "corrupt_media": "the CDN answers a valid mp4 header followed by garbage (same size)",
    "expired_urls": "list responses carry already-expired media URLs (page/detail JSON stay fresh)",
    "no_rehydration": "video pages arrive without the __UNIVERSAL_DATA_FOR_REHYDRATION__ script",
    "login_modal": "For You and video pages open under a login modal; the feed does not scroll until it is closed",
    "empty_list": "the recommend API answers statusCode 0 with an empty itemList (a soft throttle)",
    "no_item_list": "the recommend and related APIs answer statusCode 0 without an itemList (bot detection)",
    "tls_failure": "video pages redirect to https:// on the replica's own port, which speaks http: Chromium's "
    "TLS handshake fails (net::ERR_SSL_PROTOCOL_ERROR), as when a certificate or a proxy fails for the whole site",
    "region_block": "video pages, related and detail calls answer statusCode 10204 (the site's answer to a "
    "region or IP it blocks, the same as for a deleted post)",
}


def validate_faults(faults: dict[str, float]) -> dict[str, float]:
    """Known names and rates in [0, 1], or a ConfigError naming the bad one."""
    for name, rate in faults.items():
        if name not in FAULTS:
            raise ConfigError(f"unknown replica fault {name!r}; known: {', '.join(FAULTS)}")
        if not 0.0 <= float(rate) <= 1.0:
            raise ConfigError(f"fault rate for {name!r} must be in [0, 1], got {rate}")
    return {name: float(rate) for name, rate in faults.items()}


def parse_fault_options(options: list[str]) -> dict[str, float]:
    """``["empty_body=0.1", "slow=1"]`` (the CLI's ``--fault``) as validated rates."""
    faults = {}
    for option in options:
        name, sep, rate = option.partition("=")
        try:
            faults[name.strip()] = float(rate)
        except ValueError:
            sep = ""
        if not sep:
            raise ConfigError(f"--fault wants NAME=RATE (e.g. empty_body=0.1), got {option!r}")
    return validate_faults(faults)


@dataclass(frozen=True)
class ReplicaStats:
    """A snapshot of the counters: requests per route, faults fired per name, signing refusals per reason."""

    requests: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    refused_signatures: Counter = field(default_factory=Counter)


class FaultPlan:
    """Thread-safe fault rates, their seeded RNGs, and the request/fault counters."""

    def __init__(self, seed: int, faults: dict[str, float] | None = None) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._draws: Counter = Counter()  # draws made outside a request, per fault: their own sequence
        self._rates: dict[str, float] = validate_faults(faults or {})
        self._requests: Counter = Counter()
        self._fired: Counter = Counter()
        self._refused: Counter = Counter()

    def set(self, faults: dict[str, float]) -> None:
        """Replace all rates (names left out go back to 0)."""
        rates = validate_faults(faults)
        with self._lock:
            self._rates = rates

    def fires(self, name: str) -> bool:
        """Draw for one fault; rate 1.0 always fires, 0 never draws."""
        with self._lock:
            rate = self._rates.get(name, 0.0)
            if rate <= 0.0:
                return False
            fired = rate >= 1.0 or self._rng(name, "fires").random() < rate
            if fired:
                self._fired[name] += 1
            return fired

    def pick(self, name: str, options: Sequence[T]) -> T:
        """A deterministic choice for the request, the fault's own (e.g. which 5xx)."""
        with self._lock:
            return self._rng(name, "pick").choice(options)

    def count(self, route: str) -> None:
        """Count a request, and number it for its draws."""
        with self._lock:
            self._requests[route] += 1
            _REQUEST.set((route, self._requests[route]))

    def _rng(self, name: str, use: str) -> random.Random:
        request = _REQUEST.get()
        if request is None:  # a draw outside a request (the plan on its own)
            self._draws[name, use] += 1
            request = ("", self._draws[name, use])
        return random.Random(zlib.crc32(f"{self._seed}:{name}:{use}:{request[0]}:{request[1]}".encode()))

    def refuse(self, reason: str) -> None:
        """Count an API call refused for its signature (``missing X-Bogus``, ``stale ts``...)."""
        with self._lock:
            self._refused[reason] += 1

    def snapshot(self) -> ReplicaStats:
        with self._lock:
            return ReplicaStats(Counter(self._requests), Counter(self._fired), Counter(self._refused))
