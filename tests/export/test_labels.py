"""The paper's labels on hand-computed tables: scalar arithmetic written out here, independent of the
vectorised implementation, plus scikit-learn's RobustScaler/MinMaxScaler as a second reference."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler, RobustScaler

from tiktok_corpus.export.labels import METRICS, LabelError, apply_labels, fit_labels

# comments: zeros, a tie of three at the median and a huge outlier; likes/plays: evenly spaced;
# shares: zeros and an interpolated median (2.5).
TABLE = pd.DataFrame(
    {
        "comment_count": [0, 1, 1, 1, 3, 10**12],
        "like_count": [0, 2, 4, 6, 8, 10],
        "play_count": [10, 20, 30, 40, 50, 60],
        "share_count": [0, 0, 2, 7, 3, 9],
    }
)
WEIGHTS = {"comment_count": 0.1, "like_count": 0.4, "play_count": 0.3, "share_count": 0.2}


def linear_quantile(values, q: float) -> float:
    """The textbook linear-interpolation quantile (numpy's and scikit-learn's default)."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def hand_scores(table: pd.DataFrame, weights=WEIGHTS) -> list[float]:
    raw = [0.0] * len(table)
    for metric, weight in weights.items():
        logged = [math.log1p(v) for v in table[metric]]
        median = linear_quantile(logged, 0.5)
        iqr = linear_quantile(logged, 0.75) - linear_quantile(logged, 0.25)
        scale = iqr if iqr != 0 else 1.0
        raw = [r + weight * (x - median) / scale for r, x in zip(raw, logged)]
    low, high = min(raw), max(raw)
    return [(r - low) / ((high - low) or 1.0) for r in raw]


def test_paper_labels_match_the_hand_computed_table():
    labels, params = fit_labels(TABLE)

    assert labels["virality_score"].tolist() == pytest.approx(hand_scores(TABLE), abs=1e-12)
    assert labels["virality_score"].min() == 0.0 and labels["virality_score"].max() == 1.0
    # Strictly greater than the median of every metric: the tie at the comments median (1) is not viral.
    assert params["thresholds"] == {"comment_count": 1.0, "like_count": 5.0, "play_count": 35.0, "share_count": 2.5}
    assert labels["is_viral"].tolist() == [0, 0, 0, 0, 1, 1]
    assert labels["is_viral"].dtype == np.int8
    assert params["center"]["comment_count"] == pytest.approx(math.log1p(1))
    assert params["iqr"]["play_count"] == pytest.approx(
        linear_quantile([math.log1p(v) for v in TABLE["play_count"]], 0.75)
        - linear_quantile([math.log1p(v) for v in TABLE["play_count"]], 0.25)
    )
    assert params["fitted_rows"] == 6


def test_paper_labels_equal_scikit_learn_scalers():
    logged = np.log1p(TABLE[list(METRICS)].to_numpy(dtype=float))
    raw = RobustScaler().fit_transform(logged) @ np.array([0.1, 0.4, 0.3, 0.2])
    expected = MinMaxScaler().fit_transform(raw[:, None])[:, 0]

    labels, _ = fit_labels(TABLE)

    np.testing.assert_allclose(labels["virality_score"].to_numpy(), expected, rtol=0, atol=1e-12)


def test_a_constant_column_is_only_centred_and_constant_scores_are_zero():
    constant_likes = TABLE.assign(like_count=5)
    labels, params = fit_labels(constant_likes)

    assert params["iqr"]["like_count"] == 0.0 and params["scale"]["like_count"] == 1.0
    assert labels["virality_score"].tolist() == pytest.approx(hand_scores(constant_likes), abs=1e-12)
    assert labels["is_viral"].sum() == 0  # nobody is strictly above the constant's median

    all_equal = pd.DataFrame({m: [7, 7, 7] for m in METRICS})
    labels, params = fit_labels(all_equal)
    assert labels["virality_score"].tolist() == [0.0, 0.0, 0.0]
    assert labels["is_viral"].tolist() == [0, 0, 0]
    assert params["score_min"] == params["score_max"]


def test_a_single_row_has_a_defined_result():
    labels, params = fit_labels(TABLE.iloc[[2]])

    assert labels.index.tolist() == [2]
    assert labels["virality_score"].tolist() == [0.0]
    assert labels["is_viral"].tolist() == [0]
    assert set(params["scale"].values()) == {1.0}


def test_bad_input_is_a_clear_error():
    with pytest.raises(LabelError, match="zero rows"):
        fit_labels(TABLE.iloc[:0])
    with pytest.raises(LabelError, match="negative"):
        fit_labels(TABLE.assign(share_count=[0, -1, 0, 0, 0, 0]))
    with pytest.raises(LabelError, match="play_count"):
        fit_labels(TABLE.drop(columns="play_count"))
    with pytest.raises(LabelError, match="weights"):
        fit_labels(TABLE, weights=(0.5, 0.5))
    with pytest.raises(LabelError, match="quantile"):
        fit_labels(TABLE, threshold_quantile=1.0)


def test_missing_counts_count_as_zero():
    with_gap = TABLE.astype("Int64")
    with_gap.loc[0, "share_count"] = pd.NA

    assert fit_labels(with_gap)[0].equals(fit_labels(TABLE)[0])


def test_params_survive_json_and_reapply_to_new_videos():
    labels, params = fit_labels(TABLE)
    restored = json.loads(json.dumps(params))

    assert apply_labels(TABLE, restored).equals(labels)
    newcomer = pd.DataFrame({"comment_count": [10**13], "like_count": [100], "play_count": [1000], "share_count": [50]})
    scored = apply_labels(newcomer, restored)
    assert scored["virality_score"].iloc[0] > 1.0  # beyond the fitted range: not clipped, by design
    assert scored["is_viral"].iloc[0] == 1


def test_custom_weights_and_threshold_quantile():
    labels, params = fit_labels(TABLE, weights=(0, 1, 0, 0), threshold_quantile=0.25)

    likes_only = {"comment_count": 0, "like_count": 1, "play_count": 0, "share_count": 0}
    assert labels["virality_score"].tolist() == pytest.approx(hand_scores(TABLE, likes_only), abs=1e-12)
    assert params["thresholds"]["play_count"] == linear_quantile(TABLE["play_count"], 0.25) == 22.5
    # > 25th percentile of all four: comments > 1 excludes rows 0-3.
    assert labels["is_viral"].tolist() == [0, 0, 0, 0, 1, 1]


def test_normalize_age_uses_per_day_rates_with_a_one_day_floor():
    captured = datetime(2024, 5, 1, tzinfo=UTC)
    ages_days = [10, 2, 0.25, 4, 1, 5]
    table = TABLE.assign(
        create_time=[int((captured - timedelta(days=d)).timestamp()) for d in ages_days], stats_captured_at=captured
    )
    rates = TABLE.div([max(d, 1.0) for d in ages_days], axis=0)

    labels, params = fit_labels(table, normalize_age=True)

    assert params["normalize_age"] is True and params["min_age_days"] == 1.0
    assert params["thresholds"]["play_count"] == pytest.approx(linear_quantile(rates["play_count"], 0.5))
    assert labels["virality_score"].tolist() == pytest.approx(hand_scores(rates), abs=1e-12)
    with pytest.raises(LabelError, match="create time"):
        fit_labels(table.assign(create_time=[None, 1, 1, 1, 1, 1]), normalize_age=True)
