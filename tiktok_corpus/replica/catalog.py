"""The replica's catalog: every video, author, stat and related edge, derived from one seed.

Nothing here touches the network or the disk: ``build_catalog(videos, seed, signals=...)`` is a pure
function, so two replicas built with the same arguments serve the same site. With ``growth_origin``
(a replica with a site clock) the same posts are young at that instant and their counts grow with
age (see :mod:`.growth`); :meth:`Catalog.stats_at` says what is served at any site time.

Engagement follows the heavy tails of the paper's dataset (medians and 75th percentiles below,
maxima around 1,000x the median). Every entry has a latent ``appeal`` ~ N(0, 1) that drives its
plays, and likes / comments / shares follow plays with their own noise, as on the real site.

**Signals.** ``signals`` gives some modalities (visual, audio, text, author, time) a strength in [0, 1]:
each gets its own latent component of appeal, and its observable property (the frames' brightness, the
tone's pitch, signal hashtags, the author's followers, the posting hour) follows that component, so a
model that learns from that modality can beat chance (:mod:`.signals` has the model and the mappings).
Without signals (the default) every property is independent of engagement, as the paper found on real
TikTok data; each entry's ``latents`` holds the components, the truth an oracle reads.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import astuple, dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .growth import Growth, draw_growth
from .media_spec import MEDIA_SCALES, MediaSpec, draw_media_spec
from .signals import FOLLOWERS_LOG10, LatentModel, followers_log10, posted_at, signal_tags, validate_signals
from .vocabulary import GLOBAL_TAGS, SOUNDS, TOPICS, WORDS

# createTime values spread over the ~6 months before this instant (2026-11-06), so the catalog
# does not depend on the wall clock.
CATALOG_NOW = 1_794_000_000
CATALOG_SPAN_S = 180 * 86_400

# The paper's dataset: (median, 75th percentile) per count.
ENGAGEMENT_TARGETS = {
    "plays": (803_750, 2_300_000),
    "likes": (78_600, 258_675),
    "comments": (527, 1_743),
    "shares": (903, 4_732),
}
# How closely each count follows plays (correlation of the log counts' shared part).
FOLLOWS_PLAYS = {"likes": 0.9, "comments": 0.8, "shares": 0.7}
MAX_SHARE_OF_PLAYS = {"likes": 0.6, "comments": 0.1, "shares": 0.3}
MAX_LOG_RATIO = math.log(2000)  # soft cap on |log(count / median)|

KIND_RATES = {"photo": 0.04, "ad": 0.02, "private": 0.02, "deleted": 0.02}
PLAYABLE_KINDS = ("video", "ad")


@dataclass(frozen=True)
class Stats:
    plays: int
    likes: int
    comments: int
    shares: int
    collects: int


@dataclass(frozen=True)
class Author:
    id: str
    unique_id: str
    nickname: str
    sec_uid: str
    verified: bool
    private_account: bool
    signature: str
    followers: int
    following: int
    hearts: int
    videos: int
    diggs: int


@dataclass(frozen=True)
class Music:
    id: str
    title: str
    author_name: str
    original: bool
    duration: int


@dataclass
class CatalogVideo:
    """One post of the replica. ``kind`` is video | photo | ad | private | deleted."""

    id: str
    kind: str
    author: str  # the author's uniqueId (details in Catalog.authors)
    desc: str
    hashtags: list[str]
    mentions: list[str]
    music: Music
    create_time: int
    stats: Stats
    has_stats_v2: bool
    appeal: float
    cluster: int
    media: MediaSpec | None
    images: int = 0  # photo posts: how many images
    related: list[str] = field(default_factory=list)
    growth: Growth | None = None  # None: a static catalog, ``stats`` served at any time
    # The latent components of appeal (:mod:`.signals`), one per modality with a strength above 0.
    latents: dict[str, float] = field(default_factory=dict)

    @property
    def playable(self) -> bool:
        return self.media is not None

    def stats_at(self, site_time: float) -> Stats:
        """The counts served at ``site_time``: ``stats`` in a static catalog, grown towards them otherwise."""
        if self.growth is None:
            return self.stats
        share = self.growth.share(site_time)
        return Stats(*(math.floor(count * share) for count in astuple(self.stats)))


@dataclass
class Catalog:
    seed: int
    signals: dict[str, float]
    videos: list[CatalogVideo]
    authors: dict[str, Author]

    def __post_init__(self) -> None:
        self.by_id = {video.id: video for video in self.videos}

    def playable(self) -> list[CatalogVideo]:
        return [video for video in self.videos if video.playable]

    def stats_at(self, video_id: str, site_time: float) -> Stats:
        """Exactly the counts the replica serves for ``video_id`` in an answer made at ``site_time``."""
        return self.by_id[video_id].stats_at(site_time)


def build_catalog(
    videos: int = 300,
    seed: int = 0,
    *,
    signals: Mapping[str, float] | None = None,
    growth_origin: float | None = None,
    media_scale: int = 1,
) -> Catalog:
    """The whole catalog, deterministic from ``(videos, seed, signals)``.

    ``signals``: a strength in [0, 1] per modality (:mod:`.signals`; ConfigError otherwise), none by default.
    ``growth_origin`` (unix seconds): the same posts and ids, posted in the days before that instant, with
    counts that grow towards the static ones (:mod:`.growth`); None keeps the static catalog.
    ``media_scale``: every file's width and height divided by it (:func:`.media_spec.draw_media_spec`).
    """
    if videos < 1:
        raise ValueError("a catalog needs at least one video")
    if media_scale not in MEDIA_SCALES:
        raise ConfigError(f"the media scale must be one of {', '.join(map(str, MEDIA_SCALES))}, got {media_scale}")
    strengths = validate_signals(signals or {})
    model = LatentModel(strengths)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    kinds = _kinds(videos, rng)
    base = nrng.standard_normal(videos)  # the appeal itself unless an author signal adds its part
    engagement_noise = _engagement_noise(videos, nrng)
    visual_noise = nrng.standard_normal(videos)
    post_latents = model.post_components(seed, base, visual_noise)
    visual = post_latents.get("visual", visual_noise)
    author_latents = model.author_components(seed, max(5, videos // 4))
    authors = _authors(max(5, videos // 4), rng, author_latents)
    author_names = list(authors)
    author_rank = {name: rank for rank, name in enumerate(author_names)}
    author_weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(author_names))]
    clusters = max(1, videos // 20)
    create_times = sorted(CATALOG_NOW - rng.randrange(CATALOG_SPAN_S) for _ in range(videos))
    vfr_index = next((i for i, kind in enumerate(kinds) if kind == "video"), None)

    # Engagement waits for every post's author (an author signal is part of appeal), so the loop keeps
    # each post's fields, drawn in the catalog's order, and the entries are made after it.
    drafts: list[dict[str, Any]] = []
    collect_shares: list[float] = []
    used_ids: set[str] = set()
    for i in range(videos):
        latents = {name: float(values[i]) for name, values in post_latents.items()}
        create_time = create_times[i]
        if "time" in latents:
            create_time = posted_at(create_time, latents["time"], CATALOG_NOW - CATALOG_SPAN_S + 1, CATALOG_NOW)
        video_id = _video_id(create_time, rng, used_ids)
        cluster = rng.randrange(clusters)
        author = rng.choices(author_names, author_weights)[0]
        if author_latents is not None:
            latents["author"] = float(author_latents[author_rank[author]])
        hashtags, mentions, desc = _caption(
            cluster, author_names, rng, signal_tags(latents["text"]) if "text" in latents else []
        )
        media = None
        if kinds[i] in PLAYABLE_KINDS:
            media = draw_media_spec(
                rng, vfr=(i == vfr_index), visual=visual[i], audio=latents.get("audio"), scale=media_scale
            )
        collect_shares.append(rng.uniform(0.02, 0.12))
        drafts.append(
            dict(
                id=video_id,
                kind=kinds[i],
                author=author,
                desc=desc,
                hashtags=hashtags,
                mentions=mentions,
                music=_music(video_id, author, media, rng),
                create_time=create_time,
                has_stats_v2=rng.random() > 0.15,
                cluster=cluster,
                media=media,
                images=rng.randint(2, 6) if kinds[i] == "photo" else 0,
                latents=latents,
            )
        )
    author_of_post = None
    if author_latents is not None:
        author_of_post = author_latents[[author_rank[draft["author"]] for draft in drafts]]
    appeal = model.appeal(base, author_of_post)
    counts = _engagement(appeal, engagement_noise)
    entries = []
    for i, (draft, collect_share) in enumerate(zip(drafts, collect_shares)):
        plays, likes, comments, shares = (int(counts[name][i]) for name in ENGAGEMENT_TARGETS)
        collects = max(0, int(likes * collect_share))
        stats = Stats(plays, likes, comments, shares, collects)
        entries.append(CatalogVideo(**draft, stats=stats, appeal=float(appeal[i])))
    _link_related(entries, rng)
    if growth_origin is not None:
        for entry in entries:
            entry.growth = draw_growth(seed, entry.id, growth_origin, time=entry.latents.get("time"))
            entry.create_time = entry.growth.create_time
    return Catalog(seed=seed, signals=strengths, videos=entries, authors=authors)


def tiktok_rounded(count: int) -> int:
    """A count as TikTok's rounded ``stats`` show it (12.2K, 20.8M, 1.5B): exact below 10,000."""
    if count < 10_000:
        return count
    unit = 100 if count < 1_000_000 else 100_000 if count < 1_000_000_000 else 100_000_000
    return int(math.floor(count / unit + 0.5) * unit)


def _kinds(n: int, rng: random.Random) -> list[str]:
    kinds: list[str] = []
    for kind, rate in KIND_RATES.items():
        kinds += [kind] * (max(1, round(rate * n)) if n >= 20 else 0)
    kinds += ["video"] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _engagement_noise(n: int, nrng: np.random.Generator) -> dict[str, np.ndarray]:
    """The draws engagement adds to appeal, made before appeal is known (an author signal comes later)."""
    noise = {"gauss": nrng.standard_normal(n), "chisquare": nrng.chisquare(3, n)}
    return noise | {name: nrng.standard_t(3, n) for name in FOLLOWS_PLAYS}


def _engagement(appeal: np.ndarray, noise: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Heavy-tailed counts calibrated so the catalog's median and 75th percentile hit the targets."""
    gauss = 0.85 * appeal + math.sqrt(1 - 0.85**2) * noise["gauss"]
    heavy = gauss * np.sqrt(3.0 / noise["chisquare"])  # Student t, 3 dof: ~1,000x maxima
    latent = {"plays": heavy}
    for name, follow in FOLLOWS_PLAYS.items():
        latent[name] = follow * heavy + math.sqrt(1 - follow**2) * noise[name]
    counts = {}
    for name, (mid, p75) in ENGAGEMENT_TARGETS.items():
        log_ratio = _calibrated(latent[name], math.log(p75 / mid))
        capped = MAX_LOG_RATIO * np.tanh(log_ratio / MAX_LOG_RATIO)  # maxima ~1,000x, not 10^6x
        counts[name] = np.maximum(1, np.round(mid * np.exp(_calibrated(capped, math.log(p75 / mid)))))
    for name, most in MAX_SHARE_OF_PLAYS.items():
        counts[name] = np.minimum(counts[name], np.maximum(1, np.round(counts["plays"] * most)))
    return counts


def _calibrated(values: np.ndarray, p75_log_ratio: float) -> np.ndarray:
    """Shift and scale so the median maps to 0 and the 75th percentile to ``p75_log_ratio``."""
    center, upper = np.median(values), np.quantile(values, 0.75)
    return (values - center) * (p75_log_ratio / max(upper - center, 1e-9))


def _video_id(create_time: int, rng: random.Random, used: set[str]) -> str:
    """TikTok ids carry the creation second in their high 32 bits."""
    while True:
        video_id = str((create_time << 32) | rng.getrandbits(32))
        if video_id not in used:
            used.add(video_id)
            return video_id


def _authors(n: int, rng: random.Random, latents: np.ndarray | None) -> dict[str, Author]:
    """``n`` authors; with an author signal (``latents``, one per author) followers follow it."""
    authors = {}
    for rank in range(n):
        unique_id = f"{rng.choice(TOPICS)}.{rng.choice(WORDS)}{rank}"
        followers_exponent = rng.uniform(*FOLLOWERS_LOG10)
        if latents is not None:
            followers_exponent = followers_log10(float(latents[rank]))
        followers = int(10**followers_exponent)
        authors[unique_id] = Author(
            id=str(6_700_000_000_000_000_000 + rng.getrandbits(60) % 10**17),
            unique_id=unique_id,
            nickname=unique_id.replace(".", " ").title(),
            sec_uid="MS4wLjABAAAA"
            + "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", k=52)),
            verified=rng.random() < 0.08,
            private_account=False,
            signature=" ".join(rng.choices(WORDS, k=rng.randint(0, 8))),
            followers=followers,
            following=rng.randint(0, 3000),
            hearts=int(followers * rng.uniform(2, 40)),
            videos=rng.randint(5, 2000),
            diggs=rng.randint(0, 50_000),
        )
    return authors


def _caption(
    cluster: int, authors: list[str], rng: random.Random, signal_tags: list[str]
) -> tuple[list[str], list[str], str]:
    """Words, mentions and hashtags (the topic's, global ones, then the text signal's ``signal_tags``)."""
    topic = TOPICS[cluster % len(TOPICS)]
    tags = [topic, f"{topic}{cluster}", f"{topic}tok"][: rng.randint(0, 3)]
    tags += rng.sample(GLOBAL_TAGS, rng.randint(0, 2)) + signal_tags
    mentions = rng.sample(authors, min(len(authors), rng.choice([0, 0, 0, 1, 2])))
    words = " ".join(rng.choices(WORDS, k=rng.randint(2, 10)))
    desc = " ".join([words] + [f"@{m}" for m in mentions] + [f"#{t}" for t in tags])
    return list(dict.fromkeys(tags)), mentions, desc


def _music(video_id: str, author: str, media: MediaSpec | None, rng: random.Random) -> Music:
    duration = int(round(media.duration_s)) if media else 0
    if rng.random() < 0.55:
        return Music(
            id=str(int(video_id) + 1),
            title=f"original sound - {author}",
            author_name=author,
            original=True,
            duration=duration,
        )
    index = rng.randrange(len(SOUNDS))
    return Music(
        id=str(7_000_000_000_000_000_000 + index),
        title=SOUNDS[index],
        author_name=f"artist{index}",
        original=False,
        duration=rng.randint(15, 60),
    )


def _link_related(entries: list[CatalogVideo], rng: random.Random) -> None:
    """16-24 related per video: mostly its own cluster, plus popular videos elsewhere (overlaps, cycles)."""
    candidates = [e for e in entries if e.kind != "ad"]
    by_cluster: dict[int, list[CatalogVideo]] = {}
    for entry in candidates:
        by_cluster.setdefault(entry.cluster, []).append(entry)
    # Cumulative weights once: passing the weights to every draw would sum them all again (quadratic).
    popularity = list(itertools.accumulate(math.log1p(e.stats.plays) ** 2 for e in candidates))
    for entry in entries:
        want = min(rng.randint(16, 24), len(candidates) - (entry.kind != "ad"))
        mates = [e.id for e in by_cluster.get(entry.cluster, []) if e.id != entry.id]
        chosen = rng.sample(mates, min(len(mates), round(want * 0.7)))
        while len(chosen) < want:
            pick = rng.choices(candidates, cum_weights=popularity)[0].id
            if pick != entry.id and pick not in chosen:
                chosen.append(pick)
        entry.related = chosen
