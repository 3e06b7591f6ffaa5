"""Issue #16 acceptance on the replica: each modality's gbdt model reaches its oracle, all together beat
each alone, and a modality without a signal claims nothing.

One 600-post replica with the demo's signals (visual=1, audio=1, text=0.5, author=0.5, time=0), its
files at a quarter of TikTok's sizes (``media_scale=4``: decoding 600 full-size originals into proxies
took most of this file's time, and brightness and pitch do not depend on the size), goes through the
real stages (Chromium crawl, downloads, ffprobe validation, stratified binary export: about
515 rows split 50/20/30, so about 155 test rows bound the oracle comparison and 100 val rows the early
stopping), then every feature table and the ablation. The oracle of a modality is the
ROC-AUC of its true latent component on the same test rows. Why the thresholds hold there:

- 0.9x the oracle: each property is a deterministic function of its component, so a model of the
  modality loses only what the mapping and the feature extraction lose (brightness survives any resize;
  the tone's pitch moves the log-mel bands; the signal hashtags are words the TF-IDF sees; followers are
  logged as they are; measured on 2,000 catalog posts the properties reach 0.91-1.0x their oracles;
  measured here (everything is seeded, the video backbone's random init too): video 0.66, audio 0.69,
  text 0.59, author 0.62 against 0.62, 0.68, 0.49, 0.61 for 0.9x the oracle - audio's and author's are
  the closest margins of this file, set by 154 test rows).
- all beats each alone: the components are independent and together explain the appeal that drives the
  counts, so the all-modality model's AUC sits well above any single one's (measured 0.78 against 0.69).
- time at 0: the posting hour is independent of engagement, so its model cannot beat the baselines by
  the verdict's margin with significance.
"""

from __future__ import annotations

import json

import pytest

from tiktok_corpus.demo import FEATURE_MODALITY, modality_oracles
from tiktok_corpus.features import FeatureOptions
from tiktok_corpus.replica import Replica, ReplicaConfig
from tiktok_corpus.replica.signals import DEMO_SIGNALS
from tiktok_corpus.train import TrainConfig, ablate

from .conftest import build_replica_export

pytestmark = pytest.mark.slow(105)

POSTS = 600
FEATURES = FeatureOptions(frames=8, size=16, clips=2, device="cpu", progress=False)


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    root = tmp_path_factory.mktemp("multimodal")
    with Replica(ReplicaConfig(videos=POSTS, seed=0, signals=DEMO_SIGNALS, media_scale=4)) as replica:
        export_dir = build_replica_export(root, replica, max_videos=POSTS, seed=0, split=(0.5, 0.2, 0.3))
        oracles = modality_oracles(replica.catalog, export_dir)
    config = TrainConfig(export_dir, model="gbdt", device="cpu", seed=0, progress=False)
    oracles = {FEATURE_MODALITY.get(m, m): auc for m, auc in oracles.items()}
    out = ablate(config, FEATURES, oracles=oracles, out=root / "ablation")
    return json.loads((out / "ablation.json").read_text())


def test_each_modality_reaches_its_oracle_and_all_beat_each(ablation):
    lines = {row["name"]: row for row in ablation["rows"]}
    signalled = [m for m in ablation["oracles"]]
    assert sorted(signalled) == ["audio", "author", "text", "video"]
    for modality in signalled:
        assert lines[modality]["metric"] >= 0.9 * ablation["oracles"][modality], (modality, lines[modality])
    best_single = max(lines[m]["metric"] for m in ("video", "audio", "text", "author", "time"))
    assert lines["all"]["metric"] > best_single
    assert lines["all"]["beats_baselines"], lines["all"]["verdict"]


def test_a_modality_without_signal_claims_nothing(ablation):
    time_alone = next(row for row in ablation["rows"] if row["name"] == "time")
    assert not time_alone["beats_baselines"], time_alone["verdict"]


def test_the_features_say_the_video_embedding_is_random_init(ablation):
    assert ablation["features"]["video"]["random_init"] is True
    assert set(ablation["importances"]["permutation_by_modality"]) == {"video", "audio", "text", "author", "time"}
