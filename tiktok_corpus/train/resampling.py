"""The test split resampled and permuted: the statistics evaluated on every resample at once (ROC-AUC,
RMSE), the metrics' intervals (ROC-AUC's by Newcombe's score method, RMSE's by the bootstrap), and the
model's paired comparison with one baseline (an interval on the same bootstrap resamples, a one-sided
p-value by random swaps of the two's scores)."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, stats

CI_LEVEL = 0.95  # every confidence interval's level
CI_RESAMPLES = 2000  # the bootstrap's resamples and the paired test's swaps
PAIRED_BATCH = 200  # resamples (or swaps) drawn at once by the paired comparison


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


def auc_ci(y: np.ndarray, scores: np.ndarray) -> list[float] | None:
    """ROC-AUC's interval by Newcombe's score method (2006, his method 5): every AUC ``theta`` that the
    observed one lies within z standard errors of, the error Hanley and McNeil's at ``theta`` with each
    class counted as the two's mean size. A percentile bootstrap covered the true AUC of simulated test
    splits with 3 viral videos among 100 in 65-78% of them (95% promised; 84% with 30 at AUC 0.98),
    since a resample cannot rank what the few positives never showed; this covered 94-98% of them in
    every case tried (3 to 30 positives, AUC 0.5 to 0.98), and is as narrow as the bootstrap with 30."""
    y, scores = np.asarray(y, float), np.asarray(scores, float)
    if np.ptp(scores) == 0:  # a constant ranks every sample alike: AUC 0.5
        return [0.5, 0.5]
    positives, negatives = scores[y == 1], scores[y == 0]
    if min(len(positives), len(negatives)) < 2:  # one video of a class: no claim rests on it
        return None
    auc = float(auc_of_classes(positives, negatives))
    z = stats.norm.ppf(0.5 + CI_LEVEL / 2)
    mean_size = (len(positives) + len(negatives)) / 2

    def beyond(theta: float) -> float:  # > 0 where theta lies outside the interval
        spread = 1 + (mean_size - 1) * ((1 - theta) / (2 - theta) + theta / (1 + theta))
        variance = theta * (1 - theta) * spread / (len(positives) * len(negatives))
        return (auc - theta) ** 2 - z * z * variance

    inside = min(max(auc, 1e-9), 1 - 1e-9)  # an AUC of 0 or 1 is a root itself: the other lies just inside
    low = 0.0 if auc <= 0 else float(optimize.brentq(beyond, 0.0, inside))
    high = 1.0 if auc >= 1 else float(optimize.brentq(beyond, inside, 1.0))
    return [low, high]


def rmse_ci(y: np.ndarray, scores: np.ndarray, *, seed: int = 0) -> list[float] | None:
    """RMSE's percentile bootstrap interval over test rows; None with fewer than two."""
    if len(y) < 2:
        return None
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


def paired_comparison(task: str, y, model_scores, baseline_scores, *, seed: int = 0) -> dict:
    """The model against one baseline on the test rows (:func:`gain_summary` of the model's gain: ROC-AUC
    gained, or RMSE saved): its interval on the same bootstrap resamples, its p-value by
    :func:`swapped_gains` (against a constant's ROC-AUC, Mann-Whitney's: the gain is over chance)."""
    y = np.asarray(y, float)
    model_scores, baseline_scores = np.asarray(model_scores, float), np.asarray(baseline_scores, float)
    statistic, sign = (auc_along, 1.0) if task == "binary" else (rmse_along, -1.0)
    observed = finite(sign * float(statistic(y, model_scores) - statistic(y, baseline_scores)))
    # One video of a class is in every stratified resample: its rank would vary in none of them (as for
    # auc_ci, no interval), and a gain over a chance baseline would come out certain.
    too_few = len(y) < 2 or (task == "binary" and min(np.count_nonzero(y == 1), np.count_nonzero(y == 0)) < 2)
    if observed is None or too_few:
        return gain_summary(None, np.array([]))
    model, baseline = (resampled_metric(task, y, scores, seed=seed) for scores in (model_scores, baseline_scores))
    gains = sign * (model - baseline)
    if task == "binary" and np.ptp(baseline_scores) == 0:
        # A constant's ROC-AUC is 0.5: a gain over it is a ranking better than chance, which Mann-Whitney
        # tests exactly; swapping ranks with a constant's ties lost power (p 0.07 for a perfect ranking of
        # three viral videos among a hundred, where chance's p was 0.002).
        positives, negatives = model_scores[y == 1], model_scores[y == 0]
        p_value = float(stats.mannwhitneyu(positives, negatives, alternative="greater").pvalue)
    else:
        as_if_alike = swapped_gains(task, y, model_scores, baseline_scores, seed=seed)
        p_value = float((np.count_nonzero(as_if_alike >= observed) + 1) / (len(as_if_alike) + 1))
    return gain_summary(observed, gains, p_value)


def swapped_gains(task: str, y: np.ndarray, model_scores: np.ndarray, baseline_scores: np.ndarray, *, seed: int = 0):
    """The model's gain over the baseline on :data:`CI_RESAMPLES` random swaps of the two's scores within
    each test row (a fair coin per row): the gain's distribution were the two alike, against which the
    observed gain's one-sided p-value is read (a paired permutation test). For ROC-AUC each one's ranks are
    swapped, scaled to (0, 1], not its raw scores, whose scales differ (Venkatraman and Begg's test for
    paired ROC curves): ROC-AUC reads ranks only. The bootstrap's share of resamples without a gain held
    no level with a few videos of a class (a baseline as good as the model was beaten at p < 0.05 in one
    run in six with three viral test videos); the swaps hold it."""
    if task == "binary":
        first, second = (stats.rankdata(scores) / len(scores) for scores in (model_scores, baseline_scores))
        statistic, sign = auc_along, 1.0
    else:
        first, second, statistic, sign = model_scores, baseline_scores, rmse_along, -1.0
    rng, batches = np.random.default_rng(seed), []
    for start in range(0, CI_RESAMPLES, PAIRED_BATCH):
        swap = rng.random((min(PAIRED_BATCH, CI_RESAMPLES - start), len(y))) < 0.5
        swapped = sign * (statistic(y, np.where(swap, second, first)) - statistic(y, np.where(swap, first, second)))
        batches.append(swapped)
    return np.concatenate(batches)


def resampled_metric(task: str, y: np.ndarray, scores: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """The main metric of ``scores`` on each of :data:`CI_RESAMPLES` bootstrap resamples of the rows.

    Binary: positives and negatives resampled apart (stratified, as the AUC's own interval), so every
    resample has both classes and an AUC. The same ``y`` and ``seed`` draw the same resamples, so two
    scorings of the same rows compare resample by resample.
    """
    statistic = auc_along if task == "binary" else rmse_along
    strata = [np.flatnonzero(y == 1), np.flatnonzero(y == 0)] if task == "binary" else [np.arange(len(y))]
    rng, batches = np.random.default_rng(seed), []
    for start in range(0, CI_RESAMPLES, PAIRED_BATCH):  # in batches: a large test split stays in memory
        size = min(PAIRED_BATCH, CI_RESAMPLES - start)
        rows = np.concatenate([rng.choice(members, (size, len(members))) for members in strata], axis=1)
        batches.append(statistic(y[rows], scores[rows]))
    return np.concatenate(batches)


def gain_summary(observed: float | None, gains: np.ndarray, p_value: float | None = None) -> dict:
    """A gain, its resampled values and its one-sided ``p_value`` (:func:`swapped_gains`' share of swaps
    gaining as much, counted with the observed one so that it is never 0) as ``difference``, its percentile
    interval ``difference_ci`` and ``p_value``; all null without a gain."""
    if observed is None or len(gains) == 0:
        return {"difference": None, "difference_ci": None, "p_value": None}
    tail = (1 - CI_LEVEL) / 2
    return {
        "difference": observed,
        "difference_ci": [float(np.quantile(gains, tail)), float(np.quantile(gains, 1 - tail))],
        "p_value": p_value,
    }
