"""Held-out evaluation of the reward model against a per-item-average baseline.

For each target the baseline predicts, for every impression, the mean label of that item over
the *training* sessions (the global training mean for items never seen in training). Binary
targets are compared by ROC-AUC over impressions; watch time (regression) by RMSE and MAE of
``log1p(seconds)`` per impression, and of the summed seconds per session.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from onerec.reward.config import TargetSpec
from onerec.reward.metrics import auc_standard_error, binary_auc, mae, rmse
from onerec.reward.model import RewardBatch, RewardModel
from onerec.reward.sessions import RewardExamples

SMOOTHING_PRIOR = 10.0  # pseudo-impressions at the global mean for the smoothed baseline


def examples_batch(
    examples: RewardExamples, index: np.ndarray | slice, device: torch.device | None = None
) -> RewardBatch:
    """Tensors of the sessions at ``index`` (inputs plus ``label_<target>`` keys)."""
    batch = {
        "user_idx": torch.from_numpy(examples.user_idx[index]),
        "history": torch.from_numpy(examples.history[index]),
        "items": torch.from_numpy(examples.items[index]),
        "item_mask": torch.from_numpy(examples.mask[index]),
    }
    for name, values in examples.labels.items():
        batch[f"label_{name}"] = torch.from_numpy(values[index])
    if device is not None:
        batch = {k: v.to(device) for k, v in batch.items()}
    return batch


@torch.no_grad()
def predict_items(
    model: RewardModel, examples: RewardExamples, batch_size: int = 2048
) -> dict[str, np.ndarray]:
    """Raw per-item outputs ``[S, m]`` for every session (eval mode restored afterwards)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    outputs: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(examples), batch_size):
        batch = examples_batch(examples, slice(start, start + batch_size), device)
        for name, value in model.item_predictions(batch).items():
            outputs.setdefault(name, []).append(value.float().cpu().numpy())
    model.train(was_training)
    return {name: np.concatenate(parts) for name, parts in outputs.items()}


def per_item_average(
    train: RewardExamples, spec: TargetSpec, num_items: int, prior_weight: float = 0.0
) -> np.ndarray:
    """``[num_items + 1]`` mean training label per item (regression: of log1p(label)).

    ``prior_weight > 0`` shrinks each item's mean toward the global mean as if it had that
    many extra impressions at the global mean (items with few impressions stay near it).
    """
    items = train.items[train.mask]
    values = train.labels[spec.name][train.mask].astype(np.float64)
    if spec.kind == "regression":
        values = np.log1p(values)
    sums = np.bincount(items, weights=values, minlength=num_items + 1)
    counts = np.bincount(items, minlength=num_items + 1)
    global_mean = values.mean() if len(values) else 0.0
    if prior_weight > 0:
        return (sums + prior_weight * global_mean) / (counts + prior_weight)
    return np.where(counts > 0, sums / np.maximum(counts, 1), global_mean)


def per_item_mean_raw(
    train: RewardExamples, spec: TargetSpec, num_items: int, prior_weight: float = 0.0
) -> np.ndarray:
    """``[num_items + 1]`` mean raw training label per item (for session sums), optionally smoothed."""
    items = train.items[train.mask]
    values = train.labels[spec.name][train.mask].astype(np.float64)
    sums = np.bincount(items, weights=values, minlength=num_items + 1)
    counts = np.bincount(items, minlength=num_items + 1)
    global_mean = values.mean() if len(values) else 0.0
    if prior_weight > 0:
        return (sums + prior_weight * global_mean) / (counts + prior_weight)
    return np.where(counts > 0, sums / np.maximum(counts, 1), global_mean)


def evaluate_reward(
    model: RewardModel, train: RewardExamples, test: RewardExamples, targets: list[TargetSpec]
) -> dict[str, dict[str, Any]]:
    """Per-target metrics of the model and the per-item-average baseline on ``test``."""
    num_items = model.config.num_items
    raw = predict_items(model, test)
    mask = test.mask
    results: dict[str, dict[str, Any]] = {}
    for spec in targets:
        labels = test.labels[spec.name][mask]
        baseline = per_item_average(train, spec, num_items)[test.items[mask]]
        smoothed = per_item_average(train, spec, num_items, SMOOTHING_PRIOR)[test.items[mask]]
        pred = raw[spec.name][mask]
        row: dict[str, Any] = {
            "column": spec.column,
            "kind": spec.kind,
            "impressions": int(mask.sum()),
        }
        if spec.kind == "binary":
            row["positives"] = int(labels.sum())
            row["model_auc"] = binary_auc(labels, pred)
            row["model_auc_se"] = auc_standard_error(
                row["model_auc"], row["positives"], len(labels) - row["positives"]
            )
            row["baseline_auc"] = binary_auc(labels, baseline)
            row["smoothed_auc"] = binary_auc(labels, smoothed)
        else:
            truth = np.log1p(labels)
            row["model_rmse_log1p"] = rmse(truth, pred)
            row["baseline_rmse_log1p"] = rmse(truth, baseline)
            row["model_mae_log1p"] = mae(truth, pred)
            row["baseline_mae_log1p"] = mae(truth, baseline)
            row["smoothed_rmse_log1p"] = rmse(truth, smoothed)
            row["smoothed_mae_log1p"] = mae(truth, smoothed)
            session_truth = test.labels[spec.name].sum(axis=1)
            session_model = (np.expm1(np.maximum(raw[spec.name], 0.0)) * mask).sum(axis=1)
            session_base = (per_item_mean_raw(train, spec, num_items)[test.items] * mask).sum(
                axis=1
            )
            row["model_session_rmse"] = rmse(session_truth, session_model)
            row["baseline_session_rmse"] = rmse(session_truth, session_base)
            row["model_session_mae"] = mae(session_truth, session_model)
            row["baseline_session_mae"] = mae(session_truth, session_base)
            raw_smoothed = per_item_mean_raw(train, spec, num_items, SMOOTHING_PRIOR)
            session_smoothed = (raw_smoothed[test.items] * mask).sum(axis=1)
            row["smoothed_session_rmse"] = rmse(session_truth, session_smoothed)
            row["smoothed_session_mae"] = mae(session_truth, session_smoothed)
        results[spec.name] = row
    return results


def results_markdown(results: dict[str, dict[str, Any]]) -> str:
    """The evaluation as a Markdown table (one row per target and metric)."""
    lines = [
        "| target | column | metric | reward model | per-item average | per-item average, smoothed | test impressions (positives) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]

    def fmt(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        return "n/a" if value is None or value != value else f"{value:.4f}"  # NaN: one class only

    def se(row: dict[str, Any]) -> str:
        value = row.get("model_auc_se")
        return "" if value is None or value != value else f" ± {value:.3f}"

    for name, row in results.items():
        count = f"{row['impressions']:,}" + (
            f" ({row['positives']:,})" if "positives" in row else ""
        )
        if row["kind"] == "binary":
            lines.append(
                f"| {name} | {row['column']} | AUC | {fmt(row, 'model_auc')}{se(row)} | {fmt(row, 'baseline_auc')} | "
                f"{fmt(row, 'smoothed_auc')} | {count} |"
            )
            continue
        for metric, label in (
            ("rmse_log1p", "RMSE log1p(s), per impression"),
            ("mae_log1p", "MAE log1p(s), per impression"),
            ("session_rmse", "RMSE seconds, per session"),
            ("session_mae", "MAE seconds, per session"),
        ):
            lines.append(
                f"| {name} | {row['column']} | {label} | {fmt(row, f'model_{metric}')} | "
                f"{fmt(row, f'baseline_{metric}')} | {fmt(row, f'smoothed_{metric}')} | {count} |"
            )
    return "\n".join(lines) + "\n"
