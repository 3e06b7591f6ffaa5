"""The catalog: deterministic from its seed, heavy-tailed engagement, a rich related graph, the signal knob."""

from __future__ import annotations

import numpy as np
import pytest

from tiktok_corpus.replica.catalog import ENGAGEMENT_TARGETS, build_catalog, tiktok_rounded


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(300, seed=0)


def test_same_seed_same_catalog_other_seed_other_catalog(catalog):
    again = build_catalog(300, seed=0)
    assert [(v.id, v.stats, v.related, v.media) for v in again.videos] == [
        (v.id, v.stats, v.related, v.media) for v in catalog.videos
    ]
    assert {v.id for v in build_catalog(300, seed=1).videos}.isdisjoint({v.id for v in catalog.videos})


def test_engagement_has_the_papers_medians_quartiles_and_heavy_tails(catalog):
    for name, (median, p75) in ENGAGEMENT_TARGETS.items():
        counts = np.array([getattr(v.stats, name) for v in catalog.videos])
        assert np.median(counts) == pytest.approx(median, rel=0.02), name
        assert np.quantile(counts, 0.75) == pytest.approx(p75, rel=0.03), name
    plays = np.array([v.stats.plays for v in catalog.videos])
    assert 200 < plays.max() / np.median(plays) < 5000
    likes = np.array([v.stats.likes for v in catalog.videos])
    assert np.corrcoef(np.log(plays), np.log(likes))[0, 1] > 0.7
    assert (likes <= plays).all()


def test_kinds_ids_and_captions(catalog):
    kinds = {v.kind for v in catalog.videos}
    assert kinds == {"video", "photo", "ad", "private", "deleted"}
    assert all(v.id.isdigit() and len(v.id) == 19 for v in catalog.videos)
    assert all((v.media is None) == (v.kind not in ("video", "ad")) for v in catalog.videos)
    assert any(v.hashtags for v in catalog.videos) and any(v.mentions for v in catalog.videos)
    assert 0.05 < sum(not v.has_stats_v2 for v in catalog.videos) / len(catalog.videos) < 0.3


def test_related_graph_has_16_plus_neighbours_clusters_and_cycles(catalog):
    by_id = catalog.by_id
    for video in catalog.videos:
        assert len(video.related) >= 16 and len(set(video.related)) == len(video.related)
        assert video.id not in video.related and all(r in by_id for r in video.related)
    mutual = sum(video.id in by_id[r].related for video in catalog.videos for r in video.related)
    assert mutual > 100  # two-cycles (a -> b -> a) are common inside clusters
    same_cluster = np.mean([by_id[r].cluster == v.cluster for v in catalog.videos for r in v.related])
    assert same_cluster > 0.5


def test_signal_ties_brightness_to_appeal_only_when_asked():
    def luma_appeal_correlation(signal):
        videos = build_catalog(300, seed=3, signals={"visual": signal}).playable()
        return np.corrcoef([v.media.luma for v in videos], [v.appeal for v in videos])[0, 1]

    assert luma_appeal_correlation(1.0) > 0.95
    assert abs(luma_appeal_correlation(0.0)) < 0.15


def test_media_variety_is_declared():
    media = [v.media for v in build_catalog(300, seed=0).playable()]
    assert {(m.width, m.height) for m in media} >= {(576, 1024), (720, 1280)}
    assert any(m.width > m.height for m in media)
    assert {24.0, 25.0, 30.0, 60.0} <= {m.fps for m in media}
    assert {"h264", "hevc"} == {m.codec for m in media}
    assert any(not m.has_audio for m in media) and any(m.frames < 100 for m in media)
    assert sum(m.vfr for m in media) == 1
    assert max(m.duration_s for m in media) > 30 and min(m.duration_s for m in media if m.fps > 1) < 5.5


@pytest.mark.parametrize(
    "exact, shown",
    [
        (1537, 1537),
        (9999, 9999),
        (184_333, 184_300),
        (206_978, 207_000),
        (20_812_345, 20_800_000),
        (1_510_358_266, 1_500_000_000),
    ],
)
def test_stats_are_rounded_like_tiktok(exact, shown):
    assert tiktok_rounded(exact) == shown


def test_at_full_signal_brightness_separates_viral_from_the_rest():
    from sklearn.metrics import roc_auc_score

    def auc(signal):
        videos = build_catalog(300, seed=4, signals={"visual": signal}).playable()
        plays = np.array([v.stats.plays for v in videos])
        viral = plays >= np.quantile(plays, 0.75)
        return roc_auc_score(viral, [v.media.luma for v in videos])

    assert auc(1.0) > 0.8
    assert 0.35 < auc(0.0) < 0.65
