"""One latent signal per modality (issue #16): the parser, byte-identical old catalogs, each observable
property following its own component only, and what the site serves and plays.

``build_catalog`` is pure, so most checks read 2,000-post catalogs (~0.5 s each) without any media.
At that size the Spearman correlation of two independent per-post variables has a standard deviation
of ~0.023, so the independence bound 0.15 is more than 6 of them. The author's followers are shared by
all of an author's posts (Zipf-weighted, ~80 posts' worth of independent values), so checks involving
the author modality compare per-author means over the 500 authors instead (sd ~0.045, bound > 3 sd).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict

import httpx
import numpy as np
import pytest
from scipy.stats import norm, spearmanr
from torchcodec.decoders import AudioDecoder

from tiktok_corpus.errors import ConfigError
from tiktok_corpus.replica import Replica, ReplicaConfig, build_catalog
from tiktok_corpus.replica.catalog import CATALOG_NOW, CATALOG_SPAN_S, Catalog, CatalogVideo, tiktok_rounded
from tiktok_corpus.replica.growth import RECENT_PAST_S
from tiktok_corpus.replica.media import default_cache_dir, ensure_media, media_file
from tiktok_corpus.replica.signals import (
    AUDIO_HIGH_HZ,
    AUDIO_LOW_HZ,
    DEMO_SIGNALS,
    MODALITIES,
    LatentModel,
    format_signals,
    parse_signals,
)
from tiktok_corpus.replica.vocabulary import SIGNAL_TAGS

ALL_ON = dict.fromkeys(MODALITIES, 1.0)
DAY = 86_400
# Digests of the catalogs (every field of every post, media specs included, and the authors) made by the
# code before per-modality signals existed (commit d56f288), as (videos, seed, signal, growth origin).
LEGACY_DIGESTS = {
    (300, 0, 0.0, None): "715879708225af59835fdc250795b14f748efcca53912d435d2acfc59239f36a",
    (300, 0, 1.0, None): "a787edacc37f13b9c110508941dad6ca3f6e2828fc567f7ee990dadeb61cff63",
    (200, 4, 0.6, None): "f418fbc390e769a6f0b36cd87089654c8d3f5c29ec10613c9f490562f9e02d75",
    (120, 2, 1.0, 1_790_000_000.0): "75eab6db4d5eeda13495647bc3a6542f0c725445b57a75389dddccaf5d837ec0",
}


def _digest(catalog: Catalog) -> str:
    """The catalog's content as the former code had it (``latents`` is new)."""
    videos = [{k: v for k, v in asdict(video).items() if k != "latents"} for video in catalog.videos]
    authors = [asdict(author) for author in catalog.authors.values()]
    return hashlib.sha256(json.dumps([videos, authors], sort_keys=True).encode()).hexdigest()


def _property(catalog: Catalog, video: CatalogVideo, modality: str) -> float:
    """The observable property each modality's signal drives."""
    assert video.media is not None
    return {
        "visual": lambda: video.media.luma,
        "audio": lambda: video.media.audio_hz,
        "text": lambda: sum(tag in video.hashtags for tag in SIGNAL_TAGS),
        "author": lambda: catalog.authors[video.author].followers,
        "time": lambda: video.create_time % DAY,
    }[modality]()


def _posts(catalog: Catalog) -> list[CatalogVideo]:
    """Playable posts with an audio track: every property is defined for them."""
    return [v for v in catalog.playable() if v.media is not None and v.media.has_audio]


def _per_author_means(posts: list[CatalogVideo], values: list[float]) -> dict[str, float]:
    by_author: dict[str, list[float]] = {}
    for video, value in zip(posts, values):
        by_author.setdefault(video.author, []).append(value)
    return {author: float(np.mean(values)) for author, values in by_author.items()}


def _rank_correlation(posts: list[CatalogVideo], x: list[float], y: list[float], per_author: bool) -> float:
    if per_author:
        mx, my = _per_author_means(posts, x), _per_author_means(posts, y)
        x, y = list(mx.values()), [my[author] for author in mx]
    return float(spearmanr(x, y)[0])


@pytest.fixture(scope="module")
def all_on() -> Catalog:
    return build_catalog(2000, seed=5, signals=ALL_ON)


def test_signals_text_round_trips():
    assert parse_signals(" visual=1, audio=0.5 ,text=0 ") == {"visual": 1.0, "audio": 0.5, "text": 0.0}
    assert parse_signals("") == {}
    assert parse_signals(format_signals(DEMO_SIGNALS)) == DEMO_SIGNALS
    assert format_signals(DEMO_SIGNALS) == "visual=1,audio=1,text=0.5,author=0.5,time=0"


@pytest.mark.parametrize(
    "text, message",
    [
        ("sound=1", "unknown signal modality 'sound'; known: visual, audio, text, author, time"),
        ("visual=1.5", "signal strength of visual must be within [0, 1], got 1.5"),
        ("time=-0.1", "signal strength of time must be within [0, 1], got -0.1"),
        ("visual=nan", "signal strength of visual must be within [0, 1], got nan"),
        ("visual", "--signals wants MODALITY=STRENGTH,... (e.g. visual=1,text=0.5), got 'visual'"),
        ("visual=high", "--signals wants MODALITY=STRENGTH"),
        ("=1", "--signals wants MODALITY=STRENGTH"),
        ("text=1,text=0.5", "--signals names text twice"),
    ],
)
def test_bad_signals_text_is_a_config_error(text, message):
    with pytest.raises(ConfigError) as error:
        parse_signals(text)
    assert message in str(error.value)


def test_bad_signals_in_a_config_fail_when_the_replica_is_made():
    with pytest.raises(ConfigError, match="unknown signal modality 'pixels'"):
        Replica(ReplicaConfig(videos=40, media=False, signals={"pixels": 1.0}))


@pytest.mark.parametrize("key", list(LEGACY_DIGESTS))
def test_no_signals_and_visual_alone_build_the_former_catalogs_byte_for_byte(key):
    videos, seed, signal, origin = key
    catalog = build_catalog(videos, seed, signals={"visual": signal} if signal else {}, growth_origin=origin)
    assert _digest(catalog) == LEGACY_DIGESTS[key]
    assert all(set(v.latents) == ({"visual"} if signal else set()) for v in catalog.videos)


def test_each_property_rises_with_its_own_component_and_ignores_the_others(all_on):
    posts = _posts(all_on)
    assert len(posts) > 1500
    for modality in MODALITIES:
        own = np.array([v.latents[modality] for v in posts])
        prop = np.array([_property(all_on, v, modality) for v in posts], dtype=float)
        assert (np.diff(prop[np.argsort(own)]) >= 0).all(), f"{modality} is not monotone in its component"
        assert len(np.unique(prop)) >= 7, modality  # the property varies (text has 7 steps, audio 16)
        for other in MODALITIES:
            if other != modality:
                z = [v.latents[other] for v in posts]
                rho = _rank_correlation(posts, list(prop), z, per_author="author" in (modality, other))
                assert abs(rho) < 0.15, (modality, other, rho)


def test_properties_keep_their_ranges(all_on):
    media = [v.media for v in all_on.playable() if v.media is not None]
    pitches = {m.audio_hz for m in media if m.has_audio}
    assert min(pitches) == AUDIO_LOW_HZ and max(pitches) == AUDIO_HIGH_HZ and len(pitches) == 16
    assert all(m.audio_hz == 0 for m in media if not m.has_audio)
    assert all(CATALOG_NOW - CATALOG_SPAN_S < v.create_time <= CATALOG_NOW for v in all_on.videos)
    assert {v.create_time % DAY // 3600 for v in all_on.videos} == set(range(24))
    followers = np.log10([a.followers for a in all_on.authors.values()])
    assert 3.0 <= followers.min() < 3.5 and 7.0 < followers.max() <= 7.5
    grown = build_catalog(200, seed=5, signals={"time": 1.0}, growth_origin=1_790_000_000.0)
    assert all(1_790_000_000 - RECENT_PAST_S <= v.create_time <= 1_790_000_000 for v in grown.videos)
    hours = np.array([v.create_time % DAY for v in grown.videos])
    assert spearmanr(hours, [v.latents["time"] for v in grown.videos])[0] == pytest.approx(1.0)


def test_a_modality_at_strength_zero_carries_nothing_about_appeal():
    catalog = build_catalog(2000, seed=6, signals={"visual": 1.0, "audio": 0, "text": 0, "author": 0, "time": 0})
    posts = _posts(catalog)
    appeal = [v.appeal for v in posts]
    assert all(set(v.latents) == {"visual"} for v in catalog.videos)
    assert spearmanr([v.media.luma for v in posts], appeal)[0] > 0.99
    assert not any(tag in v.hashtags for v in catalog.videos for tag in SIGNAL_TAGS)
    for modality in ("audio", "author", "time"):
        prop = [_property(catalog, v, modality) for v in posts]
        rho = _rank_correlation(posts, prop, appeal, per_author=modality == "author")
        assert abs(rho) < 0.15, (modality, rho)


@pytest.mark.parametrize("signals", [DEMO_SIGNALS, ALL_ON, {"visual": 0.6, "text": 0.5}])
def test_the_components_make_up_appeal_as_the_model_says(signals):
    """appeal = sum c_m z_m + c_0 eps: R^2 of the components' sum is sum c_m^2 (1 once sum s^2 >= 1), each
    component has unit variance and appeal's slope on it is c_m (sd ~0.02 at 2,000 posts, the author's
    too: the rest of appeal is per post), and the per-post components are uncorrelated."""
    catalog = build_catalog(2000, seed=7, signals=signals)
    coefficients = LatentModel(signals).coefficients
    appeal = np.array([v.appeal for v in catalog.videos])
    z = {m: np.array([v.latents[m] for v in catalog.videos]) for m in coefficients}
    explained = sum(c * z[m] for m, c in coefficients.items())
    r_squared = 1 - np.var(appeal - explained) / np.var(appeal)
    assert r_squared == pytest.approx(sum(c * c for c in coefficients.values()), abs=0.05)
    if sum(s * s for s in signals.values()) >= 1:
        assert r_squared > 0.95
    for m, c in coefficients.items():
        distinct = {v.author: v.latents[m] for v in catalog.videos} if m == "author" else dict(enumerate(z[m]))
        assert np.std(list(distinct.values())) == pytest.approx(1.0, abs=0.1), m
        assert z[m] @ appeal / (z[m] @ z[m]) == pytest.approx(c, abs=0.06), m
    for m, other in itertools.combinations(set(coefficients) - {"author"}, 2):
        assert abs(np.corrcoef(z[m], z[other])[0, 1]) < 0.1, (m, other)


def test_the_served_items_and_media_carry_the_signals():
    """A 40-post site with every signal on (no media served): the detail API shows the signal hashtags,
    the author's followers and the posting hour; two of its files, made for the test, play their pitch."""
    with (
        Replica(ReplicaConfig(videos=40, media=False, signals=ALL_ON)) as rep,
        httpx.Client(base_url=rep.base_url, timeout=10) as http,
    ):
        tagged = [v for v in rep.catalog.videos if v.kind == "video" and set(v.hashtags) & set(SIGNAL_TAGS)]
        assert tagged
        for video in tagged[:3]:
            item = http.get("/api/item/detail/", params={"itemId": video.id}).json()["itemInfo"]["itemStruct"]
            tags = [tag for tag in SIGNAL_TAGS if tag in video.hashtags]
            assert tags == SIGNAL_TAGS[: len(tags)]
            assert all(f"#{tag}" in item["desc"] for tag in tags)
            assert set(tags) <= {extra["hashtagName"] for extra in item["textExtra"]}
            author = rep.catalog.authors[video.author]
            assert item["authorStatsV2"]["followerCount"] == str(author.followers)
            assert item["authorStats"]["followerCount"] == tiktok_rounded(author.followers)
            assert int(item["createTime"]) == video.create_time
            expected_hour = int(DAY * norm.cdf(video.latents["time"])) // 3600
            assert int(item["createTime"]) % DAY // 3600 == expected_hour
        by_pitch = sorted(
            (v.media for v in rep.catalog.playable() if v.media and v.media.has_audio), key=lambda spec: spec.audio_hz
        )
    specs = [by_pitch[0], by_pitch[-1]]
    cache = default_cache_dir()
    ensure_media(specs, cache)
    for spec in specs:
        samples = AudioDecoder(str(media_file(cache, spec))).get_samples_played_in_range(0.0, 1.0)
        mono = samples.data.numpy().mean(axis=0)
        spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
        peak_hz = np.fft.rfftfreq(len(mono), 1 / samples.sample_rate)[spectrum.argmax()]
        assert peak_hz == pytest.approx(spec.audio_hz, rel=0.02), spec


def test_the_demo_reads_one_oracle_per_modality_with_a_signal(tmp_path):
    """``modality_oracles``: the ROC-AUC of each true component on the export's test rows, none for a
    modality at 0, nothing when the test split has one class."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from tiktok_corpus.demo import modality_oracles

    catalog = build_catalog(300, seed=1, signals={"visual": 1.0, "text": 0.5, "time": 0.0})
    posts = catalog.playable()
    plays = np.array([v.stats.plays for v in posts])
    rows = pd.DataFrame(
        {
            "video_id": [v.id for v in posts],
            "split": ["train" if i % 3 == 0 else "test" for i in range(len(posts))],
            "is_viral": (plays >= np.quantile(plays, 0.75)).astype(int),
        }
    )
    (tmp_path / "manifest.json").write_text("{}")
    rows.to_parquet(tmp_path / "videos.parquet")
    test = rows[rows["split"] == "test"]
    oracles = modality_oracles(catalog, tmp_path)
    assert set(oracles) == {"visual", "text"}
    for modality, auc in oracles.items():
        truth = [catalog.by_id[video_id].latents[modality] for video_id in test["video_id"]]
        assert auc == pytest.approx(roc_auc_score(test["is_viral"], truth))
    assert oracles["visual"] > oracles["text"] > 0.5  # c_visual = 1 / sqrt(1.25) ~ 0.89, c_text ~ 0.45
    rows.assign(is_viral=0).to_parquet(tmp_path / "videos.parquet")
    assert modality_oracles(catalog, tmp_path) == {}
