"""``corpus ablate``: which signal carries virality in this corpus.

One gbdt model per line: each modality alone, all but one, and all of them, every line judged by the
same verdict as any run (margin over the best baseline, significance against chance and against each
baseline on paired resamples) with a bootstrap interval
over test rows. The all-modality model then says what it leaned on: LightGBM's split gain per feature
and per modality, and permutation importance on test (a modality's columns shuffled together, so the
drop is the modality's, not one of its correlated columns'). Written as ``ablation.json`` and
``ablation.png`` under ``EXPORT/ablations/<time>/``; the report shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from .config import TrainConfig
from .data import load_export
from .gbdt import GbdtFit, evaluate_fit, export_baselines, fit_gbdt, gain_importances
from .metrics import auc_along, hardest_baseline, rmse_along

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
    best_fit = fits["all"] if "all" in fits else fits[modalities[0]]
    result = {
        "export": str(export.root),
        "export_name": export.manifest.get("name"),
        "export_version": export.manifest.get("version"),
        "model": "gbdt",
        "task": export.task,
        "main_metric": metrics["main_metric"],
        "n_test": metrics["n_test"],
        "baselines": {name: b.get(metrics["main_metric"]) for name, b in metrics["baselines"].items()},
        "rows": rows,
        "oracles": oracles or {},
        "importances": _importances(best_fit, export.split("test"), features, export, columns, config.seed),
        "features": provenance,
        "figure": "ablation.png",
    }
    run_dir = Path(out) if out else export.root / "ablations" / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "ablation.json").write_text(json.dumps(result, indent=2) + "\n")
    ablation_figure(result, run_dir / "ablation.png")
    return run_dir


def _importances(
    fit: GbdtFit, test: pd.DataFrame, features: pd.DataFrame, export, columns: dict[str, list[str]], seed: int
) -> dict:
    """Gain per feature (top ones) and per modality; permutation drop on test per modality and top feature."""
    gains = gain_importances(fit)
    test_rows = features[export.table["split"].to_numpy() == "test"]
    target = test[export.target_column].to_numpy(dtype=float)
    statistic = auc_along if export.task == "binary" else rmse_along
    sign = 1.0 if export.task == "binary" else -1.0  # a worse RMSE is a larger one

    def score(rows: pd.DataFrame) -> float:
        return float(statistic(target, fit.predict(rows)))

    reference = score(test_rows)
    rng = np.random.default_rng(seed)

    def drop(group: list[str]) -> float:
        drops = []
        for _ in range(PERMUTATION_REPEATS):
            shuffled = test_rows.copy()
            order = rng.permutation(len(shuffled))
            shuffled[group] = shuffled[group].to_numpy()[order]
            drops.append(sign * (reference - score(shuffled)))
        return float(np.mean(drops))

    used = {m: cols for m, cols in columns.items() if set(cols) <= set(fit.columns)}
    top = list(gains.index[:TOP_FEATURES])
    return {
        "gain_by_modality": {m: float(gains[cols].sum()) for m, cols in used.items()},
        "permutation_by_modality": {m: drop(cols) for m, cols in used.items()},
        "gain_top_features": {name: float(gains[name]) for name in top},
        "permutation_top_features": {name: drop([name]) for name in top},
        "permutation_repeats": PERMUTATION_REPEATS,
    }


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
    left.set(xlabel=f"test {result['main_metric']} (95% bootstrap CI; green = beats the baselines)")
    left.legend(loc="lower right")
    by_modality = result["importances"]["permutation_by_modality"]
    right.barh(list(by_modality)[::-1], list(by_modality.values())[::-1], color="tab:blue")
    right.set(xlabel=f"drop in test {result['main_metric']} when shuffled", title="Permutation importance (all)")
    figure.suptitle("What drives virality in this corpus")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
