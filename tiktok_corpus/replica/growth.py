"""Engagement that grows with a post's age, for a replica whose site clock runs (``ReplicaConfig.time_scale``).

A static replica serves every post with its final counts, as if the crawl happened long after posting.
Tracking growth needs posts that are young when first seen, so a growing catalog gives each post, from
the seed, an age at the site clock's origin and a time constant ``tau``, and serves at site time ``t``

    count(t) = floor(final * (1 - exp(-(t - createTime) / tau)))     (0 before createTime)

for plays, likes, comments, shares and collects alike, ``final`` being the count the static replica
serves (so labels still follow the latent appeal). Counts are integers, never decrease, never pass
``final``, and reach it once ``t - createTime`` is a few dozen ``tau``.

* Ages at the origin are ``RECENT_PAST_S * u**AGE_SKEW`` (u uniform): all within the 3 days before the
  origin, skewed young (median ~9 h, a quarter under an hour), so most posts still have their
  1 h / 6 h / 1 d / 3 d / 7 d marks ahead when a tracker first sees them.
* ``tau`` is lognormal with a median of a day (sigma 1), clipped to [1 h, 7 d].
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .signals import posted_at

HOUR, DAY = 3600, 86_400
RECENT_PAST_S = 3 * DAY
AGE_SKEW = 3
TAU_MEDIAN_S = DAY
TAU_SIGMA = 1.0
TAU_MIN_S, TAU_MAX_S = HOUR, 7 * DAY


@dataclass(frozen=True)
class Growth:
    """One post's growth: when it was posted (site time, whole seconds) and its time constant."""

    create_time: int
    tau_s: float

    def share(self, site_time: float) -> float:
        """The fraction of its final counts the post has at ``site_time``: 0 before posting, then up to 1."""
        age = site_time - self.create_time
        return -math.expm1(-age / self.tau_s) if age > 0 else 0.0


def draw_growth(seed: int, video_id: str, origin: float, *, time: float | None = None) -> Growth:
    """The post's growth, deterministic from (seed, id, origin) and independent of the catalog's other draws.

    ``time``, the post's time component when the time signal is on, moves createTime to its time of day
    (:func:`.signals.posted_at`), still within the 3 days before the origin.
    """
    rng = random.Random(f"{seed}:growth:{video_id}")
    age = RECENT_PAST_S * rng.random() ** AGE_SKEW
    tau = TAU_MEDIAN_S * math.exp(TAU_SIGMA * rng.gauss(0.0, 1.0))
    create_time = math.floor(origin - age)
    if time is not None:
        create_time = posted_at(create_time, time, math.ceil(origin - RECENT_PAST_S), math.floor(origin))
    return Growth(create_time=create_time, tau_s=min(max(tau, TAU_MIN_S), TAU_MAX_S))
