"""Warm-up + cosine schedule against hand-computed values; the weight-decay split."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from onerec.training.optim import WarmupCosineSchedule, build_optimizer, warmup_cosine_factor


def test_schedule_values_by_hand() -> None:
    # warmup 4, total 14, min ratio 0.1. Warm-up: (s+1)/4 -> 0.25, 0.5, 0.75, 1.0.
    # Cosine over steps 4..13 (9 intervals): f = 0.1 + 0.9 * 0.5 * (1 + cos(pi * (s-4)/9)).
    #   s=4: 1.0;  s=13: 0.1;  s=8.5 would be the midpoint 0.55.
    #   s=7: p=3/9, cos(pi/3)=0.5 -> 0.1 + 0.45 * 1.5 = 0.775
    #   s=10: p=6/9, cos(2pi/3)=-0.5 -> 0.1 + 0.45 * 0.5 = 0.325
    expected = {0: 0.25, 1: 0.5, 2: 0.75, 3: 1.0, 4: 1.0, 7: 0.775, 10: 0.325, 13: 0.1, 20: 0.1}
    for step, value in expected.items():
        assert warmup_cosine_factor(step, 4, 14, 0.1) == pytest.approx(value), step


def test_schedule_without_warmup_starts_at_peak() -> None:
    assert warmup_cosine_factor(0, 0, 3, 0.0) == 1.0
    assert warmup_cosine_factor(1, 0, 3, 0.0) == pytest.approx(0.5)
    assert warmup_cosine_factor(2, 0, 3, 0.0) == pytest.approx(0.0)


def test_schedule_sets_group_lrs() -> None:
    model = nn.Linear(2, 2)
    opt = build_optimizer(model, lr=2e-3, weight_decay=0.1)
    schedule = WarmupCosineSchedule(opt, warmup_steps=2, total_steps=10, min_lr_ratio=0.0)
    assert schedule.apply(0) == pytest.approx(1e-3)
    assert all(g["lr"] == pytest.approx(1e-3) for g in opt.param_groups)
    schedule.apply(9)
    assert all(g["lr"] == pytest.approx(0.0, abs=1e-12) for g in opt.param_groups)
    assert math.isclose(schedule.apply(2), 2e-3)


def test_weight_decay_split() -> None:
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    opt = build_optimizer(model, lr=1e-3, weight_decay=0.05)
    decayed = [p for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]]
    plain = [p for g in opt.param_groups if g["weight_decay"] == 0 for p in g["params"]]
    assert len(decayed) == 1 and decayed[0] is model[1].weight
    assert len(plain) == 4  # embedding, linear bias, norm weight + bias
    opt2 = build_optimizer(model, lr=1e-3, weight_decay=0.05, decay_embeddings=True)
    decayed2 = [p for g in opt2.param_groups if g["weight_decay"] > 0 for p in g["params"]]
    assert any(p is model[0].weight for p in decayed2)
    assert isinstance(opt, torch.optim.AdamW)
