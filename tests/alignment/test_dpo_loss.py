"""DPO loss against hand-derived values, and the frozen-reference guarantee."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from onerec.alignment.dpo import dpo_loss, frozen_reference


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_dpo_loss_hand_derived_values() -> None:
    # Pair 0: policy (chosen −1, rejected −3), reference (−2, −2), β = 0.5.
    #   logits = (−1 − −3) − (−2 − −2) = 2;  β·logits = 1
    #   loss = −log σ(1) = log(1 + e^−1) = 0.3132616875182228
    #   chosen reward = 0.5·(−1 − −2) = 0.5;  rejected reward = 0.5·(−3 − −2) = −0.5
    # Pair 1: policy (−4, −1), reference (−3, −2).
    #   logits = (−3) − (−1) = −2;  β·logits = −1
    #   loss = −log σ(−1) = log(1 + e) = 1.3132616875182228
    #   chosen reward = 0.5·(−4 − −3) = −0.5;  rejected reward = 0.5·(−1 − −2) = 0.5
    loss, chosen, rejected = dpo_loss(
        _t(-1.0, -4.0), _t(-3.0, -1.0), _t(-2.0, -3.0), _t(-2.0, -2.0), beta=0.5, reduction="none"
    )
    torch.testing.assert_close(loss, _t(0.3132616875182228, 1.3132616875182228))
    torch.testing.assert_close(chosen, _t(0.5, -0.5))
    torch.testing.assert_close(rejected, _t(-0.5, 0.5))
    mean_loss, _, _ = dpo_loss(
        _t(-1.0, -4.0), _t(-3.0, -1.0), _t(-2.0, -3.0), _t(-2.0, -2.0), beta=0.5
    )
    assert mean_loss.shape == ()
    assert mean_loss.item() == pytest.approx((0.3132616875182228 + 1.3132616875182228) / 2)


def test_dpo_loss_label_smoothing_hand_derived() -> None:
    # Pair 0 above with ε = 0.1: 0.9·(−log σ(1)) + 0.1·(−log σ(−1))
    #   = 0.9·0.3132616875182228 + 0.1·1.3132616875182228 = 0.41326168751822284
    loss, _, _ = dpo_loss(_t(-1.0), _t(-3.0), _t(-2.0), _t(-2.0), beta=0.5, label_smoothing=0.1)
    assert loss.item() == pytest.approx(0.41326168751822284)


def test_dpo_loss_at_reference_is_log2_and_beta_scales() -> None:
    # Policy equal to the reference: logits = 0 → loss = log 2 for every β, rewards 0.
    loss, chosen, rejected = dpo_loss(_t(-2.0), _t(-5.0), _t(-2.0), _t(-5.0), beta=2.0)
    assert loss.item() == pytest.approx(math.log(2.0))
    assert chosen.item() == 0.0 and rejected.item() == 0.0
    # β = 0.1, logits = −2 → −log σ(−0.2) = 0.7981388693815917
    loss, _, _ = dpo_loss(_t(-4.0), _t(-1.0), _t(-3.0), _t(-2.0), beta=0.1)
    assert loss.item() == pytest.approx(0.7981388693815917)


def test_dpo_loss_gradient_pushes_chosen_up_and_rejected_down() -> None:
    chosen_lp = torch.tensor([-2.0], requires_grad=True)
    rejected_lp = torch.tensor([-2.0], requires_grad=True)
    loss, _, _ = dpo_loss(chosen_lp, rejected_lp, _t(-2.0).float(), _t(-2.0).float(), beta=1.0)
    loss.backward()
    # d/dx −log σ(x) at 0 is −1/2; chain rule gives −β/2 for chosen, +β/2 for rejected.
    assert chosen_lp.grad is not None and rejected_lp.grad is not None
    assert chosen_lp.grad.item() == pytest.approx(-0.5)
    assert rejected_lp.grad.item() == pytest.approx(0.5)


def test_dpo_loss_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        dpo_loss(_t(0.0), _t(0.0), _t(0.0), _t(0.0), beta=0.0)
    with pytest.raises(ValueError):
        dpo_loss(_t(0.0), _t(0.0), _t(0.0), _t(0.0), beta=1.0, label_smoothing=0.5)


class _ToySequenceModel(nn.Module):
    """Per-user categorical over 6 tokens; a sequence's log-prob is the sum over its tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.user_embedding = nn.Embedding(4, 8)
        self.head = nn.Linear(8, 6)

    def sequence_logprob(self, users: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(self.head(self.user_embedding(users)), dim=-1)  # [B, V]
        return log_probs.gather(1, tokens).sum(dim=1)  # [B]


def test_reference_stays_frozen_while_policy_moves() -> None:
    torch.manual_seed(0)
    policy = _ToySequenceModel()
    reference = frozen_reference(policy)
    ref_before = {k: v.clone() for k, v in reference.state_dict().items()}
    policy_before = {k: v.clone() for k, v in policy.state_dict().items()}
    assert all(not p.requires_grad for p in reference.parameters())
    assert all(p.requires_grad for p in policy.parameters())

    users = torch.tensor([0, 1, 2, 3])
    chosen = torch.tensor([[0, 1, 2], [1, 1, 3], [2, 4, 5], [0, 0, 5]])
    rejected = torch.tensor([[3, 4, 5], [0, 2, 5], [0, 1, 3], [1, 2, 3]])
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.05)
    margins = []
    for _ in range(25):
        with torch.no_grad():
            ref_chosen = reference.sequence_logprob(users, chosen)
            ref_rejected = reference.sequence_logprob(users, rejected)
        loss, chosen_r, rejected_r = dpo_loss(
            policy.sequence_logprob(users, chosen),
            policy.sequence_logprob(users, rejected),
            ref_chosen,
            ref_rejected,
            beta=0.5,
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        margins.append((chosen_r - rejected_r).mean().item())

    for name, value in reference.state_dict().items():
        assert torch.equal(value, ref_before[name]), f"reference parameter {name} moved"
    assert all(p.grad is None for p in reference.parameters())
    moved = [not torch.equal(v, policy_before[k]) for k, v in policy.state_dict().items()]
    assert all(moved), "every policy parameter should have been updated"
    assert margins[0] == pytest.approx(0.0, abs=1e-6)  # policy starts equal to the reference
    assert margins[-1] > 1.0  # and learns to separate chosen from rejected
    # The copy shares no storage: editing the policy in place leaves the reference alone.
    with torch.no_grad():
        policy.head.weight.add_(1.0)
    assert torch.equal(reference.state_dict()["head.weight"], ref_before["head.weight"])
