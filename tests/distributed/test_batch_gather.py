"""Row-sharded losses that couple the rows of a batch (CRM's in-batch negatives): computed per
block of rows against the whole batch's candidates, the row-weighted mean of the blocks is the
full-batch loss — value and gradient — which is what data-parallel ranks rely on."""

from __future__ import annotations

import pytest
import torch

from onerec.retrieval.loss import sampled_softmax_logq_loss
from onerec.training.sharding import (
    BatchShard,
    active_shard,
    batch_offset,
    gather_batch_rows,
    set_active_shard,
)


def _inputs() -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    users = torch.randn(7, 4, generator=gen, requires_grad=True)
    items = torch.randn(7, 4, generator=gen, requires_grad=True)
    ids = torch.tensor([3, 1, 3, 0, 2, 1, 5])  # repeated items: accidental hits are masked
    log_q = torch.randn(7, generator=gen)
    negatives = torch.randn(3, 4, generator=gen, requires_grad=True)
    neg_ids = torch.tensor([1, 6, 4])
    neg_log_q = torch.randn(3, generator=gen)
    return users, items, ids, log_q, negatives, neg_ids, neg_log_q


def test_row_blocks_recombine_to_the_full_batch_loss() -> None:
    users, items, ids, log_q, negatives, neg_ids, neg_log_q = _inputs()
    full, full_logits = sampled_softmax_logq_loss(
        users, items, ids, log_q, negatives, neg_ids, neg_log_q, temperature=0.5
    )
    full_grads = torch.autograd.grad(full, [users, items, negatives])

    combined = users.new_zeros(())
    for start, stop in ((0, 4), (4, 7)):  # the 4/3 split of two ranks
        part, logits = sampled_softmax_logq_loss(
            users[start:stop], items, ids, log_q, negatives, neg_ids, neg_log_q,
            temperature=0.5, row_offset=start,
        )  # fmt: skip
        assert torch.equal(torch.isinf(logits), torch.isinf(full_logits[start:stop]))
        combined = combined + part * (stop - start) / 7
    assert float(combined.detach()) == pytest.approx(float(full.detach()), rel=1e-6)
    for got, want in zip(
        torch.autograd.grad(combined, [users, items, negatives]), full_grads, strict=True
    ):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_row_offset_out_of_range_is_refused() -> None:
    users, items, ids, log_q, *_ = _inputs()
    with pytest.raises(ValueError, match="row_offset"):
        sampled_softmax_logq_loss(users[:3], items, ids, log_q, row_offset=5)


def test_gather_is_the_identity_in_one_process() -> None:
    local = torch.randn(3, 2)
    assert active_shard() is None and batch_offset() == 0
    assert gather_batch_rows(local) is local
    set_active_shard(BatchShard(start=4, rows=3, sizes=(4, 3)))
    try:
        assert batch_offset() == 4
        assert gather_batch_rows(local) is local  # no process group: nothing to gather
        set_active_shard(BatchShard(start=7, rows=0, sizes=(7, 0)))
        assert batch_offset() == 0  # a stand-in row duplicates the batch's first row
    finally:
        set_active_shard(None)


def test_moe_aux_loss_with_global_counts_recombines_exactly() -> None:
    # Split 11 routed tokens 6/5 as two ranks would: each rank's aux loss with the *global*
    # expert fractions (what data_parallel_expert_counts all-reduces) and its own mean router
    # probabilities, weighted by its tokens, is the single-process aux loss — value and
    # gradient. With per-rank fractions it is not (the aux loss is a product of averages).
    from onerec.model.moe import data_parallel_expert_counts, switch_aux_loss

    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(11, 4, generator=gen, requires_grad=True)
    probs = torch.softmax(logits, dim=-1)
    chosen = torch.topk(probs, 2, dim=-1).indices  # [11, 2]
    full = switch_aux_loss(probs, chosen, 4)
    (full_grad,) = torch.autograd.grad(full, logits, retain_graph=True)

    counts = torch.bincount(chosen.reshape(-1), minlength=4)
    assert data_parallel_expert_counts(counts) is counts  # one process: nothing to reduce
    blocks = ((0, 6), (6, 11))
    combined = sum(
        switch_aux_loss(probs[a:b], chosen[a:b], 4, counts) * (b - a) / 11 for a, b in blocks
    )
    assert isinstance(combined, torch.Tensor)
    assert float(combined.detach()) == pytest.approx(float(full.detach()), rel=1e-6)
    (grad,) = torch.autograd.grad(combined, logits, retain_graph=True)
    torch.testing.assert_close(grad, full_grad, rtol=1e-5, atol=1e-7)
    local = sum(switch_aux_loss(probs[a:b], chosen[a:b], 4) * (b - a) / 11 for a, b in blocks)
    assert isinstance(local, torch.Tensor)
    assert abs(float(local.detach()) - float(full.detach())) > 1e-4
