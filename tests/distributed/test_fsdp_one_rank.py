"""FSDP2 pieces on a one-process gloo group (fast; the two-process run is in test_torchrun.py):
checkpoints are written in the single-process format, and after training the model is a plain
module again (plain parameters, FSDP's hooks gone, the user's own hooks kept)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import distributed as dist
from torch import nn

from onerec.training import LossOutput, build_optimizer, load_checkpoint
from onerec.training.ddp import ParallelTraining
from onerec.training.fsdp import _HOOK_TABLES


@pytest.fixture
def one_rank_group(tmp_path: Path) -> Iterator[None]:
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(9, 4)
        self.out = nn.Linear(4, 3)

    def score(self, ids: torch.Tensor) -> torch.Tensor:  # not forward: goes via CallWithModel
        return self.out(self.emb(ids).mean(dim=1))


def _loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> LossOutput:
    assert isinstance(model, _Net)
    logits = model.score(batch["ids"])
    return LossOutput(nn.functional.cross_entropy(logits, batch["y"]))


def _hooks(model: nn.Module) -> list[list[int]]:
    return [sorted(getattr(m, t, {})) for m in model.modules() for t in _HOOK_TABLES]


def test_fsdp2_checkpoint_and_unshard(one_rank_group: None, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _Net()
    model.out.register_forward_hook(lambda module, args, output: None)  # the user's own hook
    hooks_before = _hooks(model)
    parallel = ParallelTraining("fsdp2", torch.device("cpu"))
    parallel.wrap(model)
    assert type(model.out.weight).__name__ == "DTensor"
    optimizer = build_optimizer(model, 0.1, 0.0)
    batch = {"ids": torch.tensor([[1, 2], [3, 4], [5, 6]]), "y": torch.tensor([0, 1, 2])}
    output = parallel.forward(_loss, model, parallel.shard(batch))
    scale, logged = parallel.combine(output)
    (output.loss * scale).backward()
    optimizer.step()
    assert logged["loss"] == pytest.approx(float(output.loss.detach()))
    with torch.no_grad():  # as the trainer calls it
        metrics = parallel.evaluate(lambda m: {"norm": float(m.out.weight.norm())}, model)  # type: ignore[union-attr, operator]
    parallel.save_checkpoint(tmp_path / "ckpt", model, optimizer, {"step": 1})
    full = parallel.full_state_dict(model)

    plain = _Net()  # a single process reads the checkpoint with the ordinary loader
    plain_optimizer = build_optimizer(plain, 0.1, 0.0)
    assert load_checkpoint(tmp_path / "ckpt", plain, plain_optimizer) == {"step": 1}
    for key, value in plain.state_dict().items():
        assert torch.equal(value, full[key])
    assert metrics["norm"] == pytest.approx(float(plain.out.weight.detach().norm()))
    exp_avg = plain_optimizer.state[plain.out.weight]["exp_avg"]
    assert exp_avg.shape == (3, 4) and float(exp_avg.abs().sum()) > 0

    parallel.finish(model)
    assert all(type(p) is nn.Parameter for p in model.parameters())
    assert _hooks(model) == hooks_before
    for key, value in model.state_dict().items():
        assert torch.equal(value, full[key])
    model.load_state_dict(plain.state_dict())  # no FSDP load hooks left to trip over
    assert torch.equal(model.score(batch["ids"]), plain.score(batch["ids"]))


def test_fsdp2_resume_loads_a_single_process_checkpoint(
    one_rank_group: None, tmp_path: Path
) -> None:
    from onerec.training import save_checkpoint

    torch.manual_seed(1)
    source = _Net()
    source_optimizer = build_optimizer(source, 0.1, 0.0)
    batch = {"ids": torch.tensor([[1, 2], [7, 8]]), "y": torch.tensor([0, 2])}
    _loss(source, batch).loss.backward()
    source_optimizer.step()
    save_checkpoint(tmp_path / "single", source, source_optimizer, {"step": 1})

    torch.manual_seed(2)
    model = _Net()
    parallel = ParallelTraining("fsdp2", torch.device("cpu"))
    parallel.wrap(model)
    optimizer = build_optimizer(model, 0.1, 0.0)
    assert parallel.load_checkpoint(tmp_path / "single", model, optimizer) == {"step": 1}
    for key, value in parallel.full_state_dict(model).items():
        assert torch.equal(value, source.state_dict()[key])
    state = optimizer.state[model.out.weight]["exp_avg"]
    assert torch.equal(state.full_tensor(), source_optimizer.state[source.out.weight]["exp_avg"])
