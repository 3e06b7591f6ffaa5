"""Test videos cluster by author: the intervals and tests count an author's videos as one cluster.

Simulated test splits where each author has a rate of virality of their own: counted as independent
videos, the ROC-AUC interval covered the true AUC in 82% of splits of 20 authors x 10 videos, and a
model that knew only each author (and nothing of the label) "beat chance" in 19% of them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tiktok_corpus.train.metrics import evaluate, ranking_quality, regression_report
from tiktok_corpus.train.resampling import (
    PAIRED_BATCH,
    auc_design_effect,
    author_draws,
    cluster_codes,
    effective_clusters,
    paired_comparison,
    resampled_metric,
    widened_p,
)

AUTHORS, VIDEOS = 20, 10


def _authors_split(rng: np.random.Generator, authors: int = AUTHORS, videos: int = VIDEOS):
    """Labels from a latent author rate plus noise, and scores that see the author's rate only."""
    author = np.repeat(np.arange(authors), videos)
    rate = rng.normal(size=authors)
    y = (rate[author] + 0.7 * rng.normal(size=len(author)) > 0.8).astype(int)
    scores = 0.3 * rate[author] + 0.3 * rng.normal(size=len(author))
    return y, scores, author


def _usable(y: np.ndarray) -> bool:
    return min(int(y.sum()), int((1 - y).sum())) >= 2


def test_the_auc_interval_covers_the_true_auc_when_videos_cluster_by_author():
    rng = np.random.default_rng(2)
    true_auc = roc_auc_score(*_authors_split(rng, authors=4000, videos=20)[:2])
    covered = {"independent": 0, "clustered": 0}
    runs = 0
    while runs < 150:
        y, scores, author = _authors_split(rng)
        if not _usable(y):
            continue
        runs += 1
        for name, groups in (("independent", None), ("clustered", author)):
            low, high = ranking_quality(y, scores, cluster_codes(groups))["roc_auc_ci"]
            covered[name] += low <= true_auc <= high
    assert covered["independent"] / runs < 0.88  # the case the clusters are for
    assert covered["clustered"] / runs >= 0.9


def test_a_model_that_knows_only_the_author_rarely_beats_chance_or_another():
    """Scores made of each author's draw, unrelated to the label: counted as independent videos they beat
    chance, and another such model, far more often than the 5% a test at p < 0.05 allows."""
    rng = np.random.default_rng(3)
    claims = {"chance": 0, "paired": 0, "spearman": 0}
    runs = 0
    while runs < 150:
        author = np.repeat(np.arange(AUTHORS), VIDEOS)
        y = (rng.normal(size=AUTHORS)[author] + 0.7 * rng.normal(size=len(author)) > 0.8).astype(int)
        model, other = (0.3 * rng.normal(size=AUTHORS)[author] + 0.1 * rng.normal(size=len(author)) for _ in "ab")
        continuous = rng.normal(size=AUTHORS)[author] + 0.5 * rng.normal(size=len(author))
        if not _usable(y):
            continue
        runs += 1
        clusters = cluster_codes(author)
        claims["chance"] += ranking_quality(y, model, clusters)["p_value"] < 0.05
        claims["paired"] += paired_comparison("binary", y, model, other, clusters=clusters)["p_value"] < 0.05
        claims["spearman"] += regression_report(None, None, continuous, model, clusters)["p_value"] < 0.05
    assert max(claims.values()) / runs <= 0.1, claims


def test_clusters_are_authors_shared_by_two_rows_or_none():
    assert cluster_codes(None) is None
    assert cluster_codes(["a", "b", None, np.nan]) is None  # no two rows share an author: independent rows
    codes = cluster_codes(["a", "b", "a", None, None])
    assert codes is not None and codes[0] == codes[2] and len(set(codes)) == 4  # each unknown author alone


@pytest.mark.parametrize("task", ["binary", "continuous"])
def test_a_resample_of_authors_scores_as_their_videos_drawn_again(task):
    """The author bootstrap weighs each video by how often its author was drawn: the metric on those
    weights is the metric on the videos repeated (ties in the scores counted half, as ROC-AUC does)."""
    rng = np.random.default_rng(0)
    y, scores, author = _authors_split(rng, authors=12, videos=5)
    scores = np.round(scores, 1)  # ties
    if task == "continuous":
        y = rng.random(len(y))
    clusters = cluster_codes(author)
    resampled = resampled_metric(task, y.astype(float), scores, clusters=clusters, seed=4)
    drawn = author_draws(np.random.default_rng(4), task, y, clusters, PAIRED_BATCH)[0]  # the first batch's
    rows = np.repeat(np.arange(len(y)), drawn[clusters])
    if task == "binary":
        expected = roc_auc_score(y[rows], scores[rows]) if len(set(y[rows])) == 2 else np.nan
    else:
        expected = np.sqrt(np.mean((y[rows] - scores[rows]) ** 2))
    np.testing.assert_allclose(resampled[0], expected, equal_nan=True)


def test_every_resample_of_authors_has_a_viral_video_and_one_author_of_a_class_claims_nothing():
    """Drawn all together, a resample of authors without a viral video had no ROC-AUC and was left out:
    with two authors holding the viral videos, one resample in seven (a third with one), and the interval
    was the others'. The authors with a viral video are drawn apart from the others, as many in every
    resample; where one author holds every viral video, a model that tells that author apart claims
    nothing."""
    rng = np.random.default_rng(5)
    author = np.repeat(np.arange(15), 4)
    y = np.isin(author, [3, 8]).astype(float)  # two authors' videos are the viral ones
    y[author == 8] = [1, 1, 0, 0]  # one of them with ordinary videos too
    scores = y + rng.normal(size=len(y))
    clusters = cluster_codes(author)

    drawn = author_draws(np.random.default_rng(0), "binary", y, clusters, 500)
    viral_authors = np.unique(clusters[y == 1])
    assert (drawn[:, viral_authors].sum(axis=1) == 2).all() and (drawn.sum(axis=1) == 15).all()
    assert set(drawn[:, viral_authors[0]]) == {0, 1, 2}  # each drawn 0, 1 or 2 times: they still vary
    resampled = resampled_metric("binary", y, scores, clusters=clusters)
    assert np.isfinite(resampled).all()
    gain = paired_comparison("binary", y, scores, np.zeros_like(y), clusters=clusters)
    assert gain["difference_ci"] is not None

    alone = np.isin(author, [3]).astype(float)  # one author holds them all
    assert paired_comparison("binary", alone, alone + rng.normal(size=len(y)), np.zeros_like(y), clusters=clusters) == {
        "difference": None,
        "difference_ci": None,
        "p_value": None,
    }


def test_every_resample_of_authors_has_an_ordinary_video_where_every_author_has_a_viral_one():
    """The mirror of the above (a corpus where virality is the common class, or every author went viral
    once): the authors with an ordinary video are drawn apart, so no resample lacks one. Drawn as one
    stratum, a resample of 12 authors of whom 2 held the ordinary videos had none one time in nine, and
    the intervals were those of the other resamples."""
    author = np.repeat(np.arange(12), 3)
    y = np.ones(len(author))
    y[[30, 31, 33, 34]] = 0  # authors 10 and 11 hold the ordinary videos, beside a viral one each
    scores = 0.3 * y + np.random.default_rng(0).random(len(y))
    clusters = cluster_codes(author)

    drawn = author_draws(np.random.default_rng(0), "binary", y, clusters, 500)
    ordinary_authors = np.unique(clusters[y == 0])
    assert (drawn[:, ordinary_authors].sum(axis=1) == 2).all() and (drawn.sum(axis=1) == 12).all()
    assert np.isfinite(resampled_metric("binary", y, scores, clusters=clusters)).all()


def test_a_verdict_on_viral_videos_all_of_one_author_says_so():
    """It said "not significantly better than majority ... p=n/a", where nothing could be claimed at all."""
    rng = np.random.default_rng(0)
    author = np.repeat(np.arange(60), 3)
    y = (author == 0).astype(int)
    metrics = _judged(rng, y, 3.0 * y + rng.normal(size=len(y)), author, train_y=rng.integers(0, 2, len(y)))
    assert not metrics["beats_baselines"]
    assert metrics["verdict"].startswith("Every viral (or every ordinary) test video is one author's")


def test_the_report_names_its_clusters():
    rng = np.random.default_rng(5)
    y, scores, author = _authors_split(rng)
    train_y, _, _ = _authors_split(rng)
    features = {name: rng.normal(size=(len(y), 1)) for name in ("train", "val", "test")}
    common = dict(y_val=y, scores_val=scores, y_test=y, scores_test=scores, train_y=train_y, features=features)
    clustered = evaluate("binary", **common, test_authors=[f"author {a}" for a in author])
    assert clustered["n_test_clusters"] == AUTHORS
    assert clustered["criteria"]["clusters"].startswith("test videos clustered by author")
    independent = evaluate("binary", **common)
    assert independent["n_test_clusters"] is None
    assert clustered["model"]["p_value"] > independent["model"]["p_value"]
    low, high = clustered["model"]["roc_auc_ci"]
    assert high - low > np.subtract(*independent["model"]["roc_auc_ci"][::-1])


def test_a_perfect_separation_of_a_few_authors_is_no_certainty():
    """Two authors' 100 videos viral, two others' not, the model ranking the four right: one arrangement
    in six by chance. The structural components have no spread there, which left the design effect at
    1 and gave p = 1e-34; a p that underflowed to 0 was not widened at all."""
    author = np.repeat(np.arange(4), 50)
    y = (author < 2).astype(int)
    scores = -author + 0.01 * np.random.default_rng(0).normal(size=len(author))
    clusters = cluster_codes(author)
    assert auc_design_effect(y, scores, clusters) == 50.0  # every video of an author alike
    quality = ranking_quality(y, scores, clusters)
    assert quality["p_value"] > 0.05 and quality["roc_auc_ci"][0] < 0.5
    assert 0 < widened_p(0.0, 449.0, clusters) < 1


def test_one_large_author_among_many_alone_counts_for_what_it_is_worth():
    """One author of 100 videos among 100 authors of one: counted as 101 clusters of the plain mean size,
    a rank correlation and a ranking that knew only the authors "beat chance" in a quarter of the splits."""
    rng = np.random.default_rng(7)
    author = np.r_[np.zeros(100, int), 1 + np.arange(100)]
    clusters = cluster_codes(author)
    assert 3.5 < effective_clusters(clusters) < 4.5
    claims, runs = 0, 0
    while runs < 200:
        effect = rng.normal(size=101)
        y = (effect[author] + 0.3 * rng.normal(size=len(author)) > 0).astype(int)
        continuous = effect[author] + 0.3 * rng.normal(size=len(author))
        scores = rng.normal(size=101)[author] + 0.05 * rng.normal(size=len(author))
        if not _usable(y):
            continue
        runs += 1
        claims += regression_report(None, None, continuous, scores, clusters)["p_value"] < 0.05
    assert claims / runs <= 0.08


def test_a_test_split_of_too_few_authors_claims_nothing():
    rng = np.random.default_rng(1)
    author = np.repeat(np.arange(6), 30)
    y = (author % 2).astype(int)
    metrics = _judged(rng, y, y + 0.1 * rng.normal(size=len(y)), author, train_y=y)  # perfect, on six authors
    assert metrics["n_test_clusters_effective"] == 6.0 and metrics["beats_baselines"] is False
    assert metrics["verdict"].startswith("The test videos come from too few authors to claim anything: worth 6")


def _judged(rng: np.random.Generator, y: np.ndarray, scores: np.ndarray, author: np.ndarray, *, train_y) -> dict:
    """The metrics of ``scores`` as both val and test predictions, beside baselines on noise features."""
    features = {split: rng.normal(size=(len(y), 1)) for split in ("train", "val", "test")}
    return evaluate(
        "binary",
        y_val=y,
        scores_val=scores,
        y_test=y,
        scores_test=scores,
        train_y=train_y,
        features=features,
        test_authors=author,
    )
