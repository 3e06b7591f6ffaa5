"""Gradient-boosted trees on the feature tables: the field's best recipe beside the paper's network.

The SMP Challenge's winning TikTok system was frozen embeddings plus author, time and metadata
features fed to a gradient-boosted model. :func:`fit_gbdt` is that model (LightGBM through its sklearn
API, early stopping on the validation split); :func:`train_gbdt` is ``corpus train --model gbdt``: the
same run directory and metrics.json shape as the paper's network, so the report and the verdict read
both alike. Only the train split is fitted on; val picks the number of rounds; test is scored once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import lightgbm
import numpy as np
import pandas as pd
from lightgbm.callback import CallbackEnv

from .._files import remove_abandoned_scratch, write_text_atomically
from ..errors import ConfigError
from . import plots
from .baseline_features import growth_features, metadata_features
from .config import TrainConfig, refuse_a_used_run_dir, run_dir_for
from .export_table import Export, load_export
from .metrics import Baselines, baseline_reports, evaluate_against

EARLY_STOPPING_ROUNDS = 50
# A leaf holds a tenth of the train rows, between 5 and 30: on a few hundred rows, leaves that small
# only memorise noise (measured on a 600-post replica: single-modality models fall 0.05-0.15 ROC-AUC
# short of their oracles with LightGBM's defaults, and reach them with these).
MIN_ROWS_PER_LEAF, MAX_ROWS_PER_LEAF = 5, 30
ROW_SUBSAMPLE = 0.8  # each tree sees 80% of the rows and of the columns: bagging against the same noise


@dataclass(frozen=True)
class GbdtFit:
    """A fitted model, its scores on val and test, and where early stopping left it."""

    model: lightgbm.LGBMModel
    columns: list[str]
    scores: dict[str, np.ndarray]
    best_iteration: int
    curve: pd.DataFrame  # round, train_loss, val_loss

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        return _scores(self.model, rows[self.columns])


def fit_gbdt(features: pd.DataFrame, export: Export, config: TrainConfig) -> GbdtFit:
    """Fit on the train rows of ``features`` (indexed like ``export.table``), stop early on val."""
    if features.shape[1] == 0:
        raise ConfigError("gbdt: no feature columns to learn from (are the --modalities' tables empty?)")
    split = export.table["split"].to_numpy()
    target = export.table[export.target_column].to_numpy(dtype=float)
    rows = {name: features[split == name] for name in ("train", "val", "test")}
    labels = {name: target[split == name] for name in ("train", "val", "test")}
    parameters: dict[str, Any] = dict(
        n_estimators=config.rounds,
        learning_rate=config.boost_lr,
        num_leaves=config.leaves,
        min_child_samples=int(np.clip(len(labels["train"]) // 10, MIN_ROWS_PER_LEAF, MAX_ROWS_PER_LEAF)),
        subsample=ROW_SUBSAMPLE,
        subsample_freq=1,
        colsample_bytree=ROW_SUBSAMPLE,
        random_state=config.seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )
    if export.task == "binary":
        if len(np.unique(labels["train"])) < 2:
            raise ConfigError("gbdt: the train split has one class")
        model: lightgbm.LGBMModel = lightgbm.LGBMClassifier(objective="binary", **parameters)
        labels = {name: values.astype(int) for name, values in labels.items()}
    else:
        model = lightgbm.LGBMRegressor(objective="regression", **parameters)
    history: dict = {}
    train_history: list[dict[str, float]] = []
    model.fit(
        rows["train"],
        labels["train"],
        eval_X=rows["val"],
        eval_y=labels["val"],
        eval_names=["val"],
        callbacks=[
            _record_train_loss(train_history),
            lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False),
            lightgbm.record_evaluation(history),
        ],
    )
    metric = next(iter(history["val"]))
    curve = pd.DataFrame(
        {
            "round": np.arange(1, len(history["val"][metric]) + 1),
            "train_loss": [losses[metric] for losses in train_history],
            "val_loss": history["val"][metric],
        }
    )
    return GbdtFit(
        model=model,
        columns=list(features.columns),
        scores={name: _scores(model, rows[name]) for name in ("val", "test")},
        best_iteration=int(model.best_iteration_ or config.rounds),
        curve=curve,
    )


def _record_train_loss(rounds: list[dict[str, float]]) -> Callable[[CallbackEnv], None]:
    """A callback appending each round's losses on the train rows (by metric), read off the booster's own
    running train scores. Not an eval set: the sklearn API knows the train data among eval sets only by
    identity (``eval_X[i] is X and eval_y[i] is y``), which the classifier's re-encoded labels never pass,
    so a train set given there is taken for validation data and early stopping picks its last round."""

    def record(env: CallbackEnv) -> None:
        booster = cast(lightgbm.Booster, env.model)  # fit trains one booster (only lightgbm.cv has a CVBooster)
        rounds.append({result.metric_name: result.metric_value for result in booster.eval_train()})

    return record


def _scores(model: lightgbm.LGBMModel, rows: pd.DataFrame) -> np.ndarray:
    if isinstance(model, lightgbm.LGBMClassifier):
        return np.asarray(model.predict_proba(rows))[:, 1]
    return np.clip(np.asarray(model.predict(rows)), 0.0, 1.0)


def export_baselines(export: Export) -> Baselines:
    """The baselines fitted and scored on an export's rows: what every model on it is judged against."""
    splits = {name: export.split(name) for name in ("train", "val", "test")}
    target = export.target_column
    return baseline_reports(
        export.task,
        y_val=splits["val"][target],
        y_test=splits["test"][target],
        train_y=splits["train"][target],
        features={name: metadata_features(rows) for name, rows in splits.items()},
        growth=growth_features(export),
        test_authors=export.test_authors(),
    )


def evaluate_fit(fit: GbdtFit, export: Export, baselines: Baselines | None = None) -> dict:
    """metrics.json's body for a fit: the model's test metrics beside the same baselines as every run
    (:func:`export_baselines`, made here unless given)."""
    target = export.target_column
    return evaluate_against(
        export.task,
        baselines if baselines is not None else export_baselines(export),
        y_val=export.split("val")[target],
        scores_val=fit.scores["val"],
        y_test=export.split("test")[target],
        scores_test=fit.scores["test"],
    )


def gain_importances(fit: GbdtFit) -> pd.Series:
    """Total split gain per feature, largest first."""
    gains = fit.model.booster_.feature_importance(importance_type="gain")
    return pd.Series(gains, index=fit.columns, name="gain").sort_values(ascending=False)


def train_gbdt(config: TrainConfig, features: pd.DataFrame, provenance: dict) -> Path:
    """``corpus train --model gbdt``: fit, evaluate and write the run directory; returns it.

    ``features`` are the feature tables of ``config.modalities`` (indexed like the export's table);
    ``provenance`` says how they were made (it is written into metrics.json, random init included).
    """
    run_dir = run_dir_for(config)
    refuse_a_used_run_dir(run_dir)
    export = load_export(config.export_dir, label=config.label)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_scratch(run_dir)  # what a run killed in this folder left half-written
    write_text_atomically(run_dir / "config.json", json.dumps(config.to_json(), indent=2) + "\n")
    fit = fit_gbdt(features, export, config)
    metrics = evaluate_fit(fit, export)
    metrics["run"] = {
        "model": "gbdt",
        "modalities": list(config.modality_list),
        "export": str(export.root),
        "export_name": export.manifest.get("name"),
        "export_version": export.manifest.get("version"),
        "best_iteration": fit.best_iteration,
        "features": provenance,
    }
    fit.model.booster_.save_model(str(run_dir / "model.txt"))
    gains = gain_importances(fit)
    gains.rename_axis("feature").reset_index().to_csv(run_dir / "importances.csv", index=False)
    fit.curve.to_csv(run_dir / "history.csv", index=False)

    predictions = pd.concat(
        [
            export.split(name)[["video_id"]].assign(
                split=name, target=export.split(name)[export.target_column].astype(float), score=fit.scores[name]
            )
            for name in ("val", "test")
        ],
        ignore_index=True,
    )
    threshold = metrics["model"]["threshold"]
    if threshold is not None:
        predictions["label"] = (predictions["score"] >= threshold).astype(int)
    predictions.to_parquet(run_dir / "predictions.parquet", index=False)
    plots.loss_curves(fit.curve.rename(columns={"round": "epoch"}), run_dir / "loss_curves.png", x_label="round")
    if export.task == "binary":
        plots.confusion(metrics["model"]["at_tuned"]["confusion_matrix"], threshold, run_dir / "confusion_matrix.png")
    # Last, and whole or not at all: its presence is what makes the run finished (latest_run, the report).
    write_text_atomically(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return run_dir
