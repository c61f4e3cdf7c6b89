"""SASRec: the CE loss by hand, padding/causality invariants, and learning a toy pattern."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from onerec.baselines.runs import DataSection, EvalSection, LoadedData
from onerec.baselines.sasrec import SASRec, SASRecConfig, full_softmax_ce
from onerec.baselines.sasrec_recipe import SASRecRunConfig, train_sasrec
from onerec.data import leave_one_out
from onerec.training import TrainConfig


def test_full_softmax_ce_hand_computed() -> None:
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # [3 items, d=2]
    hidden = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]]])  # [B=1, T=3, d]
    targets = torch.tensor([[0, 1, 3]])  # last position is padding (pad id 3)
    # position 0: logits [1, 0, -1], target 0: -1 + log(e + 1 + 1/e) = 0.4076059
    # position 1: logits [0, 2, 0],  target 1: -2 + log(1 + e^2 + 1) = 0.2395448
    first = -1 + math.log(math.e + 1 + 1 / math.e)
    second = -2 + math.log(2 + math.e**2)
    assert first == pytest.approx(0.4076059, abs=1e-6)
    assert second == pytest.approx(0.2395448, abs=1e-6)
    loss, count = full_softmax_ce(hidden, items, targets, pad_id=3)
    assert count == 2
    assert float(loss) == pytest.approx((first + second) / 2, abs=1e-6)


def _model(num_items: int = 30, **kw: object) -> SASRec:
    torch.manual_seed(0)
    cfg = SASRecConfig(num_items=num_items, max_len=8, d_model=16, num_heads=2, ffn_dim=32, **kw)  # type: ignore[arg-type]
    return SASRec(cfg).eval()


def test_scores_do_not_depend_on_batch_padding() -> None:
    model = _model()
    short = np.array([3, 4])
    long = np.array([1, 2, 3, 4, 5, 6])
    with torch.no_grad():
        alone = model.score_histories([short])
        batched = model.score_histories([long, short])
    torch.testing.assert_close(batched[1:], alone, rtol=1e-5, atol=1e-5)


def test_causal_earlier_states_ignore_later_items() -> None:
    model = _model()
    a = torch.tensor([[1, 2, 3, 4]])
    b = torch.tensor([[1, 2, 9, 9]])
    lengths = torch.tensor([4])
    with torch.no_grad():
        ha, hb = model.encode(a, lengths), model.encode(b, lengths)
    torch.testing.assert_close(ha[:, :2], hb[:, :2])
    assert not torch.allclose(ha[:, 2:], hb[:, 2:])


def test_attention_matches_explicit_masked_softmax() -> None:
    """The SDPA block against a plain masked-softmax attention (parity with a reference)."""
    model = _model()
    block = model.blocks[0]
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        fast = block(x)
        h = block.norm1(x)
        q, k, v = block.qkv(h).view(2, 5, 3, 2, 8).permute(2, 0, 3, 1, 4)
        logits = q @ k.transpose(-1, -2) / math.sqrt(8)  # [B, H, T, T]
        causal = torch.ones(5, 5, dtype=torch.bool).tril()
        attn = logits.masked_fill(~causal, float("-inf")).softmax(-1) @ v
        y = x + block.proj(attn.transpose(1, 2).reshape(2, 5, 16))
        reference = y + block.ffn(block.norm2(y))
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)


def test_padding_row_gets_no_gradient() -> None:
    model = _model().train()
    hidden = model.encode(torch.tensor([[1, 2, 30]]), torch.tensor([2]))
    loss, _ = full_softmax_ce(hidden, model.item_table(), torch.tensor([[2, 3, 30]]), 30)
    loss.backward()
    assert model.item_emb.weight.grad is not None
    assert torch.count_nonzero(model.item_emb.weight.grad[30]) == 0


def test_sasrec_learns_a_deterministic_next_item_pattern() -> None:
    # every user walks the cycle 0 -> 1 -> ... -> 19 -> 0 from a random start
    rng = np.random.default_rng(0)
    num_items = 20
    sequences = [
        (rng.integers(num_items) + np.arange(rng.integers(5, 12))) % num_items for _ in range(120)
    ]
    data = LoadedData(leave_one_out(sequences, max_history=20), num_items)
    cfg = SASRecRunConfig(
        data=DataSection(dataset="synthetic"),
        model=SASRecConfig(max_len=12, d_model=16, num_heads=2, ffn_dim=32, dropout=0.0),
        train=TrainConfig(
            epochs=10, batch_size=16, lr=1e-2, eval_every_epochs=5, device="cpu", progress=False
        ),
        eval=EvalSection(ks=[1, 5, 10]),
    )
    model, result, metrics = train_sasrec(cfg, data, None)
    assert metrics["test"]["hr@1"] > 0.9
    assert result.best_metrics["ndcg@10"] == pytest.approx(metrics["valid"]["ndcg@10"])
    assert isinstance(model, SASRec)


def test_full_softmax_ce_with_item_bias_by_hand() -> None:
    items = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    hidden = torch.tensor([[1.0, 0.0]])  # logits [1, 0, -1]
    bias = torch.tensor([0.0, math.log(2.0), 0.0])  # -> [1, ln 2, -1]
    # target 0: -1 + log(e + 2 + 1/e) = -1 + log(5.0862) = 0.62652
    expected = -1 + math.log(math.e + 2 + 1 / math.e)
    assert expected == pytest.approx(0.62652, abs=1e-5)
    loss, _ = full_softmax_ce(hidden, items, torch.tensor([0]), pad_id=3, bias=bias)
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_untied_output_table_and_bias() -> None:
    model = _model(tie_embeddings=False, output_bias=True)
    assert model.out_emb is not None and model.out_bias is not None
    assert model.item_table().data_ptr() == model.out_emb.weight.data_ptr()
    with torch.no_grad():
        model.out_bias[5] = 100.0
        scores = model.score_histories([np.array([1, 2])])
    assert int(scores.argmax()) == 5
