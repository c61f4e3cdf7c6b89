"""The CRM condition: a regression target of the training example, normalised for the model.

CRM trains the user tower on ``(history, condition) -> item`` where the condition is how the
user responded to that item (play time, watch ratio, rating, any float column). At serving time
the caller picks the condition and so steers retrieval.

Normalisation (fitted on the *training* interactions only):

* ``"continuous"`` — the value's mid-rank quantile ``q ∈ [0, 1]`` in the training distribution
  (ties share the middle of their range, so a rating of 4 that covers quantiles 0.45–0.80 maps to
  0.625), interpolated linearly between stored knots. Heavy tails (play time) do not squash the
  rest of the range. The model receives the *position* ``q * (num_levels - 1)`` and interpolates
  between ``num_levels`` anchor embeddings.
* ``"bucket"`` — equal-frequency buckets: edges at the training quantiles ``1/B, …, (B-1)/B``;
  tied edges are merged (ratings 1–5 with ``B = 10`` give 5 buckets), so ``num_levels`` can be
  smaller than asked. The position is the integer bucket index.

Edge cases (documented contract, tested):

* **Outside the training range** — clamps to the end: below the training minimum → bucket 0 /
  the lowest knot's quantile; above the maximum → the last bucket / the highest knot's quantile.
* **Missing** (``NaN``/``None``) — ``missing="error"`` (default) raises :class:`ConditionError`
  naming the row; ``missing="median"`` substitutes the training median (documented default for
  callers that opt in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from onerec.errors import CheckpointError, DataValidationError, OnerecError

ConditionEncoding = Literal["continuous", "bucket"]
MissingPolicy = Literal["error", "median"]

# Aliases a user may give instead of a column name.
WATCH_TIME_ALIASES = {"watch_time", "play_time", "play_time_ms", "watch_time_ms"}
WATCH_RATIO = "watch_ratio"


class ConditionError(OnerecError):
    """A condition value cannot be used (missing, not a number, unknown target column)."""


def condition_values(
    interactions: pl.DataFrame, target: str, max_watch_ratio: float = 2.0
) -> np.ndarray:
    """Return the raw condition for every interaction row as ``float64`` (``NaN`` = unknown).

    ``target`` is ``"watch_ratio"`` (``play_time_ms / duration_ms`` clipped to
    ``[0, max_watch_ratio]``; rows with a non-positive duration are ``NaN``), a watch-time alias
    (``watch_time``, ``play_time`` → ``play_time_ms``), or the name of any numeric column
    (``rating``, ``play_time_ms``, …).
    """
    columns = set(interactions.columns)
    if target == WATCH_RATIO:
        for needed in ("play_time_ms", "duration_ms"):
            if needed not in columns:
                raise DataValidationError(
                    "the watch_ratio condition needs play_time_ms and duration_ms",
                    field=needed,
                    hint=f"available columns: {sorted(columns)}",
                )
        play = interactions["play_time_ms"].cast(pl.Float64).to_numpy()
        duration = interactions["duration_ms"].cast(pl.Float64).to_numpy()
        ratio = np.full(len(play), np.nan)
        known = duration > 0
        ratio[known] = np.clip(play[known] / duration[known], 0.0, max_watch_ratio)
        return ratio
    column = "play_time_ms" if target in WATCH_TIME_ALIASES else target
    if column not in columns:
        raise DataValidationError(
            f"condition target {target!r} is not a column of the interactions",
            field=column,
            hint=f"use watch_ratio or one of {sorted(columns)}",
        )
    series = interactions[column]
    if not series.dtype.is_numeric():
        raise DataValidationError(
            f"condition column has type {series.dtype}; it must be numeric", field=column
        )
    values = series.cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
    values[~np.isfinite(values)] = np.nan
    return values


@dataclass(frozen=True)
class ConditionNormalizer:
    """Maps raw condition values to model positions in ``[0, num_levels - 1]``."""

    encoding: ConditionEncoding
    knots: np.ndarray  # [K] strictly increasing raw values
    knot_quantiles: np.ndarray  # [K] mid-rank quantile of each knot
    knot_cdf: np.ndarray  # [K] share of training values <= each knot
    bucket_edges: np.ndarray  # [num_buckets - 1] strictly increasing
    requested_levels: int
    median: float
    train_min: float
    train_max: float

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        encoding: ConditionEncoding = "bucket",
        num_levels: int = 10,
        max_knots: int = 1001,
    ) -> ConditionNormalizer:
        """Fit on training values (``NaN`` ignored). Raises if no finite value is left."""
        if num_levels < 2:
            raise ConditionError(f"num_levels must be at least 2, got {num_levels}")
        finite = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
        if finite.size == 0:
            raise ConditionError("cannot fit the condition: no finite training value")
        levels = np.linspace(0.0, 1.0, max_knots)
        knots = np.unique(np.quantile(finite, levels, method="inverted_cdf"))
        # Mid-rank quantile: the centre of the CDF jump at each knot (ties share it).
        below = np.searchsorted(finite, knots, side="left")
        upto = np.searchsorted(finite, knots, side="right")
        knot_quantiles = (below + upto) / (2.0 * finite.size)
        inner = np.linspace(0.0, 1.0, num_levels + 1)[1:-1]
        # ``higher`` keeps every edge an observed value, so "value >= edge" splits real ties.
        edges = np.unique(np.quantile(finite, inner, method="higher"))
        edges = edges[edges > finite[0]]  # an edge at the minimum would leave bucket 0 empty
        return cls(
            encoding=encoding,
            knots=knots,
            knot_quantiles=knot_quantiles,
            knot_cdf=upto / finite.size,
            bucket_edges=edges,
            requested_levels=num_levels,
            median=float(np.median(finite)),
            train_min=float(finite[0]),
            train_max=float(finite[-1]),
        )

    @property
    def num_levels(self) -> int:
        """Number of condition embeddings the model needs (buckets, or continuous anchors)."""
        if self.encoding == "bucket":
            return int(self.bucket_edges.size + 1)
        return self.requested_levels

    def quantile(self, values: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Mid-rank training quantile of each value, clamped at the ends; ``NaN`` passes."""
        raw = np.atleast_1d(np.asarray(values, dtype=np.float64))
        return np.interp(raw, self.knots, self.knot_quantiles)

    def value_at_quantile(self, quantiles: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """The training value at each quantile: the smallest knot whose CDF reaches it.

        Always a value that occurs in training (for ratings: a whole star), so a quantile-
        specified condition lands in the bucket that holds that share of the data.
        """
        levels = np.clip(np.atleast_1d(np.asarray(quantiles, dtype=np.float64)), 0.0, 1.0)
        index = np.searchsorted(self.knot_cdf, levels - 1e-12, side="left")
        return self.knots[np.minimum(index, len(self.knots) - 1)]

    def encode(
        self,
        values: np.ndarray | Sequence[float | None] | float | None,
        missing: MissingPolicy = "error",
    ) -> np.ndarray:
        """Raw values → model positions ``float32`` in ``[0, num_levels - 1]``.

        Out-of-range values clamp to the end buckets/knots. Missing values raise
        :class:`ConditionError` unless ``missing="median"``.
        """
        raw = _as_float_array(values)
        absent = ~np.isfinite(raw)
        if absent.any():
            if missing == "error":
                row = int(np.flatnonzero(absent)[0])
                raise ConditionError(
                    f"condition value at row {row} is missing or not finite; pass a number "
                    "(e.g. --condition 30000) or a strategy (--strategy max|mean|tdm|mix), or "
                    "allow the training median with missing='median'"
                )
            raw = np.where(absent, self.median, raw)
        if self.encoding == "bucket":
            positions = np.searchsorted(self.bucket_edges, raw, side="right").astype(np.float64)
        else:
            positions = self.quantile(raw) * (self.num_levels - 1)
        return positions.astype(np.float32)

    def snap(self, positions: np.ndarray) -> np.ndarray:
        """Round positions to trained levels for bucket encoding (continuous passes through)."""
        positions = np.clip(np.asarray(positions, dtype=np.float64), 0, self.num_levels - 1)
        if self.encoding == "bucket":
            positions = np.rint(positions)
        return positions.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-native form (see :meth:`from_dict`)."""
        return {
            "encoding": self.encoding,
            "knots": self.knots.tolist(),
            "knot_quantiles": self.knot_quantiles.tolist(),
            "knot_cdf": self.knot_cdf.tolist(),
            "bucket_edges": self.bucket_edges.tolist(),
            "requested_levels": self.requested_levels,
            "median": self.median,
            "train_min": self.train_min,
            "train_max": self.train_max,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConditionNormalizer:
        """Rebuild from :meth:`to_dict` output."""
        if "knot_cdf" not in data:
            raise CheckpointError(
                "the condition normaliser was saved by an older onerec (no knot_cdf); "
                "re-run onerec train-retrieval"
            )
        return cls(
            encoding=data["encoding"],
            knots=np.asarray(data["knots"], dtype=np.float64),
            knot_quantiles=np.asarray(data["knot_quantiles"], dtype=np.float64),
            knot_cdf=np.asarray(data["knot_cdf"], dtype=np.float64),
            bucket_edges=np.asarray(data["bucket_edges"], dtype=np.float64),
            requested_levels=int(data["requested_levels"]),
            median=float(data["median"]),
            train_min=float(data["train_min"]),
            train_max=float(data["train_max"]),
        )


def _as_float_array(values: np.ndarray | Sequence[float | None] | float | None) -> np.ndarray:
    if values is None:
        return np.array([np.nan])
    if isinstance(values, np.ndarray):
        return np.atleast_1d(values.astype(np.float64))
    if isinstance(values, (int, float)):
        return np.array([float(values)])
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        try:
            out[i] = np.nan if value is None else float(value)
        except (TypeError, ValueError):
            raise ConditionError(
                f"condition value at row {i} ({value!r}) is not a number"
            ) from None
    return out
