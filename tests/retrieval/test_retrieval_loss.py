"""In-batch + sampled softmax with log-Q correction, against hand-derived values."""

from __future__ import annotations

import math

import torch

from onerec.retrieval.loss import reference_sampled_softmax_logq_loss, sampled_softmax_logq_loss

E1 = torch.tensor([1.0, 0.0])
E2 = torch.tensor([0.0, 1.0])


def test_in_batch_logq_matches_hand_values() -> None:
    # Users e1, e2; positives e1 (item 0, log q = 0) and e2 (item 1, log q = log 2); τ = 1.
    # Row 0 logits: [1 − 0, 0 − log 2]         → loss0 = −1 + log(e + 1/2)
    # Row 1 logits: [0 − 0, 1 − log 2] label 1 → loss1 = −(1 − log 2) + log(1 + e/2)
    users = torch.stack([E1, E2])
    loss, logits = sampled_softmax_logq_loss(
        users, users.clone(), torch.tensor([0, 1]), torch.tensor([0.0, math.log(2.0)])
    )
    loss0 = -1 + math.log(math.e + 0.5)
    loss1 = -(1 - math.log(2.0)) + math.log(1 + math.e / 2)
    assert math.isclose(float(loss), (loss0 + loss1) / 2, rel_tol=1e-6)
    assert torch.allclose(logits, torch.tensor([[1.0, -math.log(2.0)], [0.0, 1 - math.log(2.0)]]))


def test_sampled_negatives_and_temperature_hand_values() -> None:
    # One user e1, positive e1 (log q 0), one sampled negative e2 with log q = −1; τ = 0.5.
    # Logits: [1/0.5 − 0, 0/0.5 + 1] = [2, 1] → loss = −2 + log(e² + e).
    loss, _ = sampled_softmax_logq_loss(
        E1[None],
        E1[None],
        torch.tensor([0]),
        torch.tensor([0.0]),
        E2[None],
        torch.tensor([7]),
        torch.tensor([-1.0]),
        temperature=0.5,
    )
    assert math.isclose(float(loss), -2 + math.log(math.exp(2) + math.exp(1)), rel_tol=1e-6)


def test_logq_correction_lowers_popular_items() -> None:
    # The same geometry; making item 1 "popular" (higher log q) must lower its logit, so the
    # loss of row 0 (whose negative it is) falls and that of row 1 (whose positive it is) rises.
    users = torch.stack([E1, E2 * 0.5 + E1 * 0.5])
    items = torch.stack([E1, E2])
    flat, _ = sampled_softmax_logq_loss(users, items, torch.tensor([0, 1]), torch.zeros(2))
    _, logits = sampled_softmax_logq_loss(
        users, items, torch.tensor([0, 1]), torch.tensor([0.0, 2.0])
    )
    _, flat_logits = sampled_softmax_logq_loss(users, items, torch.tensor([0, 1]), torch.zeros(2))
    assert torch.allclose(logits[:, 1], flat_logits[:, 1] - 2.0)
    assert torch.allclose(logits[:, 0], flat_logits[:, 0])


def test_accidental_hits_are_masked() -> None:
    # Both rows have item 3 as positive and a sampled negative is item 3 too: for each row the
    # only surviving candidate is its own column, so the loss is exactly 0.
    users = torch.stack([E1, E2])
    loss, logits = sampled_softmax_logq_loss(
        users,
        users.clone(),
        torch.tensor([3, 3]),
        torch.zeros(2),
        E1[None],
        torch.tensor([3]),
        torch.zeros(1),
    )
    assert float(loss) == 0.0
    assert (
        torch.isinf(logits[0, 1]) and torch.isinf(logits[1, 0]) and torch.isinf(logits[:, 2]).all()
    )


def test_matches_reference_loop_on_random_inputs() -> None:
    gen = torch.Generator().manual_seed(0)
    users = torch.randn(6, 4, generator=gen)
    items = torch.randn(6, 4, generator=gen)
    ids = torch.tensor([0, 1, 2, 1, 4, 5])  # a duplicate positive
    log_q = torch.randn(6, generator=gen)
    negs = torch.randn(5, 4, generator=gen)
    neg_ids = torch.tensor([9, 2, 8, 7, 0])  # two collide with positives
    neg_log_q = torch.randn(5, generator=gen)
    fast, _ = sampled_softmax_logq_loss(users, items, ids, log_q, negs, neg_ids, neg_log_q, 0.3)
    slow = reference_sampled_softmax_logq_loss(
        users, items, ids, log_q, negs, neg_ids, neg_log_q, 0.3
    )
    assert torch.allclose(fast, slow, atol=1e-5)


def test_gradient_flows_to_both_towers() -> None:
    users = torch.randn(4, 3, requires_grad=True)
    items = torch.randn(4, 3, requires_grad=True)
    loss, _ = sampled_softmax_logq_loss(users, items, torch.arange(4), torch.zeros(4))
    loss.backward()
    assert users.grad is not None and items.grad is not None
    assert users.grad.abs().sum() > 0 and items.grad.abs().sum() > 0
