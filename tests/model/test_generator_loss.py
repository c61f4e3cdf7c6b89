"""Next-token loss against hand-computed values, and the generator loss on a batch."""

from __future__ import annotations

import math

import numpy as np
import torch

from onerec.model import generator_loss, next_token_loss
from onerec.model.batching import GeneratorBatches, sliding_session_examples
from onerec.model.synthetic import random_catalogue, random_model
from onerec.model.targets import IGNORE_INDEX

NEG = float("-inf")


def test_next_token_loss_hand_values() -> None:
    # Row 0: uniform over 2 real codes (third absent) -> ln 2.
    # Row 1: logits (ln 1, ln 3) -> target 1 has prob 3/4 -> -ln(3/4). Row 2 ignored.
    logits = torch.tensor([[[0.0, 0.0, NEG], [0.0, math.log(3.0), NEG], [5.0, 1.0, 2.0]]])
    targets = torch.tensor([[0, 1, IGNORE_INDEX]])
    loss, count = next_token_loss(logits, targets)
    assert count == 2
    expected = (math.log(2.0) - math.log(0.75)) / 2
    assert math.isclose(float(loss), expected, rel_tol=1e-6)


def test_next_token_loss_with_nothing_to_predict_is_zero() -> None:
    loss, count = next_token_loss(torch.zeros(1, 2, 3), torch.full((1, 2), IGNORE_INDEX))
    assert count == 0 and float(loss) == 0.0


def test_generator_loss_adds_weighted_aux_and_reports_load() -> None:
    sizes = [5, 4, 3]
    codes, _ = random_catalogue(40, sizes)
    model = random_model(sizes, dtype=torch.float32, scale=0.05)
    sequences = [np.arange(i, i + 8) % 40 for i in range(10)]
    batches = GeneratorBatches(sliding_session_examples(sequences, 5, 2), codes, batch_size=16)
    batch = next(iter(batches))
    with_aux = generator_loss(model, batch, aux_loss_weight=0.5)
    without = generator_loss(model, batch, aux_loss_weight=0.0)
    aux = with_aux.metrics["moe_aux"]
    assert math.isclose(
        float(with_aux.loss.detach() - without.loss.detach()), 0.5 * aux, rel_tol=1e-4
    )
    assert with_aux.metrics["expert_load_max"] >= 1.0 >= with_aux.metrics["expert_load_min"]
    # Every session item gives C targets.
    assert with_aux.metrics["target_tokens"] == float(batch["session_mask"].sum() * 3)
    with_aux.loss.backward()
    assert all(p.grad is not None for p in model.decoder.layers[0].ffn.parameters())
