"""Training and evaluation recipe for CE-SASRec through the one :class:`~onerec.training.Trainer`.

Leave-one-out: the model trains on each user's sequence minus its last two items (windows of
``model.max_len`` + 1), early-stops on validation NDCG@10 (full ranking, history ≤
``data.max_history``), and the best checkpoint is evaluated on validation and test.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from onerec.baselines.batching import NextItemBatches
from onerec.baselines.runs import (
    METRICS_FILE,
    MODEL_DIR,
    DataSection,
    EvalSection,
    LoadedData,
    data_fingerprint,
    load_run_for_evaluation,
    load_split,
    write_run_config,
)
from onerec.baselines.sasrec import SASRec, SASRecConfig, full_softmax_ce
from onerec.config import StrictModel, build_config
from onerec.eval import MetricsReport
from onerec.eval.sharded import evaluate_scorer_sharded
from onerec.training import (
    LossOutput,
    TrainConfig,
    Trainer,
    load_state_into,
    read_model_config,
    resolve_device,
    save_model_dir,
    seed_everything,
)
from onerec.training.distributed import barrier, is_main_process, main_process_first


class SASRecRunConfig(StrictModel):
    """A ``task = "sasrec"`` config file: ``[data]``, ``[model]``, ``[train]``, ``[eval]``."""

    task: str = "sasrec"
    data: DataSection
    model: SASRecConfig = SASRecConfig()
    train: TrainConfig = TrainConfig(early_stopping_patience=10, monitor="ndcg@10")
    eval: EvalSection = EvalSection()


def sasrec_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> LossOutput:
    """Full-softmax next-item cross-entropy at every non-padding position."""
    assert isinstance(model, SASRec)  # unwrap happens in the Trainer; the loss sees SASRec
    hidden = model.encode(batch["input_ids"], batch["lengths"])  # [B, T, d]
    loss, count = full_softmax_ce(
        hidden, model.item_table(), batch["targets"], model.pad_id, model.score_bias()
    )
    # weight = positions averaged over, so data-parallel ranks combine to the global mean
    return LossOutput(loss, {"positions": float(count)}, weight=float(count))


def _evaluate(
    model: SASRec, examples: Any, cfg: EvalSection, ks: Sequence[int] | None = None
) -> dict[str, float]:
    # Users split over the ranks under torchrun (identical metrics); the plain call otherwise.
    return evaluate_scorer_sharded(
        model.score_histories, examples, ks or cfg.ks, cfg.batch_size, cfg.exclude_history
    )


def train_sasrec(
    cfg: SASRecRunConfig, data: LoadedData, out_dir: Path | None
) -> tuple[SASRec, Any, dict[str, dict[str, float]]]:
    """Train on ``data`` and return (best model, TrainResult, {"valid", "test"} metrics)."""
    cfg.model.num_items = data.num_items
    train_cfg = cfg.train.model_copy(update={"out_dir": str(out_dir) if out_dir else None})
    seed_everything(train_cfg.seed)
    model = SASRec(cfg.model)
    batches = NextItemBatches(
        data.split.train_sequences,
        pad_id=model.pad_id,
        max_len=cfg.model.max_len,
        batch_size=train_cfg.batch_size,
        seed=train_cfg.seed,
    )
    ks = sorted(set(cfg.eval.ks) | {10})  # ndcg@10 drives early stopping
    trainer = Trainer(
        model,
        sasrec_loss,
        batches.for_epoch,
        train_cfg,
        evaluate_fn=lambda m: _evaluate(m, data.split.valid, cfg.eval, ks),  # type: ignore[arg-type]
    )
    result = trainer.fit()  # best weights restored
    model.eval()
    metrics = {
        "valid": _evaluate(model, data.split.valid, cfg.eval),
        "test": _evaluate(model, data.split.test, cfg.eval),
    }
    return model, result, metrics


def run_sasrec(config: dict[str, Any], run_dir: Path) -> MetricsReport:
    """``onerec train`` for ``task = "sasrec"``: train, save model dir, write metrics."""
    cfg = build_config(SASRecRunConfig, config, source="sasrec config")
    started = time.perf_counter()
    with main_process_first():  # torchrun: rank 0 prepares/caches the data first
        data = load_split(cfg.data)
    cfg.model.num_items = data.num_items
    if is_main_process():  # rank 0 alone writes the run directory
        write_run_config(
            run_dir,
            {
                **cfg.model_dump(),
                "dataset_fingerprint": data_fingerprint(data.dataset) if data.dataset else {},
            },
        )
    model, result, metrics = train_sasrec(cfg, data, run_dir)
    if is_main_process():
        save_model_dir(run_dir / MODEL_DIR, model, {"kind": "sasrec", **cfg.model.model_dump()})
    meta = {
        "task": "sasrec",
        "dataset": data.name,
        "best_step": result.best_step,
        "final_step": result.final_step,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.train_seconds, 1),
        "train_cpu_seconds": round(result.train_cpu_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "device": str(resolve_device(cfg.train.device)),
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}".strip(),
        "torch": torch.__version__,
    }
    report = MetricsReport(metrics, meta)
    if is_main_process():
        report.save(run_dir / METRICS_FILE)
    barrier()  # the run directory is complete before any rank returns
    return report


def evaluate_sasrec(
    run_dir: Path, resolved: dict[str, Any], splits: Sequence[str], ks: Sequence[int]
) -> MetricsReport:
    """Re-load ``run_dir/model`` (config.json + safetensors) and evaluate on ``splits``."""
    cfg, data = load_run_for_evaluation(run_dir, resolved, SASRecRunConfig)
    model_cfg = read_model_config(run_dir / MODEL_DIR)
    model_cfg.pop("kind", None)
    model = SASRec(build_config(SASRecConfig, model_cfg, source=f"{run_dir}/model/config.json"))
    load_state_into(model, run_dir / MODEL_DIR)
    model.to(resolve_device(cfg.train.device)).eval()
    examples = {"valid": data.split.valid, "test": data.split.test}
    return MetricsReport(
        {split: _evaluate(model, examples[split], cfg.eval, ks) for split in splits},
        {"task": "sasrec", "dataset": data.name},
    )
