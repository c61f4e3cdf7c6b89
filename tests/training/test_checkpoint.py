"""Checkpoints and model directories round-trip exactly (safetensors + JSON, no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from onerec.errors import CheckpointError
from onerec.training import load_state_into, read_model_config, save_model_dir
from onerec.training.checkpoint import load_checkpoint, save_checkpoint
from onerec.training.optim import build_optimizer
from onerec.training.seed import capture_rng_state, restore_rng_state, seed_everything


class _Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, 3)
        self.out = nn.Linear(3, 5, bias=False)
        self.out.weight = self.emb.weight  # tied: must be stored once and restored tied


def _trained_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    opt = build_optimizer(model, lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        loss = model.out(model.emb(torch.tensor([1, 2, 3]))).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    return opt


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Tied()
    opt = _trained_optimizer(model)
    save_checkpoint(tmp_path / "ck", model, opt, {"step": 3, "note": "x"})
    assert not list(tmp_path.glob(".tmp-*"))  # atomic: no temp dir left

    torch.manual_seed(1)
    other = _Tied()
    other_opt = build_optimizer(other, lr=5.0, weight_decay=0.0)
    state = load_checkpoint(tmp_path / "ck", other, other_opt)
    assert state == {"step": 3, "note": "x"}
    assert torch.equal(other.emb.weight, model.emb.weight)
    assert other.out.weight is other.emb.weight
    a, b = opt.state_dict(), other_opt.state_dict()
    # betas come back as a JSON list instead of a tuple; everything else is identical
    assert json.dumps(a["param_groups"]) == json.dumps(b["param_groups"])
    for pid, values in a["state"].items():
        for name, tensor in values.items():
            assert torch.equal(tensor, b["state"][pid][name]), (pid, name)
    # stepping both optimizers once more gives identical weights
    for m, o in ((model, opt), (other, other_opt)):
        m.out(m.emb(torch.tensor([4]))).sum().backward()
        o.step()
    assert torch.equal(other.emb.weight, model.emb.weight)


def test_no_pickle_in_checkpoint(tmp_path: Path) -> None:
    model = _Tied()
    save_checkpoint(tmp_path / "ck", model, _trained_optimizer(model), {"step": 1})
    for path in (tmp_path / "ck").iterdir():
        assert not path.read_bytes().startswith(b"\x80"), path  # pickle protocol marker


def test_missing_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing", _Tied())


def test_model_dir_round_trip_and_mismatch(tmp_path: Path) -> None:
    model = nn.Linear(4, 2)
    save_model_dir(tmp_path / "m", model, {"in": 4, "out": 2})
    assert read_model_config(tmp_path / "m") == {"in": 4, "out": 2}
    fresh = nn.Linear(4, 2)
    load_state_into(fresh, tmp_path / "m")
    assert torch.equal(fresh.weight, model.weight)
    with pytest.raises(CheckpointError, match="does not match"):
        load_state_into(nn.Linear(3, 2), tmp_path / "m")
    with pytest.raises(CheckpointError, match="not a model directory"):
        read_model_config(tmp_path)


def test_rng_state_round_trip_through_json() -> None:
    seed_everything(7)
    saved = json.loads(json.dumps(capture_rng_state()))
    first = (torch.rand(3), np.random.rand(3), __import__("random").random())
    torch.rand(10)
    np.random.rand(10)
    restore_rng_state(saved)
    second = (torch.rand(3), np.random.rand(3), __import__("random").random())
    assert torch.equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]
