"""Trainer: learns, early-stops, resumes exactly, logs and checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from onerec.errors import ConfigError
from onerec.training import LossOutput, NonFiniteLossError, TrainConfig, Trainer


class _ToyClassifier(nn.Module):
    """Small MLP with dropout, so resume must also restore the dropout RNG."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _toy_data(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()  # 3 classes, learnable
    return x, y


def _loss(model: nn.Module, batch: list[torch.Tensor]) -> LossOutput:
    x, y = batch
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    return LossOutput(loss, {"acc": float((logits.argmax(-1) == y).float().mean())})


def _make(tmp: Path | None, **overrides: object) -> tuple[Trainer, _ToyClassifier]:
    torch.manual_seed(123)
    model = _ToyClassifier()
    x, y = _toy_data()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    xv, yv = _toy_data(128)

    def evaluate(m: nn.Module) -> dict[str, float]:
        logits = m(xv)
        return {
            "acc": float((logits.argmax(-1) == yv).float().mean()),
            "loss": float(nn.functional.cross_entropy(logits, yv)),
        }

    settings: dict[str, object] = {
        "epochs": 4,
        "lr": 1e-2,
        "warmup_steps": 3,
        "monitor": "acc",
        "device": "cpu",
        "progress": False,
        "log_every": 2,
        "out_dir": str(tmp) if tmp else None,
    }
    settings.update(overrides)
    config = TrainConfig.model_validate(settings)
    return Trainer(model, _loss, loader, config, evaluate), model


def test_loss_decreases_on_toy_problem() -> None:
    trainer, model = _make(None, epochs=6, eval_every_epochs=None)
    x, y = _toy_data()
    model.eval()
    with torch.no_grad():
        before = float(nn.functional.cross_entropy(model(x), y))
    trainer.fit()
    model.eval()
    with torch.no_grad():
        after = float(nn.functional.cross_entropy(model(x), y))
    assert after < 0.6 * before


def test_early_stopping_stops_and_restores_best(tmp_path: Path) -> None:
    # monitor the validation loss in "max" mode: it falls as the model learns, so the first
    # evaluation stays best and patience 2 ends the run after the third evaluation.
    trainer, model = _make(
        tmp_path, epochs=20, monitor="loss", monitor_mode="max", early_stopping_patience=2
    )
    result = trainer.fit()
    assert result.stopped_early
    assert len(result.history) == 3
    assert result.best_step == result.history[0]["step"] == 8  # 256 / 32 steps per epoch
    assert result.final_step == 24
    # best weights restored: evaluating now reproduces the best record
    best = json.loads((tmp_path / "checkpoints/best/trainer_state.json").read_text())
    assert best["step"] == 8
    model.eval()
    xv, yv = _toy_data(128)
    with torch.no_grad():
        restored = float(nn.functional.cross_entropy(model(xv), yv))
    assert restored == pytest.approx(result.best_metrics["loss"], rel=1e-6)


def test_resume_after_interruption_matches_uninterrupted(tmp_path: Path) -> None:
    common = {"epochs": 4, "eval_every_steps": 5, "early_stopping_patience": 10}
    full_trainer, full_model = _make(tmp_path / "full", **common)
    full = full_trainer.fit()

    # "interrupted" after 13 steps (mid-epoch 2, between evaluations) with the same schedule
    interrupted_trainer, _ = _make(tmp_path / "cut", max_steps=13, schedule_steps=32, **common)
    cut = interrupted_trainer.fit()
    assert cut.final_step == 13
    resumed_trainer, resumed_model = _make(tmp_path / "cut", resume=True, **common)
    resumed = resumed_trainer.fit()

    assert resumed.final_step == full.final_step == 32
    assert resumed.best_step == full.best_step
    assert resumed.best_metrics == full.best_metrics
    assert [h["acc"] for h in resumed.history] == [h["acc"] for h in full.history]
    for (name, a), (_, b) in zip(
        full_model.state_dict().items(), resumed_model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    last_full = json.loads((tmp_path / "full/checkpoints/last/trainer_state.json").read_text())
    last_cut = json.loads((tmp_path / "cut/checkpoints/last/trainer_state.json").read_text())
    assert last_full["rng"] == last_cut["rng"]


def test_metrics_log_and_checkpoint_files(tmp_path: Path) -> None:
    trainer, _ = _make(tmp_path, epochs=2)
    trainer.fit()
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    kinds = [r["kind"] for r in lines]
    assert kinds.count("eval") == 2 and kinds.count("train") == 8  # 16 steps, log_every 2
    assert all("lr" in r and "loss" in r for r in lines if r["kind"] == "train")
    for name in ("last", "best"):
        files = {p.name for p in (tmp_path / "checkpoints" / name).iterdir()}
        assert files == {"model.safetensors", "optimizer.safetensors", "trainer_state.json"}


def test_gradient_accumulation_counts_optimizer_steps() -> None:
    trainer, _ = _make(None, epochs=1, grad_accum_steps=3, eval_every_epochs=None)
    result = trainer.fit()
    assert result.final_step == 3  # ceil(8 batches / 3)


def test_unknown_monitor_key_is_a_config_error() -> None:
    trainer, _ = _make(None, epochs=1, monitor="ndcg@10")
    with pytest.raises(ConfigError, match="ndcg@10"):
        trainer.fit()


def test_non_finite_loss_raises() -> None:
    trainer, _ = _make(None, epochs=1)
    trainer.loss_fn = lambda model, batch: LossOutput(model(batch[0]).sum() * float("nan"))
    with pytest.raises(NonFiniteLossError):
        trainer.fit()


def test_callable_train_data_gets_epoch() -> None:
    seen: list[int] = []
    x, y = _toy_data(64)

    def per_epoch(epoch: int) -> list[list[torch.Tensor]]:
        seen.append(epoch)
        return [[x[:32], y[:32]], [x[32:], y[32:]]]

    config = TrainConfig(epochs=3, device="cpu", progress=False, eval_every_epochs=None)
    result = Trainer(_ToyClassifier(), _loss, per_epoch, config).fit()
    assert result.final_step == 6
    assert seen[-3:] == [0, 1, 2]


def test_resume_requires_out_dir() -> None:
    # The config alone is valid (recipes fill out_dir later); the Trainer refuses it.
    config = TrainConfig(resume=True)
    with pytest.raises(ConfigError, match="out_dir"):
        Trainer(nn.Linear(1, 1), lambda model, batch: None, [], config)
