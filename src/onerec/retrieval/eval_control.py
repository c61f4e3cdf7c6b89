"""Does the condition steer retrieval, and what does it cost in recall? (real logs)

Protocol: temporal held-out windows (:mod:`onerec.retrieval.examples`). For every held-out user
the model ranks the *whole* catalogue (exact search; the ANN index is measured separately) minus
the items the user already had, under a condition chosen by a strategy, and we measure:

* ``recall@K`` — distinct held-out items in the top K / distinct held-out items (averaged over
  users; ``recall@K_se`` is its standard error over users). The usual retrieval measure,
  condition-agnostic.
* ``target_recall@K`` — target-weighted recall: Σ target of hits / Σ target of held-out items.
  It rewards retrieving the held-out items the user responded to most (long plays, high ratings).
* ``hit_target@K`` — the mean logged target (raw units) of the hits. Control means it rises with
  the condition. It is conditional on exposure: on KuaiRand's random-exposure log exposure is
  independent of the user, so it is an unbiased read of the user's response to what was hit.
* ``target_auc`` — dense and K-free: per user, over pairs of held-out items with different
  logged targets, the fraction the model scores in the target's order (ties ½), averaged over
  users with at least one such pair. 0.5 = the condition ignores the target; control means it
  rises with the condition. This is the direct reading of "higher conditions rank high-target
  items above low-target ones" on held-out data, and unlike the hit-based measures it uses
  every held-out interaction rather than the few that land in a top K.

Strategies: each ``fixed`` level (training quantiles of the target), ``max`` and ``mean`` (the
user's past), and ``tdm`` — time-division over a user's successive requests, evaluated as the
round-robin interleave of the lists retrieved at each tdm condition (what the user sees across
those requests, K slots in all) — and ``mix``, the ranking by the condition marginalised out over
its training distribution (:mod:`onerec.retrieval.mixture`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from onerec.retrieval.condition import ConditionNormalizer
from onerec.retrieval.examples import HeldOutUsers
from onerec.retrieval.mixture import level_prior, mixture_log_probs
from onerec.retrieval.model import CRMModel
from onerec.retrieval.strategies import DEFAULT_TDM_QUANTILES

DEFAULT_LEVEL_QUANTILES = (0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95)


@torch.no_grad()
def user_vectors_for(
    model: CRMModel,
    history: np.ndarray,
    positions: np.ndarray | None,
    user_idx: np.ndarray | None,
    batch_size: int = 2048,
) -> torch.Tensor:
    """User vectors ``[U, d]`` for padded histories and condition positions (None: unconditioned)."""
    model.eval()
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(history), batch_size):
        hist = torch.as_tensor(history[s : s + batch_size], device=device)
        cond = None
        if model.config.condition != "none":
            assert positions is not None, "a conditioned model needs positions"
            cond = torch.as_tensor(
                positions[s : s + batch_size], device=device, dtype=torch.float32
            )
        users = (
            None
            if user_idx is None
            else torch.as_tensor(user_idx[s : s + batch_size], device=device)
        )
        out.append(model.user_vectors(hist, cond, users))
    return torch.cat(out) if out else torch.zeros(0, model.config.embed_dim, device=device)


@torch.no_grad()
def topk_excluding(
    user_vecs: torch.Tensor, item_vecs: torch.Tensor, exclude: Sequence[np.ndarray], k: int
) -> np.ndarray:
    """Exact top-``k`` item indices ``[U, k]`` by inner product, with ``exclude[u]`` masked out."""
    k = min(k, item_vecs.shape[0])
    result = np.zeros((user_vecs.shape[0], k), dtype=np.int64)
    chunk = 1024
    for s in range(0, user_vecs.shape[0], chunk):
        scores = user_vecs[s : s + chunk] @ item_vecs.T  # [C, I]
        result[s : s + chunk] = masked_topk(scores, exclude[s : s + chunk], k)
    return result


def masked_topk(scores: torch.Tensor, exclude: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Top-``k`` columns of ``scores [U, I]`` per row with ``exclude[u]`` masked out (in place)."""
    rows = [np.full(len(e), r) for r, e in enumerate(exclude)]
    if rows and sum(len(r) for r in rows):
        r_idx = torch.as_tensor(np.concatenate(rows), device=scores.device)
        c_idx = torch.as_tensor(np.concatenate(exclude), device=scores.device)
        scores[r_idx, c_idx] = float("-inf")
    return scores.topk(min(k, scores.shape[1]), dim=1).indices.cpu().numpy()


@torch.no_grad()
def mixture_topk(
    model: CRMModel,
    heldout: HeldOutUsers,
    normalizer: ConditionNormalizer,
    item_vecs: torch.Tensor,
    k: int,
    chunk: int = 512,
) -> np.ndarray:
    """Exact top-``k`` ``[U, k]`` of the ``mix`` strategy (the condition marginalised out)."""
    positions, weights = level_prior(normalizer)
    per_level = torch.stack(
        [
            user_vectors_for(
                model,
                heldout.history,
                np.full(len(heldout), position, np.float32),
                heldout.user_idx,
            )
            for position in positions
        ]
    )  # [C, U, d]
    level_weights = torch.as_tensor(weights, device=per_level.device)
    result = np.zeros((len(heldout), min(k, item_vecs.shape[0])), dtype=np.int64)
    for s in range(0, len(heldout), chunk):
        logits = per_level[:, s : s + chunk] @ item_vecs.T / model.config.temperature  # [C, u, I]
        scores = mixture_log_probs(logits, level_weights)  # [u, I]
        result[s : s + chunk] = masked_topk(scores, heldout.seen[s : s + chunk], k)
    return result


def interleave(rankings: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Round-robin merge of per-condition rankings ``[U, k]`` each, skipping repeats → ``[U, k]``."""
    users = rankings[0].shape[0]
    merged = np.zeros((users, k), dtype=np.int64)
    for u in range(users):
        seen: set[int] = set()
        out: list[int] = []
        for rank in range(rankings[0].shape[1]):
            for ranking in rankings:
                item = int(ranking[u, rank])
                if item not in seen:
                    seen.add(item)
                    out.append(item)
            if len(out) >= k:
                break
        merged[u, : min(k, len(out))] = out[:k]
    return merged


def heldout_metrics(topk: np.ndarray, heldout: HeldOutUsers, ks: Sequence[int]) -> dict[str, float]:
    """``recall@K``, ``target_recall@K``, ``hit_target@K`` and ``hits@K`` (see module doc)."""
    metrics: dict[str, float] = {}
    for k in ks:
        recalls, weighted_num, weighted_den, hit_values = [], 0.0, 0.0, []
        for u, (targets, values) in enumerate(
            zip(heldout.targets, heldout.target_values, strict=True)
        ):
            hit = np.isin(targets, topk[u, :k])
            recalls.append(hit.mean())
            finite = np.isfinite(values)
            weighted_num += float(values[hit & finite].sum())
            weighted_den += float(values[finite].sum())
            hit_values.extend(values[hit & finite].tolist())
        metrics[f"recall@{k}"] = float(np.mean(recalls)) if recalls else 0.0
        # Standard error over users: differences smaller than ~2 SE are noise.
        metrics[f"recall@{k}_se"] = (
            float(np.std(recalls, ddof=1) / np.sqrt(len(recalls))) if len(recalls) > 1 else 0.0
        )
        metrics[f"target_recall@{k}"] = weighted_num / weighted_den if weighted_den > 0 else 0.0
        metrics[f"hit_target@{k}"] = float(np.mean(hit_values)) if hit_values else float("nan")
        metrics[f"hits@{k}"] = float(len(hit_values))
    return metrics


@torch.no_grad()
def target_auc(user_vecs: torch.Tensor, item_vecs: torch.Tensor, heldout: HeldOutUsers) -> float:
    """Mean per-user pairwise agreement between model scores and logged targets (ties ½)."""
    aucs = []
    for u, (targets, values) in enumerate(zip(heldout.targets, heldout.target_values, strict=True)):
        finite = np.isfinite(values)
        if finite.sum() < 2:
            continue
        vals = values[finite]
        scores = (item_vecs[torch.as_tensor(targets[finite])] @ user_vecs[u]).cpu().numpy()
        higher = vals[:, None] > vals[None, :]  # pair (i, j) with target_i > target_j
        if not higher.any():
            continue
        agree = (scores[:, None] > scores[None, :]) + 0.5 * (scores[:, None] == scores[None, :])
        aucs.append(float(agree[higher].mean()))
    return float(np.mean(aucs)) if aucs else float("nan")


@dataclass
class ControlRow:
    """One line of a control table."""

    strategy: str
    condition: str  # raw value(s) or "—"
    metrics: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "condition": self.condition, **self.metrics}


def evaluate_positions(
    model: CRMModel,
    heldout: HeldOutUsers,
    positions: np.ndarray | None,
    ks: Sequence[int],
    item_vecs: torch.Tensor | None = None,
) -> dict[str, float]:
    """All held-out measures at one condition position per user (None: unconditioned)."""
    item_vecs = model.all_item_vectors() if item_vecs is None else item_vecs
    user_vecs = user_vectors_for(model, heldout.history, positions, heldout.user_idx)
    topk = topk_excluding(user_vecs, item_vecs, heldout.seen, max(ks))
    return {
        **heldout_metrics(topk, heldout, ks),
        "target_auc": target_auc(user_vecs, item_vecs, heldout),
    }


@torch.no_grad()
def control_table(
    model: CRMModel,
    heldout: HeldOutUsers,
    normalizer: ConditionNormalizer,
    ks: Sequence[int] = (50, 100),
    level_quantiles: Sequence[float] = DEFAULT_LEVEL_QUANTILES,
    tdm_quantiles: Sequence[float] = DEFAULT_TDM_QUANTILES,
) -> list[ControlRow]:
    """Rows for every strategy; an unconditioned model gets a single ``none`` row."""
    model.eval()
    item_vecs = model.all_item_vectors()
    if model.config.condition == "none":
        return [ControlRow("none", "—", evaluate_positions(model, heldout, None, ks, item_vecs))]
    rows: list[ControlRow] = []
    seen_positions: set[float] = set()
    for q in level_quantiles:
        value = float(normalizer.value_at_quantile([q])[0])
        position = float(normalizer.encode([value])[0])
        if position in seen_positions:  # tied quantiles (e.g. ratings) share a bucket
            continue
        seen_positions.add(position)
        positions = np.full(len(heldout), position, dtype=np.float32)
        metrics = evaluate_positions(model, heldout, positions, ks, item_vecs)
        rows.append(ControlRow("fixed", f"q{q:.2f}={value:.4g}", metrics))
    for name in ("max", "mean", "tdm", "mix"):
        label = {"tdm": _tdm_label(normalizer, tdm_quantiles), "mix": "marginal"}.get(
            name, "per user"
        )
        metrics = evaluate_strategy(model, heldout, normalizer, name, ks, tdm_quantiles, item_vecs)
        rows.append(ControlRow(name, label, metrics))
    return rows


@torch.no_grad()
def evaluate_strategy(
    model: CRMModel,
    heldout: HeldOutUsers,
    normalizer: ConditionNormalizer,
    strategy: str,
    ks: Sequence[int],
    tdm_quantiles: Sequence[float] = DEFAULT_TDM_QUANTILES,
    item_vecs: torch.Tensor | None = None,
) -> dict[str, float]:
    """Held-out measures under ``max``, ``mean``, ``tdm`` or ``mix`` (any strategy if
    unconditioned)."""
    model.eval()
    item_vecs = model.all_item_vectors() if item_vecs is None else item_vecs
    if model.config.condition == "none":
        return evaluate_positions(model, heldout, None, ks, item_vecs)
    if strategy in ("max", "mean"):
        table = heldout.condition_max if strategy == "max" else heldout.condition_mean
        return evaluate_positions(model, heldout, normalizer.snap(table), ks, item_vecs)
    if strategy == "tdm":
        return _tdm_metrics(model, heldout, normalizer, tdm_quantiles, ks, item_vecs)
    if strategy == "mix":
        topk = mixture_topk(model, heldout, normalizer, item_vecs, max(ks))
        return {**heldout_metrics(topk, heldout, ks), "target_auc": float("nan")}
    raise ValueError(f"strategy must be max, mean, tdm or mix, not {strategy!r}")


def _tdm_label(normalizer: ConditionNormalizer, quantiles: Sequence[float]) -> str:
    values = normalizer.value_at_quantile(list(quantiles))
    return "cycle " + "/".join(f"{v:.4g}" for v in values)


def _tdm_metrics(
    model: CRMModel,
    heldout: HeldOutUsers,
    normalizer: ConditionNormalizer,
    quantiles: Sequence[float],
    ks: Sequence[int],
    item_vecs: torch.Tensor,
) -> dict[str, float]:
    k = max(ks)
    rankings = []
    for value in normalizer.value_at_quantile(list(quantiles)):
        positions = np.full(len(heldout), normalizer.encode([value])[0], dtype=np.float32)
        user_vecs = user_vectors_for(model, heldout.history, positions, heldout.user_idx)
        rankings.append(topk_excluding(user_vecs, item_vecs, heldout.seen, k))
    return {**heldout_metrics(interleave(rankings, k), heldout, ks), "target_auc": float("nan")}


def best_strategy_row(rows: Sequence[ControlRow], metric: str) -> ControlRow:
    """The row with the highest ``metric`` (how "CRM at its best strategy" is chosen)."""
    return max(rows, key=lambda row: row.metrics.get(metric, float("-inf")))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    rx, ry = _average_ranks(np.asarray(x, float)), _average_ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for v in np.unique(values):
        tie = values == v
        ranks[tie] = ranks[tie].mean()
    return ranks
