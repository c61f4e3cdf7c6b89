"""The inference MoE (all-experts product / routed without statistics) equals the routed layer."""

from __future__ import annotations

from typing import cast

import pytest
import torch

from onerec.model import moe as moe_module
from onerec.model.moe import (
    DenseFeedForward,
    GroupedExperts,
    MoEFeedForward,
    TopKRouter,
    all_experts,
    build_ffn,
    dense_reference_moe,
    ffn_inference,
    moe_inference,
    route_inference,
)


def _moe(load_balance: str = "aux_loss", renormalize: bool = True, seed: int = 0) -> MoEFeedForward:
    torch.manual_seed(seed)
    layer = build_ffn("moe", 16, 24, 6, 2, 2, renormalize, load_balance).double().eval()  # type: ignore[arg-type]
    assert isinstance(layer, MoEFeedForward)
    with torch.no_grad():
        for param in layer.parameters():
            param.normal_(0, 0.5)  # large weights: distinct, tie-free routing
        if load_balance in ("bias", "both"):
            _router(layer).expert_bias.copy_(torch.linspace(-0.2, 0.2, 6))
    return layer


def _router(layer: MoEFeedForward) -> TopKRouter:
    return cast(TopKRouter, layer.router)


@pytest.mark.parametrize("tokens", [1, 7, 40])
@pytest.mark.parametrize(
    ("load_balance", "renormalize"), [("aux_loss", True), ("bias", True), ("none", False)]
)
def test_dense_inference_equals_routed_forward(
    tokens: int, load_balance: str, renormalize: bool
) -> None:
    layer = _moe(load_balance, renormalize)
    x = torch.randn(tokens, 16, dtype=torch.float64)
    routed, _ = layer(x.unsqueeze(0))
    fast = moe_inference(layer, x)  # small: the all-experts product
    torch.testing.assert_close(fast, routed[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast, dense_reference_moe(layer, x.unsqueeze(0))[0])


def test_large_batches_take_the_routed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = _moe()
    x = torch.randn(50, 16, dtype=torch.float64)
    called: list[int] = []
    original = moe_module.routed_experts

    def spy(*args: object) -> torch.Tensor:
        called.append(1)
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(moe_module, "routed_experts", spy)
    monkeypatch.setattr(moe_module, "DENSE_INFERENCE_MAX_MACS", 0)
    fast = moe_inference(layer, x)
    assert called == [1]
    torch.testing.assert_close(fast, layer(x.unsqueeze(0))[0][0], rtol=1e-12, atol=1e-12)


def test_all_experts_matches_each_expert() -> None:
    layer = _moe()
    x = torch.randn(5, 16, dtype=torch.float64)
    outputs = all_experts(cast(GroupedExperts, layer.experts), x)  # [N, A, d]
    for index in range(6):
        torch.testing.assert_close(
            outputs[index], cast(GroupedExperts, layer.experts).expert(index, x)
        )


def test_ffn_inference_masks_tokens_and_keeps_the_bias_fixed() -> None:
    layer = _moe("bias")
    x = torch.randn(2, 5, 16, dtype=torch.float64)
    mask = torch.tensor([[True, True, False, True, False], [True, False, True, True, True]])
    bias_before = _router(layer).expert_bias.clone()
    routed, _ = layer(x, mask)
    fast = ffn_inference(layer, x, mask)
    torch.testing.assert_close(fast, routed, rtol=1e-12, atol=1e-12)
    assert bool((fast[~mask] == 0).all())
    torch.testing.assert_close(_router(layer).expert_bias, bias_before)


def test_ffn_inference_of_a_dense_ffn_is_its_forward() -> None:
    torch.manual_seed(0)
    dense = DenseFeedForward(8, 12).eval()
    x = torch.randn(3, 4, 8)
    torch.testing.assert_close(ffn_inference(dense, x), dense(x)[0])


@pytest.mark.parametrize(
    ("load_balance", "renormalize"), [("aux_loss", True), ("both", True), ("none", False)]
)
def test_route_inference_equals_router(load_balance: str, renormalize: bool) -> None:
    layer = _moe(load_balance, renormalize)
    x = torch.randn(30, 16, dtype=torch.float64)
    routing = _router(layer)(x)
    expert_index, gates = route_inference(_router(layer), x)
    assert torch.equal(expert_index, routing.expert_index)
    torch.testing.assert_close(gates, routing.gates, rtol=0, atol=0)
