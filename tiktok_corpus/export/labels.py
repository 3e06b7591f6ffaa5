"""Virality labels, exactly as "The Viral Vision" defines them (written out in docs/labels.md).

Pure, vectorised functions over a table with one row per video. :func:`fit_labels` learns every
parameter from the rows it is given and returns them as a JSON-serialisable dict; :func:`apply_labels`
reapplies that dict to any other rows (new videos), so a trained model's targets can be reproduced.

* ``virality_score``: per metric ``log1p``, then robust scaling ``(x - median) / IQR`` (linear
  interpolated quantiles, like scikit-learn's ``RobustScaler``), then the weighted sum
  ``0.1*comments + 0.4*likes + 0.3*plays + 0.2*shares``, then min-max scaling to [0, 1].
* ``is_viral``: 1 iff all four raw metrics are strictly greater than their 50th percentile.

Degenerate inputs have a defined result, the same as scikit-learn's scalers: a metric whose IQR is 0
is divided by 1 (only centred), and when every raw score is equal (one row, identical rows) the span
is taken as 1, so every score is 0.0. Missing counts count as 0; negative counts are an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import CorpusError
from .label_names import METRICS, PAPER_THRESHOLD_QUANTILE, PAPER_WEIGHTS

# With --normalize-age, a video younger than this is treated as this old, so a video seen minutes
# after posting does not get an absurd per-day rate.
MIN_AGE_DAYS = 1.0
SECONDS_PER_DAY = 86_400.0
LABEL_METHOD = "viral-vision"


class LabelError(CorpusError):
    """Rows or options the labels cannot be computed from (no rows, negative counts, bad weights)."""

    kind = "labels"
    expected = True


def fit_labels(
    df: pd.DataFrame,
    *,
    weights: Sequence[float] = PAPER_WEIGHTS,
    threshold_quantile: float = PAPER_THRESHOLD_QUANTILE,
    normalize_age: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Fit the label transform on ``df`` and label its rows.

    ``df`` needs the columns in :data:`METRICS` (plus ``create_time`` in epoch seconds and
    ``stats_captured_at`` with ``normalize_age``). Returns ``(labels, params)``: ``labels`` has
    ``virality_score`` (float64) and ``is_viral`` (int8) on ``df``'s index; ``params`` holds every
    fitted number and goes into the export manifest.
    """
    weight_array = _checked_weights(weights)
    if not 0.0 <= threshold_quantile < 1.0:
        raise LabelError(f"threshold quantile must be in [0, 1), got {threshold_quantile}")
    values = _metric_values(df, normalize_age)
    if len(values) == 0:
        raise LabelError("cannot fit labels on zero rows")
    logged = np.log1p(values)
    q25, median, q75 = np.percentile(logged, [25.0, 50.0, 75.0], axis=0)
    iqr = q75 - q25
    scale = np.where(iqr == 0.0, 1.0, iqr)
    raw = _raw_score(logged, median, scale, weight_array)
    thresholds = np.quantile(values, threshold_quantile, axis=0)
    params = {
        "method": LABEL_METHOD,
        "metrics": list(METRICS),
        "transform": "log1p",
        "quantile_interpolation": "linear",
        "weights": _by_metric(weight_array),
        "normalize_age": bool(normalize_age),
        "min_age_days": MIN_AGE_DAYS if normalize_age else None,
        "center": _by_metric(median),
        "q25": _by_metric(q25),
        "q75": _by_metric(q75),
        "iqr": _by_metric(iqr),
        "scale": _by_metric(scale),
        "score_min": float(raw.min()),
        "score_max": float(raw.max()),
        "threshold_quantile": float(threshold_quantile),
        "thresholds": _by_metric(thresholds),
        "fitted_rows": int(len(values)),
    }
    return apply_labels(df, params), params


def apply_labels(df: pd.DataFrame, params: dict) -> pd.DataFrame:
    """Label ``df`` with parameters from :func:`fit_labels` (e.g. a manifest's ``label_params``).

    Scores of new videos are not clipped: outside the fitted range they fall outside [0, 1].
    """
    values = _metric_values(df, params["normalize_age"])
    center, scale, weights, thresholds = (
        np.array([params[key][m] for m in METRICS], dtype=np.float64)
        for key in ("center", "scale", "weights", "thresholds")
    )
    raw = _raw_score(np.log1p(values), center, scale, weights)
    span = params["score_max"] - params["score_min"]
    score = (raw - params["score_min"]) / (span if span != 0.0 else 1.0)
    viral = (values > thresholds).all(axis=1)
    return pd.DataFrame({"virality_score": score, "is_viral": viral.astype(np.int8)}, index=df.index)


def _raw_score(logged: np.ndarray, center: np.ndarray, scale: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return ((logged - center) / scale) @ weights


def _metric_values(df: pd.DataFrame, normalize_age: bool) -> np.ndarray:
    """The (rows x 4) float matrix the labels are computed from: counts, or per-day rates."""
    missing = [m for m in METRICS if m not in df.columns]
    if missing:
        raise LabelError(f"label input lacks column(s) {', '.join(missing)}")
    values = df[list(METRICS)].astype("float64").fillna(0.0).to_numpy()
    if (values < 0).any():
        raise LabelError("engagement counts must not be negative")
    if not normalize_age:
        return values
    return values / _age_days(df)[:, None]


def _age_days(df: pd.DataFrame) -> np.ndarray:
    """Days between posting (``create_time``) and the stats snapshot, at least :data:`MIN_AGE_DAYS`."""
    if "create_time" not in df.columns or "stats_captured_at" not in df.columns:
        raise LabelError("--normalize-age needs create_time and stats_captured_at")
    created = pd.to_numeric(df["create_time"], errors="coerce").astype("float64").to_numpy()
    captured = pd.to_datetime(df["stats_captured_at"], utc=True)
    captured_s = (captured - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    age = (np.asarray(captured_s, dtype=np.float64) - created) / SECONDS_PER_DAY
    if np.isnan(age).any():
        raise LabelError(f"--normalize-age: {int(np.isnan(age).sum())} row(s) lack a create time or snapshot time")
    return np.maximum(age, MIN_AGE_DAYS)


def _checked_weights(weights: Sequence[float]) -> np.ndarray:
    array = np.asarray(list(weights), dtype=np.float64)
    if array.shape != (len(METRICS),) or not np.isfinite(array).all():
        raise LabelError(
            f"weights must be {len(METRICS)} finite numbers (comments, likes, plays, shares), got {list(weights)}"
        )
    return array


def _by_metric(values: np.ndarray) -> dict[str, float]:
    return {metric: float(value) for metric, value in zip(METRICS, values)}
