"""In-batch + sampled softmax with log-Q correction (Yi et al., RecSys 2019), as pure functions.

For user ``i`` with positive item ``p_i`` the candidates are every in-batch positive
``p_1 … p_B`` plus ``N`` extra sampled negatives ``n_1 … n_N``. Each candidate ``j`` carries
``log_q_j``: the log of its expected number of appearances among the candidates under the
sampling that produced it — ``log(B · P_data(j))`` for an in-batch positive (items appear in
batches as often as they appear as targets) and ``log(N · P_neg(j))`` for a sampled negative.
The corrected logit is ``s_ij = u_i · v_j / τ − log_q_j``; subtracting ``log_q`` undoes the
over-representation of popular items among the negatives, so the sampled softmax estimates the
full softmax over the catalogue. Constant offsets in ``log_q`` cancel in the softmax.

Accidental hits — a candidate that is the same item as user ``i``'s positive but sits in
another column (the item appears twice in the batch, or was also drawn as a negative) — are
masked out of row ``i``: they are not negatives for that user.

``loss = mean_i [ −s_{i,i} + logsumexp_j s_ij ]`` over the unmasked candidates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sampled_softmax_logq_loss(
    user_vecs: torch.Tensor,
    pos_item_vecs: torch.Tensor,
    pos_item_ids: torch.Tensor,
    pos_log_q: torch.Tensor,
    neg_item_vecs: torch.Tensor | None = None,
    neg_item_ids: torch.Tensor | None = None,
    neg_log_q: torch.Tensor | None = None,
    temperature: float = 1.0,
    row_offset: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean corrected softmax loss and the ``[B, B + N]`` corrected logits (masked = −inf).

    Data-parallel training passes ``user_vecs`` of this rank's ``R`` rows only, with the
    positives of the whole global batch (``[B, …]``, gathered across ranks) and ``row_offset``
    = index of its first row in the batch: user ``i``'s positive is candidate
    ``row_offset + i``. The logits are then ``[R, B + N]`` and the loss the mean over the ``R``
    rows, so the ranks' row-weighted mean is the single-process loss.

    Args:
        user_vecs: ``[B, d]`` user (query) vectors.
        pos_item_vecs: ``[B, d]`` vector of each row's positive item.
        pos_item_ids: ``[B]`` item index of each positive (for accidental-hit masking).
        pos_log_q: ``[B]`` log expected count of each positive among the in-batch candidates.
        neg_item_vecs: ``[N, d]`` extra sampled negatives, or ``None``.
        neg_item_ids: ``[N]`` their item indices.
        neg_log_q: ``[N]`` their log expected counts.
        temperature: divides the dot products before the correction.
    """
    cand_vecs = pos_item_vecs  # [B, d]
    cand_ids = pos_item_ids  # [B]
    cand_log_q = pos_log_q  # [B]
    if neg_item_vecs is not None:
        if neg_item_ids is None or neg_log_q is None:
            raise ValueError("sampled negatives need their item ids and log_q")
        cand_vecs = torch.cat([cand_vecs, neg_item_vecs], dim=0)  # [B + N, d]
        cand_ids = torch.cat([cand_ids, neg_item_ids], dim=0)
        cand_log_q = torch.cat([cand_log_q, neg_log_q], dim=0)
    rows = user_vecs.shape[0]
    if not 0 <= row_offset <= pos_item_ids.shape[0] - rows:
        raise ValueError(f"row_offset {row_offset} + {rows} rows exceeds {pos_item_ids.shape[0]}")
    labels = torch.arange(row_offset, row_offset + rows, device=user_vecs.device)  # [R]
    logits = user_vecs @ cand_vecs.T / temperature - cand_log_q.unsqueeze(0)  # [R, B + N]
    own_ids = pos_item_ids[row_offset : row_offset + rows]  # [R]
    same_item = own_ids.unsqueeze(1) == cand_ids.unsqueeze(0)  # [R, B + N]
    own_column = torch.zeros_like(same_item)
    own_column[torch.arange(rows, device=same_item.device), labels] = True
    logits = logits.masked_fill(same_item & ~own_column, float("-inf"))
    return F.cross_entropy(logits, labels), logits


def reference_sampled_softmax_logq_loss(
    user_vecs: torch.Tensor,
    pos_item_vecs: torch.Tensor,
    pos_item_ids: torch.Tensor,
    pos_log_q: torch.Tensor,
    neg_item_vecs: torch.Tensor | None = None,
    neg_item_ids: torch.Tensor | None = None,
    neg_log_q: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Plain per-row loop version of :func:`sampled_softmax_logq_loss` (for parity tests)."""
    candidates: list[tuple[torch.Tensor, int, torch.Tensor]] = [
        (pos_item_vecs[j], int(pos_item_ids[j]), pos_log_q[j]) for j in range(len(pos_item_ids))
    ]
    if neg_item_vecs is not None and neg_item_ids is not None and neg_log_q is not None:
        candidates += [
            (neg_item_vecs[j], int(neg_item_ids[j]), neg_log_q[j]) for j in range(len(neg_item_ids))
        ]
    total = user_vecs.new_zeros(())
    for i in range(user_vecs.shape[0]):
        positive_logit = None
        kept: list[torch.Tensor] = []
        for j, (vec, item, log_q) in enumerate(candidates):
            logit = torch.dot(user_vecs[i], vec) / temperature - log_q
            if j == i:
                positive_logit = logit
                kept.append(logit)
            elif item != int(pos_item_ids[i]):
                kept.append(logit)
        assert positive_logit is not None
        total = total + torch.logsumexp(torch.stack(kept), dim=0) - positive_logit
    return total / user_vecs.shape[0]
