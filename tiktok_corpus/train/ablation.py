"""``corpus ablate``: which signal carries virality in this corpus.

One gbdt model per line: each modality alone, all but one, and all of them, every line judged by the
same verdict as any run (margin over the best baseline, significance against chance and against each
baseline in a paired test) with a 95% interval, its significance then held to
Holm's correction over the ablation's lines (eleven for five modalities, each tested at 5%). The
all-modality model then says what it leaned on: LightGBM's split gain per feature and per modality, and
permutation importance on test (a modality's columns shuffled together, so the drop is the modality's,
not one of its correlated columns') with a bootstrap interval over the test rows. What a model that does
not beat the baselines leaned on says nothing about virality: its importances are marked not credible,
and the figure ranks none. Written as ``ablation.json`` and ``ablation.png`` under
``EXPORT/ablations/<time>/``; the report shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from textwrap import fill

import numpy as np
import pandas as pd

from .._files import write_text_atomically
from ..errors import ConfigError
from .config import TrainConfig, new_run_name
from .export_table import load_export
from .gbdt import GbdtFit, evaluate_fit, export_baselines, fit_gbdt, gain_importances
from .metrics import SIGNIFICANCE, hardest_baseline
from .resampling import auc_along, cluster_codes, gain_summary, resampled_metric, rmse_along

PERMUTATION_REPEATS = 5
TOP_FEATURES = 20


@dataclass(frozen=True)
class AblationLine:
    name: str
    kind: str  # "single" | "all but one" | "all"
    modalities: tuple[str, ...]


def ablation_lines(modalities: tuple[str, ...]) -> list[AblationLine]:
    """Each modality alone, each left out (when three or more), then all."""
    lines = [AblationLine(m, "single", (m,)) for m in modalities]
    if len(modalities) > 2:
        lines += [
            AblationLine(f"all but {m}", "all but one", tuple(x for x in modalities if x != m)) for m in modalities
        ]
    if len(modalities) > 1:
        lines.append(AblationLine("all", "all", modalities))
    return lines


def modality_of(column: str) -> str:
    """Feature columns are named ``<modality>.<feature>``."""
    return column.split(".", 1)[0]


def ablation_dir(config: TrainConfig, out: Path | None) -> Path:
    """Where an ablation goes: ``out``, else a new folder under the export's ``ablations/``; refused when
    it already holds one."""
    run_dir = Path(out) if out else Path(config.export_dir) / "ablations" / new_run_name()
    if (run_dir / "ablation.json").exists():
        raise ConfigError(f"{run_dir} already holds an ablation; pick another --out")
    return run_dir


def ablate(
    config: TrainConfig,
    features: pd.DataFrame,
    provenance: dict,
    *,
    out: Path | None = None,
    oracles: dict[str, float] | None = None,
    on_line: Callable[[dict], None] | None = None,
) -> Path:
    """Fit every line of the ablation on ``features`` (indexed like the export's table), write the result.

    ``oracles`` (the demo passes the replica's) are the ROC-AUC of each modality's true latent signal on
    the same test rows, shown beside the lines. ``on_line`` sees each line's result as it lands.
    """
    run_dir = ablation_dir(config, out)
    export = load_export(config.export_dir, label=config.label)
    modalities = config.modality_list
    present = {modality_of(c) for c in features.columns}
    missing = [m for m in modalities if m not in present]
    if missing:
        raise ConfigError(f"ablate: no feature columns for {', '.join(missing)}")
    columns = {m: [c for c in features.columns if modality_of(c) == m] for m in modalities}
    rows, fits = [], {}
    baselines = export_baselines(export)  # every line is judged against the same ones
    for line in ablation_lines(modalities):
        fit = fit_gbdt(features[[c for m in line.modalities for c in columns[m]]], export, config)
        fits[line.name] = fit
        metrics = evaluate_fit(fit, export, baselines)
        main = metrics["main_metric"]
        row = {
            "name": line.name,
            "kind": line.kind,
            "modalities": list(line.modalities),
            "metric": metrics["model"][main],
            "metric_note": metrics["model"].get(f"{main}_note"),  # why the metric is null or has no interval
            "ci": metrics["model"][f"{main}_ci"],
            "p_value": metrics["model"]["p_value"],
            "paired_p_value": (hardest_baseline(metrics["paired"]) or (None, None))[1],
            "best_iteration": fit.best_iteration,
            "beats_baselines": metrics["beats_baselines"],
            "collapsed": metrics["collapsed"],
            "verdict": metrics["verdict"],
        }
        rows.append(row)
        if on_line is not None:
            on_line(row)
    hold_to_the_family(rows)
    explained = "all" if "all" in fits else modalities[0]
    importances = _importances(fits[explained], export.split("test"), features, export, columns, config.seed)
    result = {
        "export": str(export.root.resolve()),
        "export_name": export.manifest.get("name"),
        "export_version": export.manifest.get("version"),
        "model": "gbdt",
        "task": export.task,
        "main_metric": metrics["main_metric"],
        "n_test": metrics["n_test"],
        "baselines": {name: b.get(metrics["main_metric"]) for name, b in metrics["baselines"].items()},
        "rows": rows,
        "multiple_comparisons": {"method": "holm", "family_size": len(rows), "significance": SIGNIFICANCE},
        "oracles": oracles or {},
        "importances": {**importances, **_credibility(next(row for row in rows if row["name"] == explained))},
        "features": provenance,
        "figure": "ablation.png",  # in this ablation's folder (the report reads it from there only)
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    ablation_figure(result, run_dir / "ablation.png")
    # Last, and whole or not at all: the report takes a folder with an ablation.json for a finished one.
    write_text_atomically(run_dir / "ablation.json", json.dumps(result, indent=2) + "\n")
    return run_dir


def _importances(
    fit: GbdtFit, test: pd.DataFrame, features: pd.DataFrame, export, columns: dict[str, list[str]], seed: int
) -> dict:
    """Gain per feature (top ones) and per modality; permutation drop on test per modality and top feature,
    each with its 95% interval over resamples of the test rows (those of the paired comparison with the
    baselines: stratified for ROC-AUC), the drop's mean over the shuffles taken on each resample."""
    gains = gain_importances(fit)
    test_rows = features[export.table["split"].to_numpy() == "test"]
    target = test[export.target_column].to_numpy(dtype=float)
    statistic = auc_along if export.task == "binary" else rmse_along
    sign = 1.0 if export.task == "binary" else -1.0  # a worse RMSE is a larger one
    reference_scores = fit.predict(test_rows)
    reference = float(statistic(target, reference_scores))
    clusters = cluster_codes(export.test_authors())

    def on_resamples(scores: np.ndarray) -> np.ndarray:  # the paired comparison's resamples, whatever the seed
        return resampled_metric(export.task, target, scores, clusters=clusters)

    measurable = np.isfinite(reference) and len(target) > 1  # not on a one-class test split
    reference_resampled = on_resamples(reference_scores) if measurable else None
    rng = np.random.default_rng(seed)

    def drop(group: list[str]) -> dict:
        if reference_resampled is None:
            return gain_summary(None, np.array([]))
        drops, resampled_drops = [], []
        for _ in range(PERMUTATION_REPEATS):
            shuffled = test_rows.copy()
            order = rng.permutation(len(shuffled))
            shuffled[group] = shuffled[group].to_numpy()[order]
            scores = fit.predict(shuffled)
            drops.append(sign * (reference - float(statistic(target, scores))))
            resampled_drops.append(sign * (reference_resampled - on_resamples(scores)))
        return gain_summary(float(np.mean(drops)), np.mean(resampled_drops, axis=0))

    used = {m: cols for m, cols in columns.items() if set(cols) <= set(fit.columns)}
    top = list(gains.index[:TOP_FEATURES])
    by_modality = {m: drop(cols) for m, cols in used.items()}
    by_feature = {name: drop([name]) for name in top}
    return {
        "gain_by_modality": {m: float(gains[cols].sum()) for m, cols in used.items()},
        "permutation_by_modality": {m: d["difference"] for m, d in by_modality.items()},
        "permutation_by_modality_ci": {m: d["difference_ci"] for m, d in by_modality.items()},
        "gain_top_features": {name: float(gains[name]) for name in top},
        "permutation_top_features": {name: d["difference"] for name, d in by_feature.items()},
        "permutation_top_features_ci": {name: d["difference_ci"] for name, d in by_feature.items()},
        "permutation_repeats": PERMUTATION_REPEATS,
    }


def hold_to_the_family(rows: list[dict]) -> None:
    """Each line's claim held to Holm's step-down correction over all the lines: a line claims only if
    its own verdict holds and its adjusted p-value (of the largest of its tests' p-values: against chance
    and against the hardest baseline) stays under :data:`SIGNIFICANCE`. Eleven lines at 5% each would
    otherwise find a line that "beats the baselines" in many ablations of pure noise."""
    claims = [_largest_p(row["p_value"], row["paired_p_value"]) for row in rows]
    adjusted = holm_adjusted(claims)
    for row, claim, holm in zip(rows, claims, adjusted, strict=True):
        row["claim_p_value"], row["holm_p_value"] = claim, holm
        if row["beats_baselines"] and not (holm is not None and holm < SIGNIFICANCE):
            row["beats_baselines"] = False
            row["verdict"] += (
                f" Not after Holm's correction over the {len(rows)} lines of this ablation "
                f"(adjusted p={'n/a' if holm is None else f'{holm:.3g}'})."
            )


def _largest_p(*p_values: float | None) -> float | None:
    return None if any(p is None for p in p_values) else max(p_values)  # type: ignore[type-var]


def holm_adjusted(p_values: list[float | None]) -> list[float | None]:
    """Holm's adjusted p-values, in the order given: the k-th smallest times (m - k + 1), made monotone
    and capped at 1. A missing p-value stays missing and still counts in the family's size m."""
    known = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (len(p_values) - rank) * p))
        adjusted[i] = running
    return adjusted


def _credibility(line: dict) -> dict:
    """Whether the importances of ``line``'s model may be read as what drives virality: only when that
    model beats the baselines (a model no better than them leaned on noise, whatever it leaned on)."""
    credible = bool(line["beats_baselines"])
    note = (
        f"the {line['name']} model beats the baselines: its importances say what carries the label here"
        if credible
        else f"not credible: the {line['name']} model does not beat the baselines, so what it leaned on says "
        "nothing about what drives virality"
    )
    return {"model": line["name"], "credible": credible, "credibility": note}


def best_baseline(result: dict) -> float | None:
    """The best baseline's test metric: the highest ROC-AUC, or the lowest RMSE."""
    best = min if result["main_metric"] == "rmse" else max
    return best((v for v in result["baselines"].values() if v is not None), default=None)


def ablation_figure(result: dict, path: Path) -> Path:
    """Each line's test metric with its interval, the best baseline as a line, oracles as marks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 0.45 * len(rows) + 1.6), width_ratios=(3, 2))
    names = [r["name"] for r in rows][::-1]
    values = np.array([np.nan if r["metric"] is None else r["metric"] for r in rows][::-1])
    bounds = [r["ci"] or [v, v] for r, v in zip(rows[::-1], values)]
    errors = np.array([[v - lo, hi - v] for v, (lo, hi) in zip(values, bounds)]).T
    colours = ["tab:green" if r["beats_baselines"] else "tab:grey" for r in rows[::-1]]
    left.barh(names, values, xerr=errors, color=colours, capsize=3)
    baseline = best_baseline(result)
    if baseline is not None:
        left.axvline(baseline, color="tab:red", linestyle="--", label=f"best baseline {baseline:.3f}")
    for name, value in result["oracles"].items():
        if name in names:
            left.plot(value, names.index(name), marker="D", color="black", label=None)
    left.set(xlabel=f"test {result['main_metric']} (95% CI; green = beats the baselines)")
    if left.get_legend_handles_labels()[0]:  # no baseline measured (a test split of one class): no legend
        left.legend(loc="lower right")
    draw_importances(right, result)
    credible = result["importances"]["credible"]
    figure.suptitle("What drives virality in this corpus" if credible else "No credible driver of virality here")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def draw_importances(axis, result: dict) -> None:
    """Permutation drops per modality with their intervals when credible; otherwise the reason, and no ranking."""
    importances = result["importances"]
    if not importances["credible"]:
        axis.text(0.5, 0.5, fill(importances["credibility"], 40), ha="center", va="center", wrap=True)
        axis.set_axis_off()
        axis.set_title(f"Permutation importance ({importances['model']})")
        return
    drops = importances["permutation_by_modality"]
    names = list(drops)[::-1]
    values = np.array([np.nan if drops[m] is None else drops[m] for m in names])
    bounds = [importances["permutation_by_modality_ci"][m] or [v, v] for m, v in zip(names, values)]
    errors = np.array([[v - lo, hi - v] for v, (lo, hi) in zip(values, bounds)]).T
    axis.barh(names, values, xerr=errors, color="tab:blue", capsize=3)
    axis.set(
        xlabel=f"drop in test {result['main_metric']} when shuffled (95% bootstrap CI)",
        title=f"Permutation importance ({importances['model']})",
    )
