"""The test split resampled and permuted: the statistics evaluated on every resample at once (ROC-AUC,
RMSE), the metrics' intervals (ROC-AUC's by Newcombe's score method, RMSE's by the bootstrap), and the
model's paired comparison with one baseline (an interval on the same bootstrap resamples, a one-sided
p-value by random swaps of the two's scores).

Test videos cluster by author: one author's videos are alike in both label and score, so they tell less
than as many independent videos, and intervals and p-values that count them as independent claim too
much (a model that knew only each author "beat chance" at p < 0.05 in 19% of simulated test splits of
20 authors x 10 videos). Given each row's cluster (``clusters``: codes 0..k-1, see :func:`cluster_codes`), the
bootstraps resample whole authors, the swaps swap whole authors, and the ROC-AUC interval and the chance
p-values are widened by the design effect (:func:`auc_design_effect`, :func:`rank_correlation_design_effect`)
and read off Student's t with the authors' effective number (:func:`effective_clusters`). Without
repeated authors everything is as for independent rows.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

CI_LEVEL = 0.95  # every confidence interval's level
CI_RESAMPLES = 2000  # the bootstrap's resamples and the paired test's swaps
PAIRED_BATCH = 200  # resamples (or swaps) drawn at once by the paired comparison


def cluster_codes(groups) -> np.ndarray | None:
    """Each row's cluster (its author) as codes 0..k-1; a row without one is a cluster of its own. None
    where no two rows share one: the rows are then treated as independent."""
    if groups is None:
        return None
    names = [f"\0row {i}" if pd.isna(group) else str(group) for i, group in enumerate(groups)]
    _, codes = np.unique(names, return_inverse=True)
    return codes if codes.max(initial=-1) + 1 < len(codes) else None


def widened_p(p_value: float | None, design_effect: float, clusters: np.ndarray | None) -> float | None:
    """A one-sided p-value of a normal statistic whose variance is ``design_effect`` times the one it was
    computed with, over ``clusters``: its z divided by the effect's square root, read off Student's t
    (:func:`_degrees_of_freedom`: few authors tell little, however many videos they posted). As it was
    without clusters; a p too small for a float counts as the smallest."""
    if p_value is None or clusters is None:
        return p_value
    z = stats.norm.isf(max(p_value, np.finfo(float).tiny))
    return float(stats.t.sf(z / math.sqrt(design_effect), df=_degrees_of_freedom(clusters)))


def cluster_count(clusters: np.ndarray) -> int:
    return int(clusters.max()) + 1


def effective_clusters(clusters: np.ndarray) -> float:
    """How many clusters of equal size the rows are worth: rows over the mean size of the cluster a row is
    in (Kish's), so that one author of 100 videos among 100 alone is worth about four, not 101."""
    return len(clusters) / _fully_alike(clusters)


def _degrees_of_freedom(clusters: np.ndarray) -> float:
    """Student's degrees of freedom for a statistic over clusters: one fewer than :func:`effective_clusters`
    (their plain count, 101, let 26% of signal-free models "beat chance" where one author had 100 videos)."""
    return max(1.0, effective_clusters(clusters) - 1)


def _fully_alike(clusters: np.ndarray) -> float:
    """The design effect were an author's videos all alike: the sum of the squared cluster sizes over the
    rows (the mean size a row finds itself in)."""
    return float(np.sum(np.bincount(clusters) ** 2) / len(clusters))


def auc_design_effect(y: np.ndarray, scores: np.ndarray, clusters: np.ndarray | None) -> float:
    """How many times ROC-AUC's variance is, with rows clustered, that of independent rows: Obuchowski's
    (1997) clustered estimate over DeLong's, both from the same structural components (each positive's
    share of negatives below it, each negative's share of positives above it); at least 1."""
    positive, negative = y == 1, y == 0
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    if clusters is None or min(n_pos, n_neg) < 2:
        return 1.0
    ranks = stats.rankdata(scores)
    above = (ranks[positive] - stats.rankdata(scores[positive])) / n_neg
    below = 1 - (ranks[negative] - stats.rankdata(scores[negative])) / n_pos
    auc = above.mean()
    independent = above.var(ddof=1) / n_pos + below.var(ddof=1) / n_neg
    k = cluster_count(clusters)
    per_pos = np.bincount(clusters[positive], weights=above - auc, minlength=k)
    per_neg = np.bincount(clusters[negative], weights=below - auc, minlength=k)
    clustered = (
        k
        / (k - 1)
        * (
            np.sum(per_pos**2) / n_pos**2
            + np.sum(per_neg**2) / n_neg**2
            + 2 * np.sum(per_pos * per_neg) / (n_pos * n_neg)
        )
    )
    # Perfect separation (or all tied): no spread to compare with, so the bound for videos all alike.
    return max(1.0, float(clustered / independent)) if independent > 0 else _fully_alike(clusters)


def rank_correlation_design_effect(x: np.ndarray, y: np.ndarray, clusters: np.ndarray | None) -> float:
    """How many times a rank correlation's variance is, with rows clustered, that of independent rows:
    1 + (m - 1) * icc(x) * icc(y), with m the mean size of the cluster a row is in (unequal sizes weigh
    the large ones: one author of 100 videos among 100 alone barely widened it at the plain mean size)
    and each icc the one-way ANOVA intra-cluster correlation of the ranks (Kish's design effect for a
    correlation); at least 1."""
    if clusters is None:
        return 1.0
    m = _fully_alike(clusters)
    iccs = [max(0.0, _icc(stats.rankdata(values), clusters)) for values in (x, y)]
    return max(1.0, 1 + (m - 1) * iccs[0] * iccs[1])


def _icc(values: np.ndarray, clusters: np.ndarray) -> float:
    k, n = cluster_count(clusters), len(values)
    if k < 2 or n <= k:
        return 0.0
    sizes = np.bincount(clusters, minlength=k)
    means = np.bincount(clusters, weights=values, minlength=k) / sizes
    between = np.sum(sizes * (means - values.mean()) ** 2) / (k - 1)
    within = np.sum((values - means[clusters]) ** 2) / (n - k)
    size = (n - np.sum(sizes**2) / n) / (k - 1)  # the clusters' size as ANOVA weighs unequal ones
    denominator = between + (size - 1) * within
    return float((between - within) / denominator) if denominator > 0 else 0.0


def finite(value) -> float | None:
    """A finite number as a float, else None (the JSON-safe form of a metric)."""
    return None if value is None or not math.isfinite(value) else float(value)


def auc_along(y: np.ndarray, scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """ROC-AUC of every resample at once (the rank-sum form), for the bootstrap; NaN where one class."""
    ranks = stats.rankdata(scores, axis=axis)
    positive = y == 1
    n_pos = positive.sum(axis=axis)
    n_neg = y.shape[axis] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * positive).sum(axis=axis) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def auc_of_classes(positives: np.ndarray, negatives: np.ndarray, axis: int = -1) -> np.ndarray:
    """ROC-AUC from the positives' and the negatives' scores (the rank-sum form), along ``axis``."""
    n_pos, n_neg = positives.shape[axis], negatives.shape[axis]
    ranks = stats.rankdata(np.concatenate([positives, negatives], axis=axis), axis=axis)
    rank_sum = np.take(ranks, np.arange(n_pos), axis=axis).sum(axis=axis)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def rmse_along(y: np.ndarray, scores: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.sqrt(np.mean((y - scores) ** 2, axis=axis))


def auc_ci(y: np.ndarray, scores: np.ndarray, clusters: np.ndarray | None = None) -> list[float] | None:
    """ROC-AUC's interval by Newcombe's score method (2006, his method 5): every AUC ``theta`` that the
    observed one lies within z standard errors of, the error Hanley and McNeil's at ``theta`` with each
    class counted as the two's mean size. A percentile bootstrap covered the true AUC of simulated test
    splits with 3 viral videos among 100 in 65-78% of them (95% promised; 84% with 30 at AUC 0.98),
    since a resample cannot rank what the few positives never showed; this covered 94-98% of them in
    every case tried (3 to 30 positives, AUC 0.5 to 0.98), and is as narrow as the bootstrap with 30.
    Clustered rows widen the variance by :func:`auc_design_effect`."""
    y, scores = np.asarray(y, float), np.asarray(scores, float)
    if np.ptp(scores) == 0:  # a constant ranks every sample alike: AUC 0.5
        return [0.5, 0.5]
    positives, negatives = scores[y == 1], scores[y == 0]
    if min(len(positives), len(negatives)) < 2:  # one video of a class: no claim rests on it
        return None
    auc = float(auc_of_classes(positives, negatives))
    widening = auc_design_effect(y, scores, clusters)
    tail = 0.5 + CI_LEVEL / 2
    z = stats.norm.ppf(tail) if clusters is None else stats.t.ppf(tail, df=_degrees_of_freedom(clusters))
    mean_size = (len(positives) + len(negatives)) / 2

    def beyond(theta: float) -> float:  # > 0 where theta lies outside the interval
        spread = 1 + (mean_size - 1) * ((1 - theta) / (2 - theta) + theta / (1 + theta))
        variance = widening * theta * (1 - theta) * spread / (len(positives) * len(negatives))
        return (auc - theta) ** 2 - z * z * variance

    inside = min(max(auc, 1e-9), 1 - 1e-9)  # an AUC of 0 or 1 is a root itself: the other lies just inside
    low = 0.0 if auc <= 0 else float(optimize.brentq(beyond, 0.0, inside))
    high = 1.0 if auc >= 1 else float(optimize.brentq(beyond, inside, 1.0))
    return [low, high]


def rmse_ci(
    y: np.ndarray, scores: np.ndarray, *, seed: int = 0, clusters: np.ndarray | None = None
) -> list[float] | None:
    """RMSE's percentile bootstrap interval over test rows (over their authors, when clustered); None with
    fewer than two."""
    if len(y) < 2:
        return None
    if clusters is not None:
        return _percentiles(
            resampled_metric(
                "continuous", np.asarray(y, float), np.asarray(scores, float), seed=seed, clusters=clusters
            )
        )
    return _percentile_ci(rmse_along, (np.asarray(y, float), np.asarray(scores, float)), paired=True, seed=seed)


def _percentile_ci(statistic, samples: tuple[np.ndarray, ...], *, paired: bool, seed: int) -> list[float] | None:
    with warnings.catch_warnings():  # a near-constant predictor's resamples all agree: its interval is a point
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            samples,
            statistic,
            paired=paired,
            vectorized=True,
            n_resamples=CI_RESAMPLES,
            batch=PAIRED_BATCH,  # all 2,000 at once took 2.5 GB for 20,000 test rows
            confidence_level=CI_LEVEL,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low, high = finite(result.confidence_interval.low), finite(result.confidence_interval.high)
    return None if low is None or high is None else [low, high]


def chance_p_value(y: np.ndarray, scores: np.ndarray, clusters: np.ndarray | None = None) -> float | None:
    """The one-sided Mann-Whitney p-value of ``scores`` ranking the positives above the negatives (ROC-AUC
    over 0.5), widened by :func:`auc_design_effect` where rows cluster."""
    p_value = finite(stats.mannwhitneyu(scores[y == 1], scores[y == 0], alternative="greater").pvalue)
    return widened_p(p_value, auc_design_effect(y, scores, clusters), clusters)


def paired_comparison(
    task: str, y, model_scores, baseline_scores, *, seed: int = 0, clusters: np.ndarray | None = None
) -> dict:
    """The model against one baseline on the test rows (:func:`gain_summary` of the model's gain: ROC-AUC
    gained, or RMSE saved): its interval on the same bootstrap resamples, its p-value by
    :func:`swapped_gains` (against a constant's ROC-AUC, Mann-Whitney's: the gain is over chance)."""
    y = np.asarray(y, float)
    model_scores, baseline_scores = np.asarray(model_scores, float), np.asarray(baseline_scores, float)
    statistic, sign = (auc_along, 1.0) if task == "binary" else (rmse_along, -1.0)
    observed = finite(sign * float(statistic(y, model_scores) - statistic(y, baseline_scores)))
    # One video of a class is in every stratified resample: its rank would vary in none of them (as for
    # auc_ci, no interval), and a gain over a chance baseline would come out certain. So is one author of
    # a class in every resample of authors: a model that told that author apart would seem certain.
    too_few = len(y) < 2 or (task == "binary" and min(class_holders(y, clusters)) < 2)
    if observed is None or too_few:
        return gain_summary(None, np.array([]))
    model, baseline = (
        resampled_metric(task, y, scores, seed=seed, clusters=clusters) for scores in (model_scores, baseline_scores)
    )
    gains = sign * (model - baseline)
    if task == "binary" and np.ptp(baseline_scores) == 0:
        # A constant's ROC-AUC is 0.5: a gain over it is a ranking better than chance, which Mann-Whitney
        # tests exactly; swapping ranks with a constant's ties lost power (p 0.07 for a perfect ranking of
        # three viral videos among a hundred, where chance's p was 0.002).
        p_value = chance_p_value(y, model_scores, clusters)
    else:
        as_if_alike = swapped_gains(task, y, model_scores, baseline_scores, seed=seed, clusters=clusters)
        p_value = float((np.count_nonzero(as_if_alike >= observed) + 1) / (len(as_if_alike) + 1))
    return gain_summary(observed, gains, p_value)


def swapped_gains(
    task: str,
    y: np.ndarray,
    model_scores: np.ndarray,
    baseline_scores: np.ndarray,
    *,
    seed: int = 0,
    clusters: np.ndarray | None = None,
):
    """The model's gain over the baseline on :data:`CI_RESAMPLES` random swaps of the two's scores within
    each test row (a fair coin per row): the gain's distribution were the two alike, against which the
    observed gain's one-sided p-value is read (a paired permutation test). For ROC-AUC each one's ranks are
    swapped, scaled to (0, 1], not its raw scores, whose scales differ (Venkatraman and Begg's test for
    paired ROC curves): ROC-AUC reads ranks only. The bootstrap's share of resamples without a gain held
    no level with a few videos of a class (a baseline as good as the model was beaten at p < 0.05 in one
    run in six with three viral test videos); the swaps hold it. Clustered rows swap an author's together."""
    if task == "binary":
        first, second = (stats.rankdata(scores) / len(scores) for scores in (model_scores, baseline_scores))
        statistic, sign = auc_along, 1.0
    else:
        first, second, statistic, sign = model_scores, baseline_scores, rmse_along, -1.0
    rng, batches = np.random.default_rng(seed), []
    for start in range(0, CI_RESAMPLES, PAIRED_BATCH):
        size = min(PAIRED_BATCH, CI_RESAMPLES - start)
        if clusters is None:
            swap = rng.random((size, len(y))) < 0.5
        else:
            swap = (rng.random((size, cluster_count(clusters))) < 0.5)[:, clusters]
        swapped = sign * (statistic(y, np.where(swap, second, first)) - statistic(y, np.where(swap, first, second)))
        batches.append(swapped)
    return np.concatenate(batches)


def resampled_metric(
    task: str, y: np.ndarray, scores: np.ndarray, *, seed: int = 0, clusters: np.ndarray | None = None
) -> np.ndarray:
    """The main metric of ``scores`` on each of :data:`CI_RESAMPLES` bootstrap resamples of the rows.

    Binary: positives and negatives resampled apart (stratified, as the AUC's own interval), so every
    resample has both classes and an AUC. Clustered rows: whole authors resampled (:func:`author_draws`),
    stratified alike. The same ``y``, ``seed`` and ``clusters`` draw the same resamples, so two scorings
    of the same rows compare resample by resample.
    """
    if clusters is not None:
        return _resampled_authors(task, y, scores, seed=seed, clusters=clusters)
    statistic = auc_along if task == "binary" else rmse_along
    strata = [np.flatnonzero(y == 1), np.flatnonzero(y == 0)] if task == "binary" else [np.arange(len(y))]
    rng, batches = np.random.default_rng(seed), []
    for start in range(0, CI_RESAMPLES, PAIRED_BATCH):  # in batches: a large test split stays in memory
        size = min(PAIRED_BATCH, CI_RESAMPLES - start)
        rows = np.concatenate([rng.choice(members, (size, len(members))) for members in strata], axis=1)
        batches.append(statistic(y[rows], scores[rows]))
    return np.concatenate(batches)


def _resampled_authors(task: str, y: np.ndarray, scores: np.ndarray, *, seed: int, clusters: np.ndarray) -> np.ndarray:
    rng, batches = np.random.default_rng(seed), []
    for start in range(0, CI_RESAMPLES, PAIRED_BATCH):
        drawn = author_draws(rng, task, y, clusters, min(PAIRED_BATCH, CI_RESAMPLES - start))
        weights = drawn[:, clusters].astype(float)
        batches.append(_weighted_auc(y, scores, weights) if task == "binary" else _weighted_rmse(y, scores, weights))
    return np.concatenate(batches)


def author_draws(rng: np.random.Generator, task: str, y: np.ndarray, clusters: np.ndarray, size: int) -> np.ndarray:
    """How often each author is drawn in ``size`` bootstrap resamples of the authors, ``(size, authors)``.

    Binary: the authors with a positive and those without drawn apart, as many of each as there are (the
    authors' form of the stratified bootstrap of videos), so every resample has a positive, and a negative
    from those without one; where every author has a positive, the authors with a negative and those
    without are drawn apart instead. Drawn all together, a resample without a viral video had no ROC-AUC:
    with two authors holding them, one resample in seven, with one, a third, and the interval was that of
    the others alone. Finer strata (apart the authors with both classes) would draw an author alone in its
    stratum in every resample, and its videos' variation would be lost: :func:`paired_comparison` needs two
    authors of each class."""
    k = cluster_count(clusters)
    if task != "binary":
        return rng.multinomial(k, np.full(k, 1 / k), size=size)
    has_positive, has_negative = (np.bincount(clusters, weights=y == label, minlength=k) > 0 for label in (1, 0))
    holds = has_negative if has_positive.all() else has_positive  # a class some author lacks, where one does
    drawn = np.zeros((size, k), dtype=int)
    for members in (np.flatnonzero(holds), np.flatnonzero(~holds)):
        if len(members):
            drawn[:, members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=size)
    return drawn


def class_holders(y: np.ndarray, clusters: np.ndarray | None) -> tuple[int, int]:
    """How many videos (authors, where rows cluster) hold a positive, and how many a negative."""
    if clusters is None:
        return int(np.count_nonzero(y == 1)), int(np.count_nonzero(y == 0))
    return len(np.unique(clusters[y == 1])), len(np.unique(clusters[y == 0]))


def _weighted_auc(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC with each row counted ``weights[b, row]`` times, for every resample ``b`` at once: the
    negatives' weight below each score (half of those tied), summed over the positives' weights."""
    order = np.argsort(scores, kind="stable")
    ordered, positive = scores[order], y[order] == 1
    new_value = np.r_[True, ordered[1:] != ordered[:-1]]
    tie_group = np.cumsum(new_value) - 1
    weights = weights[:, order]
    negative_weights = np.where(positive, 0.0, weights)
    per_group = np.add.reduceat(negative_weights, np.flatnonzero(new_value), axis=1)
    below = (np.cumsum(per_group, axis=1) - per_group / 2)[:, tie_group]
    positive_weights = np.where(positive, weights, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(positive_weights * below, axis=1) / (positive_weights.sum(axis=1) * negative_weights.sum(axis=1))


def _weighted_rmse(y: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(weights * (y - scores) ** 2, axis=1) / np.sum(weights, axis=1))


def _percentiles(values: np.ndarray) -> list[float] | None:
    """The :data:`CI_LEVEL` percentile interval of resampled values, those undefined (NaN) left out."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = (1 - CI_LEVEL) / 2
    return [float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))]


def gain_summary(observed: float | None, gains: np.ndarray, p_value: float | None = None) -> dict:
    """A gain, its resampled values and its one-sided ``p_value`` (:func:`swapped_gains`' share of swaps
    gaining as much, counted with the observed one so that it is never 0) as ``difference``, its percentile
    interval ``difference_ci`` and ``p_value``; all null without a gain."""
    if observed is None or len(gains) == 0:
        return {"difference": None, "difference_ci": None, "p_value": None}
    return {"difference": observed, "difference_ci": _percentiles(gains), "p_value": p_value}
