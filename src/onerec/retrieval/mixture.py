"""The ``mix`` serving strategy: rank by the condition marginalised out.

A CRM model scores ``p(item | user, c)`` for one condition ``c`` at a time. When the goal is
plain relevance — every item the user will engage with, whatever their response — the right
ranking is the *marginal* ``p(item | user) = Σ_c p(c) · p(item | user, c)``, with ``p(c)`` the
training distribution of the condition. ``tdm`` approximates it by interleaving one list per
condition; ``mix`` computes it:

    log p(i | u) = logsumexp_c [ log p(c) + log_softmax_i(u_c · v_i / T) ]

The softmax runs over the whole catalogue (the normaliser differs between conditions, so
unnormalised scores may not be mixed). Log-probabilities are added, never probabilities
multiplied.
"""

from __future__ import annotations

import numpy as np
import torch

from onerec.retrieval.condition import ConditionNormalizer


def mixture_log_probs(logits: torch.Tensor, level_weights: torch.Tensor) -> torch.Tensor:
    """``logits [C, U, I]`` (one row of item logits per condition level), ``level_weights [C]``
    (non-negative, summing to 1) → ``log p(item | user) [U, I]`` of the mixture."""
    if logits.dim() != 3 or logits.shape[0] != level_weights.shape[0]:
        raise ValueError(
            f"logits {tuple(logits.shape)} must be [C, U, I] with C = {level_weights.shape[0]}"
        )
    log_weights = torch.log(level_weights.to(logits.dtype)).view(-1, 1, 1)  # [C, 1, 1]; 0 → -inf
    return torch.logsumexp(torch.log_softmax(logits, dim=-1) + log_weights, dim=0)


def level_prior(normalizer: ConditionNormalizer) -> tuple[np.ndarray, np.ndarray]:
    """``(positions [C], weights [C])``: the training distribution of the condition over levels.

    Buckets: each bucket's share of the training values, from the stored CDF at the bucket
    edges (exact when the target has at most ~1,000 distinct values, as ratings do; within
    1/1000 otherwise — equal-frequency buckets are ~1/B each anyway). Continuous: the position
    ``q · (L - 1)`` of a training value is uniform in its quantile ``q``, so the anchors get
    trapezoid weights (the two ends half of the others).
    """
    levels = normalizer.num_levels
    positions = np.arange(levels, dtype=np.float32)
    if normalizer.encoding == "bucket":
        below = np.searchsorted(normalizer.knots, normalizer.bucket_edges, side="left") - 1
        share_below = np.where(below >= 0, normalizer.knot_cdf[np.maximum(below, 0)], 0.0)
        cdf = np.concatenate([[0.0], share_below, [1.0]])
        weights = np.clip(np.diff(cdf), 0.0, None)
    else:
        weights = np.ones(levels)
        weights[[0, -1]] = 0.5
    return positions, (weights / weights.sum()).astype(np.float32)
