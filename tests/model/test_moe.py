"""MoE routing, gates, load-balancing loss and dispatch, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from onerec.model.moe import (
    DenseFeedForward,
    GroupedExperts,
    MoEFeedForward,
    TopKRouter,
    build_ffn,
    dense_reference_moe,
    switch_aux_loss,
)


def _router_with_logits(weight: list[list[float]], top_k: int, **kwargs: object) -> TopKRouter:
    router = TopKRouter(d_model=len(weight[0]), num_experts=len(weight), top_k=top_k, **kwargs)  # type: ignore[arg-type]
    with torch.no_grad():
        router.gate.weight.copy_(torch.tensor(weight))
    return router


def test_topk_selection_and_renormalised_gates() -> None:
    # Identity-like gate: logits of token x are x itself.
    router = _router_with_logits([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], top_k=2)
    x = torch.tensor([[math.log(1.0), math.log(2.0), math.log(5.0)]])  # probs 1/8, 2/8, 5/8
    routing = router(x)
    assert routing.expert_index.tolist() == [[2, 1]]
    torch.testing.assert_close(routing.probs, torch.tensor([[1 / 8, 2 / 8, 5 / 8]]))
    # Renormalised over the two chosen experts: 5/7 and 2/7.
    torch.testing.assert_close(routing.gates, torch.tensor([[5 / 7, 2 / 7]]))


def test_gates_without_renormalisation_are_router_probabilities() -> None:
    router = _router_with_logits([[1.0, 0.0], [0.0, 1.0]], top_k=1, renormalize=False)
    x = torch.tensor([[0.0, math.log(3.0)]])  # probs 1/4, 3/4
    routing = router(x)
    assert routing.expert_index.tolist() == [[1]]
    torch.testing.assert_close(routing.gates, torch.tensor([[0.75]]))


def test_switch_aux_loss_hand_computed() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    index = torch.tensor([[0], [1]])
    # f = [1/2, 1/2, 0], P = [0.3, 0.45, 0.25] -> 3 * (0.15 + 0.225) = 1.125
    torch.testing.assert_close(switch_aux_loss(probs, index, 3), torch.tensor(1.125))
    # top-2: assignments {0,1},{1,2}: f = [1/4, 1/2, 1/4]; P as above
    index2 = torch.tensor([[0, 1], [1, 2]])
    expected = 3 * (0.25 * 0.3 + 0.5 * 0.45 + 0.25 * 0.25)
    torch.testing.assert_close(switch_aux_loss(probs, index2, 3), torch.tensor(expected))


def test_switch_aux_loss_is_one_at_perfect_balance() -> None:
    probs = torch.full((4, 4), 0.25)
    index = torch.tensor([[0], [1], [2], [3]])
    torch.testing.assert_close(switch_aux_loss(probs, index, 4), torch.tensor(1.0))


def test_aux_loss_gradient_reaches_router() -> None:
    moe = build_ffn("moe", 8, 16, 4, 2, num_layers=1)
    x = torch.randn(2, 5, 8)
    _, stats = moe(x)
    stats.aux_loss.backward()
    assert moe.router.gate.weight.grad is not None
    assert float(moe.router.gate.weight.grad.abs().sum()) > 0


def _moe(d: int = 8, experts: int = 4, top_k: int = 2, **kwargs: object) -> MoEFeedForward:
    torch.manual_seed(0)
    router = TopKRouter(d, experts, top_k, **kwargs)  # type: ignore[arg-type]
    grouped = GroupedExperts(d, 16, experts, out_std=0.5)
    with torch.no_grad():
        grouped.w_in.normal_(0, 0.5)
        grouped.b_in.normal_(0, 0.1)
        grouped.b_out.normal_(0, 0.1)
    return MoEFeedForward(router, grouped)


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_grouped_dispatch_equals_dense_reference(top_k: int) -> None:
    moe = _moe(top_k=top_k)
    x = torch.randn(3, 7, 8)
    fast, stats = moe(x)
    torch.testing.assert_close(fast, dense_reference_moe(moe, x), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats.expert_load.sum(), torch.tensor(1.0))


def test_token_mask_routes_only_real_tokens() -> None:
    moe = _moe()
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    out, stats = moe(x, mask)
    reference = dense_reference_moe(moe, x)
    torch.testing.assert_close(out[mask], reference[mask], rtol=1e-5, atol=1e-6)
    assert torch.all(out[~mask] == 0)
    # Load statistics over the 4 real tokens only: 4 * top_k = 8 assignments.
    routing = moe.router(x[mask])
    counts = torch.bincount(routing.expert_index.reshape(-1), minlength=4).float()
    torch.testing.assert_close(stats.expert_load, counts / 8)


def test_bias_balancing_moves_bias_against_load_and_only_in_training() -> None:
    moe = _moe(load_balance="bias", bias_update_rate=0.1)
    with torch.no_grad():  # every token prefers expert 0, then 1
        moe.router.gate.weight.zero_()
        moe.router.gate.weight[0].fill_(1.0)
        moe.router.gate.weight[1].fill_(0.5)
    x = torch.ones(1, 6, 8)
    moe.eval()
    moe(x)
    assert torch.all(moe.router.expert_bias == 0)
    moe.train()
    moe(x)
    # experts 0 and 1 took all 12 assignments (mean load 3): bias -0.1; 2 and 3 got none: +0.1
    torch.testing.assert_close(moe.router.expert_bias, torch.tensor([-0.1, -0.1, 0.1, 0.1]))
    # The bias changes selection but not the gate values: gates still come from probs.
    routing = moe.router(x.reshape(-1, 8))
    picked = routing.probs.gather(1, routing.expert_index)
    torch.testing.assert_close(routing.gates, picked / picked.sum(1, keepdim=True))


def test_dense_ablation_has_equal_active_width() -> None:
    moe = build_ffn("moe", 16, 32, 8, 2, num_layers=2)
    dense = build_ffn("dense", 16, 32, 8, 2, num_layers=2)
    assert isinstance(dense, DenseFeedForward)
    experts = moe.experts  # type: ignore[union-attr]
    # Matmul weights one token touches: k experts' (d x h + h x d) == dense (d x kh + kh x d).
    moe_active = 2 * (experts.w_in[0].numel() + experts.w_out[0].numel())
    assert dense.fc_in.weight.numel() + dense.fc_out.weight.numel() == moe_active
    out, stats = dense(torch.randn(2, 3, 16))
    assert out.shape == (2, 3, 16) and stats is None
