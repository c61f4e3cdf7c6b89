"""Metrics for the reward model: ROC-AUC (rank form, ties averaged), RMSE and MAE."""

from __future__ import annotations

import numpy as np


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = 0.5 * (start + end - 1) + 1.0
    return ranks


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC-AUC = P(score of a random positive > score of a random negative), ties count ½.

    Computed from the Mann–Whitney U statistic. NaN when only one class is present.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    u_statistic = ranks[labels].sum() - positives * (positives + 1) / 2.0
    return float(u_statistic / (positives * negatives))


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC estimate (NaN when undefined)."""
    if positives == 0 or negatives == 0 or auc != auc:
        return float("nan")
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (
        auc * (1.0 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return float(np.sqrt(max(variance, 0.0)))


def rmse(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Root mean squared error."""
    diff = np.asarray(truth, dtype=np.float64) - np.asarray(prediction, dtype=np.float64)
    return float(np.sqrt(np.mean(diff**2)))


def mae(truth: np.ndarray, prediction: np.ndarray) -> float:
    """Mean absolute error."""
    diff = np.asarray(truth, dtype=np.float64) - np.asarray(prediction, dtype=np.float64)
    return float(np.mean(np.abs(diff)))
