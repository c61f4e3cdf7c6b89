"""Tiny training and evaluation runs shared by the torchrun worker and the single-process
reference. Everything here goes through onerec's public API (Trainer, LossOutput, eval).

Each function behaves the same with or without a process group: under torchrun the Trainer sets
up DDP/FSDP2 by itself and the ``*_sharded`` functions split their work across the ranks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from onerec.baselines.batching import NextItemBatches
from onerec.baselines.sasrec import SASRec, SASRecConfig
from onerec.baselines.sasrec_recipe import sasrec_loss
from onerec.data import leave_one_out
from onerec.eval import evaluate_scorer, rank_all
from onerec.eval.sharded import evaluate_scorer_sharded, rank_all_sharded, sharded_topk
from onerec.training import LossOutput, TrainConfig, Trainer
from onerec.training.sharding import sharded_map, sharded_rows

NUM_ITEMS = 30
# 22 users -> 22 training windows; batches of 7 rows: 7, 7, 7, 1 per epoch, so the shards are
# uneven (4/3 rows) and the last batch leaves rank 1 with no row at all.
NUM_USERS = 22
BATCH = 7


def synthetic_split() -> Any:
    """Leave-one-out split of random sequences (5..12 items) over a small catalogue."""
    rng = np.random.default_rng(7)
    sequences = [
        rng.integers(0, NUM_ITEMS, size=int(rng.integers(5, 13))).astype(np.int64)
        for _ in range(NUM_USERS)
    ]
    return leave_one_out(sequences, max_history=10)


def _sasrec() -> SASRec:
    torch.manual_seed(3)
    config = SASRecConfig(
        num_items=NUM_ITEMS, max_len=12, d_model=16, num_layers=1, num_heads=2, ffn_dim=32,
        dropout=0.0,
    )  # fmt: skip
    return SASRec(config)


def token_weighted_sasrec_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> LossOutput:
    """SASRec's loss (a mean over real positions) with its position count as the weight."""
    output = sasrec_loss(model, batch)
    return LossOutput(output.loss, output.metrics, weight=output.metrics["positions"])


def train_sasrec(
    out_dir: Path, strategy: str, max_steps: int | None = None, resume: bool = False
) -> dict[str, Any]:
    """Two epochs of tiny SASRec (dropout 0) with validation NDCG each epoch."""
    split = synthetic_split()
    model = _sasrec()
    batches = NextItemBatches(split.train_sequences, model.pad_id, 12, BATCH, seed=5)
    config = TrainConfig(
        epochs=2, max_steps=max_steps, schedule_steps=8, batch_size=BATCH, lr=1e-2,
        warmup_steps=2, weight_decay=0.01, grad_clip=0.5, log_every=1, eval_every_epochs=1,
        monitor="ndcg@10", progress=False, out_dir=str(out_dir), resume=resume,
        distributed=strategy,  # type: ignore[arg-type]
    )  # fmt: skip

    def evaluate(m: nn.Module) -> dict[str, float]:
        assert isinstance(m, SASRec)
        return evaluate_scorer_sharded(m.score_histories, split.valid, (5, 10), batch_size=4)

    result = Trainer(model, token_weighted_sasrec_loss, batches.for_epoch, config, evaluate).fit()
    return {
        "losses": _step_losses(out_dir),
        "history": result.history,
        "final_step": result.final_step,
        "weights": _weights(model),
    }


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_mlp(out_dir: Path) -> dict[str, Any]:
    """A DataLoader with a shuffling sampler and a per-row mean loss (default weight = rows);
    45 rows in batches of 10 (the last has 5) and 2 accumulation steps."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(45, 6, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.7).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=10, shuffle=True)
    torch.manual_seed(11)
    model = _MLP()

    def loss_fn(m: nn.Module, batch: list[torch.Tensor]) -> LossOutput:
        logits = m(batch[0])
        return LossOutput(nn.functional.cross_entropy(logits, batch[1]))

    config = TrainConfig(
        epochs=3, batch_size=10, lr=5e-2, grad_accum_steps=2, log_every=1,
        eval_every_epochs=None, progress=False, out_dir=str(out_dir),
    )  # fmt: skip
    Trainer(model, loss_fn, loader, config).fit()
    return {"losses": _step_losses(out_dir), "weights": _weights(model)}


def train_crm(out_dir: Path) -> dict[str, Any]:
    """CRM's real loss (in-batch + 5 sampled negatives, log-Q) on a tiny two-tower: 41 examples
    in batches of 9 (4 full batches an epoch, split 5/4). The in-batch negatives couple the
    rows, so the ranks gather each other's positives (``gather_batch_rows``)."""
    from onerec.retrieval.examples import RetrievalBatches, TrainingExamples
    from onerec.retrieval.model import CRMModel, TwoTowerConfig
    from onerec.retrieval.train import crm_loss_fn

    rng = np.random.default_rng(4)
    count, history = 41, 4
    examples = TrainingExamples(
        user_idx=np.arange(count, dtype=np.int64),
        history=rng.integers(0, NUM_ITEMS, size=(count, history)).astype(np.int64),
        target_item=rng.integers(0, NUM_ITEMS, size=count).astype(np.int64),
        condition=rng.uniform(0, 3, size=count).astype(np.float32),
    )
    batches = RetrievalBatches(examples, NUM_ITEMS, batch_size=9, num_negatives=5, seed=2)
    torch.manual_seed(5)
    model = CRMModel(
        TwoTowerConfig(
            num_items=NUM_ITEMS, embed_dim=8, hidden_dim=16, max_history=history,
            num_condition_levels=4, dropout=0.0, temperature=0.2,
        )
    )  # fmt: skip
    config = TrainConfig(
        epochs=2, batch_size=9, lr=1e-2, warmup_steps=1, log_every=1, eval_every_epochs=None,
        progress=False, out_dir=str(out_dir),
    )  # fmt: skip
    Trainer(model, crm_loss_fn, batches, config).fit()
    return {"losses": _step_losses(out_dir), "weights": _weights(model)}


def sharded_evaluation() -> dict[str, Any]:
    """Full-ranking metrics and top-K lists, sharded and unsharded (37 users, batches of 8)."""
    split = synthetic_split()
    model = _sasrec().eval()
    rng = np.random.default_rng(1)
    histories = [rng.integers(0, NUM_ITEMS, size=int(rng.integers(1, 9))) for _ in range(37)]
    targets = rng.integers(0, NUM_ITEMS, size=37)
    examples = type(split.valid)(np.arange(37), histories, targets)
    with torch.no_grad():
        return {
            "metrics_sharded": evaluate_scorer_sharded(model.score_histories, examples, (5, 10), 8),
            "metrics_single": evaluate_scorer(model.score_histories, examples, (5, 10), 8),
            "topk_sharded": rank_all_sharded(model.score_histories, examples, 10, 8).tolist(),
            "topk_single": rank_all(model.score_histories, examples, 10, 8).tolist(),
        }


def sharded_beam_search() -> dict[str, Any]:
    """Trie-constrained beam search over 13 users, sharded in history-length order."""
    from onerec.generation.recommend import recommend_topk
    from onerec.model.batching import pad_histories
    from onerec.model.synthetic import random_catalogue, random_model

    codes, trie = random_catalogue(40, [4, 5, 3], seed=1)
    model = random_model([4, 5, 3], seed=2)
    rng = np.random.default_rng(3)
    histories = [rng.integers(0, 40, size=int(rng.integers(1, 7))) for _ in range(13)]

    def run(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chosen = [histories[int(i)] for i in indices]
        return recommend_topk(model, chosen, codes, trie, top_k=5, beam_width=8, batch_size=3)

    _, lengths = pad_histories(histories, model.config.max_history)
    order = np.argsort(lengths, kind="stable")  # recommend_topk's own batching order
    items, scores = sharded_topk(run, len(histories), batch_size=3, order=order)
    single_items, single_scores = run(np.arange(len(histories)))
    return {
        "items_sharded": items.tolist(),
        "scores_sharded": scores.tolist(),
        "items_single": single_items.tolist(),
        "scores_single": single_scores.tolist(),
    }


def sharded_maps() -> dict[str, Any]:
    """Generic maps: objects and rows, with fewer items than ranks × align (empty shards)."""
    words = [f"w{i}" for i in range(5)]
    return {
        "objects": sharded_map(lambda chunk: [w.upper() for w in chunk], words, align=4),
        "rows": sharded_rows(
            lambda chunk: np.stack([np.arange(3) * int(i) for i in chunk]),
            list(range(3)),
            align=2,
            order=[2, 0, 1],
        ).tolist(),
        "bools": sharded_rows(
            lambda chunk: np.asarray([[i % 2 == 0] for i in chunk]), list(range(5))
        ).tolist(),
    }


def collectives(out_dir: Path) -> dict[str, Any]:
    """The small helpers: broadcast, gather, rank-0-first blocks, uneven row gathers."""
    from onerec.training.distributed import (
        all_gather_objects,
        broadcast_object,
        is_main_process,
        main_process_first,
        rank,
    )
    from onerec.training.sharding import all_gather_rows

    marker = out_dir / "made-by-rank-0"
    with main_process_first():
        if is_main_process():
            marker.write_text("x")
        seen_marker = marker.is_file()  # the other ranks enter only after rank 0 has left
    rows = np.full((rank() + 1, 2), rank(), dtype=np.float64)  # rank r holds r + 1 rows
    return {
        "broadcast": broadcast_object({"from": rank()}),
        "gathered": all_gather_objects(rank()),
        "seen_marker": seen_marker,
        "rows": all_gather_rows(rows).tolist(),
    }


def _step_losses(out_dir: Path) -> list[float]:
    path = out_dir / "metrics.jsonl"
    if not path.is_file():  # not rank 0: the log is written by rank 0 only
        return []
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["loss"] for r in records if r["kind"] == "train"]


def _weights(model: nn.Module) -> dict[str, list[float]]:
    return {k: v.detach().reshape(-1).tolist() for k, v in model.state_dict().items()}
