"""Condition extraction and normalisation: buckets, quantiles, range clamping, missing values."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from onerec.errors import DataValidationError
from onerec.retrieval.condition import ConditionError, ConditionNormalizer, condition_values


def test_equal_frequency_buckets_on_continuous_values() -> None:
    values = np.arange(1, 101, dtype=float)  # 1..100
    norm = ConditionNormalizer.fit(values, "bucket", num_levels=4)
    assert norm.num_levels == 4
    assert norm.bucket_edges.tolist() == [26.0, 51.0, 76.0]
    counts = np.bincount(norm.encode(values).astype(int))
    assert counts.tolist() == [25, 25, 25, 25]


def test_tied_values_merge_buckets_ratings() -> None:
    ratings = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], [6, 11, 27, 34, 22])
    norm = ConditionNormalizer.fit(ratings, "bucket", num_levels=10)
    assert norm.num_levels == 5  # ten asked, five distinct ratings
    assert norm.encode([1, 2, 3, 4, 5]).tolist() == [0, 1, 2, 3, 4]


def test_values_outside_training_range_clamp_to_end_buckets() -> None:
    norm = ConditionNormalizer.fit(np.arange(1, 101, dtype=float), "bucket", num_levels=4)
    assert norm.encode([-1e9, 0.0, 1e9]).tolist() == [0.0, 0.0, 3.0]
    cont = ConditionNormalizer.fit(np.arange(1, 101, dtype=float), "continuous", num_levels=5)
    low, high = cont.encode([-1e9, 1e9])
    assert low == pytest.approx(cont.encode([1.0])[0])  # the lowest training value's position
    assert high == pytest.approx(cont.encode([100.0])[0])
    assert 0.0 <= low < 0.1 and 3.9 < high <= 4.0


def test_missing_condition_errors_by_default_and_median_on_request() -> None:
    norm = ConditionNormalizer.fit(np.arange(1, 101, dtype=float), "bucket", num_levels=4)
    with pytest.raises(ConditionError, match="row 1"):
        norm.encode([5.0, float("nan")])
    with pytest.raises(ConditionError):
        norm.encode(None)
    with pytest.raises(ConditionError, match="not a number"):
        norm.encode(["fast"])  # type: ignore[list-item]
    filled = norm.encode([None, 5.0], missing="median")
    assert filled[0] == norm.encode([norm.median])[0] == 1.0  # median 50.5 → bucket 1


def test_continuous_is_mid_rank_quantile() -> None:
    ratings = np.array([1.0, 2.0, 2.0, 3.0])
    norm = ConditionNormalizer.fit(ratings, "continuous", num_levels=2)  # position = quantile
    # rating 2 covers ranks 1–3 of 4 → mid-rank quantile (1 + 3) / (2 · 4) = 0.5
    assert norm.encode([1.0, 2.0, 3.0]).tolist() == pytest.approx([0.125, 0.5, 0.875])
    assert norm.encode([1.5])[0] == pytest.approx(0.3125)  # interpolated between knots
    assert norm.value_at_quantile([0.5])[0] == pytest.approx(2.0)
    # inverse CDF: always a training value — 1 holds the lowest quarter, 3 the top one
    assert norm.value_at_quantile([0.0, 0.25, 0.26, 0.75, 0.76, 1.0]).tolist() == [1, 1, 2, 2, 3, 3]


def test_tdm_style_quantiles_of_ratings_reach_five_stars() -> None:
    ratings = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], [6, 11, 27, 34, 22])
    norm = ConditionNormalizer.fit(ratings, "bucket", num_levels=10)
    values = norm.value_at_quantile([0.125, 0.375, 0.625, 0.875])
    assert values.tolist() == [2.0, 3.0, 4.0, 5.0]
    assert norm.encode(values).tolist() == [1.0, 2.0, 3.0, 4.0]


def test_round_trip_through_json_dict() -> None:
    norm = ConditionNormalizer.fit(np.random.default_rng(0).lognormal(8, 1, 500), "continuous", 8)
    again = ConditionNormalizer.from_dict(norm.to_dict())
    probe = np.array([10.0, 3000.0, 1e6])
    assert np.array_equal(norm.encode(probe), again.encode(probe))


def test_fit_rejects_empty_and_snap_rounds_buckets() -> None:
    with pytest.raises(ConditionError):
        ConditionNormalizer.fit(np.array([np.nan, np.nan]))
    norm = ConditionNormalizer.fit(np.arange(100, dtype=float), "bucket", num_levels=4)
    assert norm.snap(np.array([0.4, 1.6, 9.0])).tolist() == [0.0, 2.0, 3.0]


def test_condition_values_watch_ratio_and_columns() -> None:
    frame = pl.DataFrame(
        {
            "play_time_ms": [500, 3000, 100, 50],
            "duration_ms": [1000, 1000, 0, 100],
            "rating": [1, 2, 3, 4],
        }
    )
    ratio = condition_values(frame, "watch_ratio", max_watch_ratio=2.0)
    assert ratio[:2].tolist() == [0.5, 2.0]  # 3.0 clipped to 2.0
    assert np.isnan(ratio[2])  # zero duration: unknown
    assert condition_values(frame, "watch_time").tolist() == [500, 3000, 100, 50]
    assert condition_values(frame, "rating").tolist() == [1, 2, 3, 4]
    with pytest.raises(DataValidationError, match="not a column"):
        condition_values(frame, "watchtime")
    with pytest.raises(DataValidationError, match="duration_ms"):
        condition_values(frame.drop("duration_ms"), "watch_ratio")
