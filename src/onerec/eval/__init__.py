"""Evaluation: ranking metrics, full-ranking protocols and reports."""

from onerec.eval.metrics import (
    METRIC_NAMES,
    ranking_metrics,
    ranking_metrics_reference,
    topk_from_scores,
)
from onerec.eval.protocols import evaluate_scorer, rank_all
from onerec.eval.report import MetricsReport

__all__ = [
    "METRIC_NAMES",
    "MetricsReport",
    "evaluate_scorer",
    "rank_all",
    "ranking_metrics",
    "ranking_metrics_reference",
    "topk_from_scores",
]
