"""Honest evaluation: the model's test metrics beside trivial, metadata-only and early-views baselines.

The paper's models collapsed to a constant prediction and the reported numbers hid it. Here every
report carries the baselines, a ``collapsed`` flag and a ``beats_baselines`` verdict that needs a
margin over the best baseline *and* statistical significance on the test split: the model's ranking
must beat chance, and the model must beat each baseline in a paired test on the test rows (two scores
both far from chance can still be indistinguishable from each other), so a small or label-free test set
never yields a claim. The early-views baseline (plays at
1h / 6h / 1d and the growth between them) exists only for exports labelled at a fixed age
(``--at-age``), where it asks whether early popularity alone already predicts the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .resampling import (
    CI_LEVEL,
    CI_RESAMPLES,
    auc_ci,
    chance_p_value,
    class_holders,
    cluster_codes,
    cluster_count,
    effective_clusters,
    finite,
    paired_comparison,
    rank_correlation_design_effect,
    rmse_ci,
    widened_p,
)

# Test predictions with less spread than this, ranking the test rows no better than chance, are a constant
# in disguise. The ranking is asked too: a model that ranks well within a narrow band of scores (LightGBM
# stopped after a round or two at a small learning rate) has not collapsed, whatever its scale.
COLLAPSE_STD = 0.01
AUC_MARGIN = 0.05  # binary: ROC-AUC must exceed the best baseline by this much
RMSE_MARGIN = 0.05  # continuous: RMSE must be this fraction below the best baseline's
# A test split worth fewer independent authors than this (Kish's effective number of clusters) claims
# nothing: with four authors' worth, one arrangement in six ranks them perfectly by chance alone.
MIN_EFFECTIVE_AUTHORS = 10
SIGNIFICANCE = 0.05  # one-sided p-value the model must reach against chance and against each baseline
EARLY_VIEWS = "early-views"  # the baseline on plays at early ages, when the export has them (--at-age)


def binary_at(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Accuracy, precision, recall, F1 and confusion matrix ([[tn, fp], [fn, tp]]) at one threshold."""
    predicted = (scores >= threshold).astype(int)
    return {
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "confusion_matrix": confusion_matrix(y, predicted, labels=[0, 1]).tolist(),
    }


def tune_threshold(y_val: np.ndarray, scores_val: np.ndarray) -> tuple[float, str]:
    """The validation threshold with the best F1 (ties: the one closest to 0.5); 0.5 if val has one class
    or the scores one value (the best F1 of a constant is calling every video viral, which would turn
    the majority baseline into its opposite)."""
    if len(np.unique(y_val)) < 2:
        return 0.5, "validation split has one class; threshold left at 0.5"
    if np.ptp(scores_val) == 0:
        return 0.5, "the scores are one constant; threshold left at 0.5"
    candidates = np.unique(np.concatenate([scores_val, [0.5]]))
    # F1 at every candidate at once: 2 TP / (predicted positives + actual positives), counted by binary
    # search; one division of integers, so equal F1s are equal floats and ties are exact.
    positives = np.sort(scores_val[y_val == 1])
    predicted = len(scores_val) - np.searchsorted(np.sort(scores_val), candidates, side="left")
    true_positives = len(positives) - np.searchsorted(positives, candidates, side="left")
    f1s = 2 * true_positives / (predicted + len(positives))
    ties = candidates[f1s == f1s.max()]
    return float(ties[np.argmin(np.abs(ties - 0.5))]), "max F1 on validation"


def ranking_quality(y: np.ndarray, scores: np.ndarray, clusters: np.ndarray | None = None) -> dict:
    """ROC-AUC, its interval (Newcombe's) and its one-sided Mann-Whitney p-value, both widened where the
    rows cluster by author (``clusters``); null with a reason when undefined."""
    if len(np.unique(y)) < 2:
        return {
            "roc_auc": None,
            "roc_auc_ci": None,
            "roc_auc_note": "undefined: the test split has one class",
            "p_value": None,
        }
    interval = auc_ci(y, scores, clusters)
    return {
        "roc_auc": float(roc_auc_score(y, scores)),
        "roc_auc_ci": interval,
        "roc_auc_note": None if interval is not None else "no interval: the test split has one video of a class",
        "p_value": chance_p_value(y, scores, clusters),
    }


def binary_report(y_val, scores_val, y_test, scores_test, clusters: np.ndarray | None = None) -> dict:
    y_val, scores_val = np.asarray(y_val, int), np.asarray(scores_val, float)
    y_test, scores_test = np.asarray(y_test, int), np.asarray(scores_test, float)
    threshold, note = tune_threshold(y_val, scores_val)
    return {
        **ranking_quality(y_test, scores_test, clusters),
        "at_0.5": binary_at(y_test, scores_test, 0.5),
        "at_tuned": binary_at(y_test, scores_test, threshold),
        "threshold": threshold,
        "threshold_note": note,
        "score_std": float(np.std(scores_test)),
    }


def regression_report(y_val, scores_val, y_test, scores_test, clusters: np.ndarray | None = None) -> dict:
    """MSE, RMSE, MAE and Spearman (with its one-sided p-value) on the test split; the RMSE interval
    resamples authors and the p-value is widened where the rows cluster by author (``clusters``)."""
    y_test, scores_test = np.asarray(y_test, float), np.asarray(scores_test, float)
    mse = float(mean_squared_error(y_test, scores_test))
    report: dict[str, float | str | list[float] | None] = {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "rmse_ci": rmse_ci(y_test, scores_test, clusters=clusters),
        "mae": float(mean_absolute_error(y_test, scores_test)),
        "spearman": None,
        "spearman_note": None,
        "p_value": None,
        "threshold": None,
        "score_std": float(np.std(scores_test)),
    }
    if np.ptp(scores_test) == 0 or np.ptp(y_test) == 0:  # not std: equal floats' std can be 2e-16
        report["spearman_note"] = "undefined: predictions or targets are constant"
    else:
        result = stats.spearmanr(scores_test, y_test, alternative="greater")
        widening = rank_correlation_design_effect(scores_test, y_test, clusters)
        report["spearman"], report["p_value"] = (
            finite(result.statistic),
            widened_p(finite(result.pvalue), widening, clusters),
        )
    return report


def _linear_baseline(task: str, train_y: np.ndarray, features: dict) -> tuple | str:
    """(val scores, test scores) of a logistic (binary) / ridge (continuous) regression fitted on train.

    NaNs become the train split's column medians and each column with a missing train
    value gains a 0/1 "was missing" indicator, so a video never seen at an early age, or whose author's
    followers were unknown at its stats moment, still gets a score (a column with no train value at all
    becomes a constant, which the regression ignores). Without NaNs the imputer changes nothing.
    """
    imputer = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    if task == "binary":
        if len(np.unique(train_y)) < 2:
            return "cannot fit: the train split has one class"
        model = make_pipeline(imputer, StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=1000))
        model.fit(features["train"], train_y.astype(int))
        predict = lambda x: model.predict_proba(x)[:, 1]  # noqa: E731
    else:
        model = make_pipeline(imputer, StandardScaler(), Ridge(alpha=1.0)).fit(features["train"], train_y)
        predict = lambda x: np.clip(model.predict(x), 0.0, 1.0)  # noqa: E731
    return predict(features["val"]), predict(features["test"])


@dataclass(frozen=True)
class Baselines:
    """Every baseline's report on the val and test rows (or why it cannot be fitted), the test scores
    of those that could be, for the paired comparison with each model judged on these rows, and the
    test rows' clusters (:func:`~.resampling.cluster_codes` of their authors) every judgement uses."""

    reports: dict[str, dict]
    test_scores: dict[str, np.ndarray]
    test_clusters: np.ndarray | None = None


def _baseline_scores(
    task: str, train_y, features: dict[str, np.ndarray], growth: dict[str, pd.DataFrame] | None
) -> dict[str, tuple | str]:
    """Per baseline, (val scores, test scores) - or the reason it cannot be fitted."""
    train_y = np.asarray(train_y, float)
    n_val, n_test = len(features["val"]), len(features["test"])
    constant = float(train_y.mean())
    trivial = "majority" if task == "binary" else "mean"
    baselines: dict[str, tuple | str] = {trivial: (np.full(n_val, constant), np.full(n_test, constant))}
    baselines["metadata"] = _linear_baseline(task, train_y, features)
    if growth is not None:
        baselines[EARLY_VIEWS] = _linear_baseline(task, train_y, growth)
    return baselines


def _report_for(task: str):
    """The metrics of a task's scores on val and test: binary_report or regression_report."""
    return binary_report if task == "binary" else regression_report


def evaluate(
    task: str,
    *,
    y_val,
    scores_val,
    y_test,
    scores_test,
    train_y,
    features: dict[str, np.ndarray],
    growth: dict[str, pd.DataFrame] | None = None,
    test_authors=None,
) -> dict:
    """The metrics.json body: model, baselines, collapsed, beats_baselines and a one-line verdict.

    ``features`` holds the metadata-only baseline's inputs per split (``train``, ``val``, ``test``);
    ``growth`` the early-views baseline's (:func:`~.baseline_features.growth_features`), or ``None`` when the export
    has no growth columns: then there is no such baseline and the report is what it always was.
    ``test_authors`` (each test row's author) makes the intervals and tests count an author's videos as
    one cluster.
    """
    baselines = baseline_reports(
        task, y_val=y_val, y_test=y_test, train_y=train_y, features=features, growth=growth, test_authors=test_authors
    )
    return evaluate_against(task, baselines, y_val=y_val, scores_val=scores_val, y_test=y_test, scores_test=scores_test)


def baseline_reports(
    task: str,
    *,
    y_val,
    y_test,
    train_y,
    features: dict[str, np.ndarray],
    growth: dict[str, pd.DataFrame] | None,
    test_authors=None,
) -> Baselines:
    """The baselines fitted and scored once: the same for every model judged on these rows, so an
    ablation's lines share one set."""
    report = _report_for(task)
    clusters = cluster_codes(test_authors)
    reports: dict[str, dict] = {}
    test_scores: dict[str, np.ndarray] = {}
    for name, scores in _baseline_scores(task, train_y, features, growth).items():
        if isinstance(scores, str):
            reports[name] = {"note": scores}
        else:
            reports[name] = report(y_val, scores[0], y_test, scores[1], clusters)
            test_scores[name] = np.asarray(scores[1], float)
    if growth is not None:
        reports[EARLY_VIEWS]["inputs"] = list(growth["train"].columns)
    return Baselines(reports, test_scores, clusters)


def evaluate_against(task: str, baselines: Baselines, *, y_val, scores_val, y_test, scores_test) -> dict:
    """:func:`evaluate` with the baselines already fitted and scored (:func:`baseline_reports`)."""
    report, clusters = _report_for(task), baselines.test_clusters
    model = report(y_val, scores_val, y_test, scores_test, clusters)
    paired = {
        name: paired_comparison(task, y_test, scores_test, scores, clusters=clusters)
        for name, scores in baselines.test_scores.items()
    }
    collapsed = model["score_std"] < COLLAPSE_STD and not _significant(model["p_value"])
    effective = None if clusters is None else round(effective_clusters(clusters), 1)
    lone = task == "binary" and clusters is not None and min(class_holders(np.asarray(y_test), clusters)) < 2
    beats, verdict = _judge(task, model, baselines.reports, paired, collapsed, effective, lone_author_class=lone)
    main = "roc_auc" if task == "binary" else "rmse"
    return {
        "task": task,
        "main_metric": main,
        "n_test": int(len(y_test)),
        "n_test_clusters": None if clusters is None else cluster_count(clusters),
        "n_test_clusters_effective": effective,
        "model": model,
        "baselines": baselines.reports,
        "paired": paired,
        "collapsed": bool(collapsed),
        "beats_baselines": beats,
        "verdict": verdict,
        "criteria": {
            "collapse_std": COLLAPSE_STD,
            "auc_margin": AUC_MARGIN,
            "rmse_margin": RMSE_MARGIN,
            "significance": SIGNIFICANCE,
            "min_effective_authors": MIN_EFFECTIVE_AUTHORS,
            "paired": (
                f"the model's gain over each baseline: percentile bootstrap interval ({CI_RESAMPLES} resamples), "
                f"one-sided p-value by {CI_RESAMPLES} random swaps of the two's scores (ranks, for ROC-AUC) per row; "
                "a claim needs every p below the significance and every interval above 0"
            ),
            "clusters": (
                "none: no two test videos share an author, and every row counts as independent"
                if clusters is None
                else "test videos clustered by author (n_test_clusters): bootstraps resample authors, swaps swap "
                "an author's videos together, and ROC-AUC's interval and the chance p-values are widened by the "
                "design effect (Obuchowski's clustered AUC variance; Kish's for Spearman)"
            ),
        },
    }


def main_metric_line(metrics: dict) -> str:
    """The model's and every baseline's test main metric on one line (what ``corpus train`` prints)."""
    metric = metrics["main_metric"]

    def shown(values: dict) -> str:
        return "n/a" if values.get(metric) is None else f"{values[metric]:.3f}"

    parts = [f"model {shown(metrics['model'])}", *(f"{name} {shown(b)}" for name, b in metrics["baselines"].items())]
    return f"test {metric}: " + ", ".join(parts)


def hardest_baseline(paired: dict[str, dict]) -> tuple[str, float | None] | None:
    """The baseline the model is least surely better than (largest paired p-value; None counts as 1)."""
    if not paired:
        return None
    name = max(paired, key=lambda n: 1.0 if paired[n]["p_value"] is None else paired[n]["p_value"])
    return name, paired[name]["p_value"]


def _judge(
    task: str,
    model: dict,
    baselines: dict,
    paired: dict[str, dict],
    collapsed: bool,
    effective: float | None,
    *,
    lone_author_class: bool = False,
) -> tuple[bool, str]:
    """Whether the model beats every baseline, and the verdict's sentence. ``lone_author_class``: every
    test video of a class is one author's (:func:`.resampling.class_holders`)."""
    spread = f"test std {model['score_std']:.4f}"
    # A test split of one class comes first: it is why nothing can be claimed, whatever the model does.
    if task == "binary" and model["roc_auc"] is None:
        also = f" (and the predictions are a near constant, {spread})" if collapsed else ""
        return False, f"Test ROC-AUC is {model['roc_auc_note']}; nothing can be claimed{also}."
    if task == "binary" and model.get("roc_auc_ci") is None:  # auc_ci: one video of a class
        return False, (
            f"Test ROC-AUC {model['roc_auc']:.3f} has no confidence interval: the test split holds a single video "
            "of one class, which no resample can vary; nothing can be claimed."
        )
    if collapsed:
        return False, (
            f"The model collapsed to a (near) constant prediction ({spread}, ranking no better than chance, "
            f"p={_p_text(model['p_value'])}); it does not beat the baselines."
        )
    if effective is not None and effective < MIN_EFFECTIVE_AUTHORS:
        return False, (
            f"The test videos come from too few authors to claim anything: worth {effective:g} independent ones "
            f"(fewer than {MIN_EFFECTIVE_AUTHORS}), and an author's videos are alike."
        )
    if lone_author_class:
        return False, (
            "Every viral (or every ordinary) test video is one author's: a model that told that author apart "
            "would rank them all, so nothing can be claimed."
        )
    metric, higher = ("roc_auc", True) if task == "binary" else ("rmse", False)
    fitted = {name: b[metric] for name, b in baselines.items() if b.get(metric) is not None}
    best_name = (max if higher else min)(fitted, key=lambda name: fitted[name])
    best, ours, p_value = fitted[best_name], model[metric], model["p_value"]
    margin_ok = ours >= best + AUC_MARGIN if higher else ours <= best * (1 - RMSE_MARGIN)
    beats_chance = _significant(p_value)
    hardest_name, paired_p = hardest_baseline(paired) or (best_name, None)
    # The one-sided test and the two-sided interval can disagree near the edge (p 0.034 beside an
    # interval from -0.011): a claim needs both, as the docs say an interval reaching 0 is none.
    reaching_zero = [name for name, gain in paired.items() if not _clear_of_zero(gain["difference_ci"])]
    beats_each = _significant(paired_p) and not reaching_zero
    summary = (
        f"test {metric} {ours:.3f} vs best baseline ({best_name}) {best:.3f}, p={_p_text(p_value)}; "
        f"paired against each baseline: largest p={_p_text(paired_p)} ({hardest_name})"
    )
    if margin_ok and beats_chance and beats_each:
        return True, f"The model beats every baseline: {summary}."
    if not margin_ok:
        reason = "margin too small"
    elif not beats_chance:
        reason = "not significant"
    elif not _significant(paired_p):
        reason = f"not significantly better than {hardest_name}"
    else:
        reason = f"the gain over {reaching_zero[0]} has a {CI_LEVEL:.0%} interval reaching 0"
    return False, f"The model does not beat the baselines ({reason}): {summary}."


def _clear_of_zero(interval: list[float] | None) -> bool:
    return interval is not None and interval[0] > 0


def _significant(p_value: float | None) -> bool:
    return p_value is not None and p_value < SIGNIFICANCE


def _p_text(p_value: float | None) -> str:
    return "n/a" if p_value is None else f"{p_value:.3g}"
