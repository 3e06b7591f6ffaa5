"""The replica's catalog: every video, author, stat and related edge, derived from one seed.

Nothing here touches the network or the disk: ``build_catalog(videos, seed, signal)`` is a pure
function, so two replicas built with the same arguments serve the same site. With ``growth_origin``
(a replica with a site clock) the same posts are young at that instant and their counts grow with
age (see :mod:`.growth`); :meth:`Catalog.stats_at` says what is served at any site time.

Engagement follows the heavy tails of the paper's dataset (medians and 75th percentiles below,
maxima around 1,000x the median). Every entry has a latent ``appeal`` ~ N(0, 1) that drives its
plays, and likes / comments / shares follow plays with their own noise, as on the real site.

**The signal property is the mean luma (brightness) of the frames.** Each video's background luma
is ``128 + 80 * tanh(v / 1.2)`` with ``v = signal * appeal + sqrt(1 - signal**2) * noise``:
at ``signal=0`` brightness is independent of engagement (the paper's finding), at ``signal=1`` it
is a monotone function of appeal, so a model that learns from pixels can beat chance.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from dataclasses import asdict, astuple, dataclass, field

import numpy as np

from .growth import Growth, draw_growth
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

LUMA_CENTER, LUMA_SPREAD = 128, 80
VFR_SOURCE_FPS, VFR_SOURCE_FRAMES = 30, 240  # the VFR file is cut from 8 s drawn at 30 fps


@dataclass(frozen=True)
class MediaSpec:
    """The truth about one generated file: what ffprobe must report, and how it is drawn.

    ``luma`` is the frames' background brightness (the signal property); ``u``/``v`` its hue;
    ``box_speed`` the moving box's speed in px/s; ``audio_hz`` the tone (0 = silent track).
    """

    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    has_audio: bool
    codec: str  # "h264" | "hevc" (ffprobe's codec_name)
    vfr: bool
    luma: int
    u: int
    v: int
    box_speed: int
    audio_hz: int
    salt: int  # makes every file unique even when all else is equal

    @property
    def cache_key(self) -> str:
        """Hash of the generation spec: the media cache file name, so reruns reuse files."""
        payload = json.dumps({"generator": 1, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    @property
    def tiktok_codec(self) -> str:
        return "h264" if self.codec == "h264" else "h265_hvc1"


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
    signal: float
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
    videos: int = 300, seed: int = 0, signal: float = 0.0, *, growth_origin: float | None = None
) -> Catalog:
    """The whole catalog, deterministic from ``(videos, seed, signal)``.

    ``growth_origin`` (unix seconds): the same posts and ids, posted in the days before that instant, with
    counts that grow towards the static ones (:mod:`.growth`); None keeps the static catalog.
    """
    if videos < 1:
        raise ValueError("a catalog needs at least one video")
    if not 0.0 <= signal <= 1.0:
        raise ValueError("signal must be in [0, 1]")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    kinds = _kinds(videos, rng)
    appeal = nrng.standard_normal(videos)
    counts = _engagement(appeal, nrng)
    visual_noise = nrng.standard_normal(videos)
    authors = _authors(max(5, videos // 4), rng)
    author_names = list(authors)
    author_weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(author_names))]
    clusters = max(1, videos // 20)
    create_times = sorted(CATALOG_NOW - rng.randrange(CATALOG_SPAN_S) for _ in range(videos))
    vfr_index = next((i for i, kind in enumerate(kinds) if kind == "video"), None)

    entries: list[CatalogVideo] = []
    used_ids: set[str] = set()
    for i in range(videos):
        video_id = _video_id(create_times[i], rng, used_ids)
        cluster = rng.randrange(clusters)
        author = rng.choices(author_names, author_weights)[0]
        hashtags, mentions, desc = _caption(cluster, author_names, rng)
        visual = signal * appeal[i] + math.sqrt(1.0 - signal**2) * visual_noise[i]
        media = _media_spec(visual, rng, vfr=(i == vfr_index)) if kinds[i] in PLAYABLE_KINDS else None
        plays, likes, comments, shares = (int(counts[name][i]) for name in ENGAGEMENT_TARGETS)
        collects = max(0, int(likes * rng.uniform(0.02, 0.12)))
        entries.append(
            CatalogVideo(
                id=video_id,
                kind=kinds[i],
                author=author,
                desc=desc,
                hashtags=hashtags,
                mentions=mentions,
                music=_music(video_id, author, media, rng),
                create_time=create_times[i],
                stats=Stats(plays, likes, comments, shares, collects),
                has_stats_v2=rng.random() > 0.15,
                appeal=float(appeal[i]),
                cluster=cluster,
                media=media,
                images=rng.randint(2, 6) if kinds[i] == "photo" else 0,
            )
        )
    _link_related(entries, rng)
    if growth_origin is not None:
        for entry in entries:
            entry.growth = draw_growth(seed, entry.id, growth_origin)
            entry.create_time = entry.growth.create_time
    return Catalog(seed=seed, signal=signal, videos=entries, authors=authors)


def tiktok_rounded(count: int) -> int:
    """A count as TikTok's rounded ``stats`` show it (12.2K, 20.8M, 1.5B): exact below 10,000."""
    if count < 10_000:
        return count
    unit = 100 if count < 1_000_000 else 100_000 if count < 1_000_000_000 else 100_000_000
    return int(math.floor(count / unit + 0.5) * unit)


def luma_for(visual: float) -> int:
    """Background luma for a video whose visual latent is ``visual`` (see the module docstring)."""
    return int(round(LUMA_CENTER + LUMA_SPREAD * math.tanh(visual / 1.2)))


def _kinds(n: int, rng: random.Random) -> list[str]:
    kinds: list[str] = []
    for kind, rate in KIND_RATES.items():
        kinds += [kind] * (max(1, round(rate * n)) if n >= 20 else 0)
    kinds += ["video"] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _engagement(appeal: np.ndarray, nrng: np.random.Generator) -> dict[str, np.ndarray]:
    """Heavy-tailed counts calibrated so the catalog's median and 75th percentile hit the targets."""
    n = len(appeal)
    gauss = 0.85 * appeal + math.sqrt(1 - 0.85**2) * nrng.standard_normal(n)
    heavy = gauss * np.sqrt(3.0 / nrng.chisquare(3, n))  # Student t, 3 dof: ~1,000x maxima
    latent = {"plays": heavy}
    for name, follow in FOLLOWS_PLAYS.items():
        latent[name] = follow * heavy + math.sqrt(1 - follow**2) * nrng.standard_t(3, n)
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


def _authors(n: int, rng: random.Random) -> dict[str, Author]:
    authors = {}
    for rank in range(n):
        unique_id = f"{rng.choice(TOPICS)}.{rng.choice(WORDS)}{rank}"
        followers = int(10 ** rng.uniform(3, 7.5))
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


def _caption(cluster: int, authors: list[str], rng: random.Random) -> tuple[list[str], list[str], str]:
    topic = TOPICS[cluster % len(TOPICS)]
    tags = [topic, f"{topic}{cluster}", f"{topic}tok"][: rng.randint(0, 3)]
    tags += rng.sample(GLOBAL_TAGS, rng.randint(0, 2))
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


def _media_spec(visual: float, rng: random.Random, *, vfr: bool) -> MediaSpec:
    """Realistic variety: sizes, rates, lengths, codecs, silent files, short ones, one VFR file.

    Most files are short (cheap to encode); a few are long. HEVC ones are short and 25 fps
    because libx265 is slow.
    """
    roll = rng.random()
    width, height = (576, 1024) if roll < 0.6 else (720, 1280) if roll < 0.9 else rng.choice([(1280, 720), (1024, 576)])
    fps = rng.choices([30, 25, 24, 60], [45, 25, 20, 10])[0]
    roll = rng.random()
    if roll < 0.80:
        duration = rng.uniform(5, 9)
    elif roll < 0.94:
        duration = rng.uniform(9, 20)
    else:
        duration = rng.uniform(20, 65)
    if fps == 60:
        duration = min(duration, 8)
    codec = "hevc" if rng.random() < 0.03 else "h264"
    if codec == "hevc":
        width, height, fps, duration = 576, 1024, 25, rng.uniform(5, 6)
    roll = rng.random()
    if roll < 0.02:  # slideshow-like: 1 fps, far under 100 frames
        fps, duration = 1, rng.uniform(10, 40)
    elif roll < 0.04:  # very short clip
        fps, duration = 30, rng.uniform(2, 3)
    if vfr:
        fps, duration, codec = VFR_SOURCE_FPS, VFR_SOURCE_FRAMES / VFR_SOURCE_FPS, "h264"
    frames = max(1, round(duration * fps))
    if vfr:
        frames, duration = vfr_frames_and_duration(frames)
    else:
        duration = frames / fps
    has_audio = rng.random() < 0.85
    return MediaSpec(
        width=width,
        height=height,
        fps=frames / duration if vfr else float(fps),
        frames=frames,
        duration_s=round(duration, 6),
        has_audio=has_audio,
        codec=codec,
        vfr=vfr,
        luma=luma_for(visual),
        u=rng.randint(98, 158),
        v=rng.randint(98, 158),
        box_speed=rng.randint(40, 400),
        audio_hz=rng.choice([0, 220, 330, 440, 550, 660]) if has_audio else 0,
        salt=rng.getrandbits(31),
    )


def vfr_frames_and_duration(source_frames: int) -> tuple[int, float]:
    """What the VFR file's select filter keeps (all of the first half, every 3rd frame after) and
    its stream duration (up to the end of the last kept frame)."""
    half = source_frames // 2
    kept = [n for n in range(source_frames) if n < half or n % 3 == 0]
    return len(kept), (kept[-1] + 1) / VFR_SOURCE_FPS


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
