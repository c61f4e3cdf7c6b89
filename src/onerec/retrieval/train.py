"""Train a CRM (or the unconditioned two-tower) end to end: data → examples → Trainer → index.

``train_retrieval(config)`` is what ``onerec train-retrieval CONFIG`` runs. It fits the condition
normaliser on training interactions only, trains through :class:`onerec.training.Trainer`
(validation Recall@K under ``eval.monitor_strategy`` — no held-out target is peeked at — drives
early stopping), evaluates the control table on validation and test, builds the ANN index, measures its
recall against exact search, and saves one model directory (see :mod:`onerec.retrieval.artifact`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import polars as pl
import torch
from pydantic import Field

from onerec.config import StrictModel
from onerec.errors import ConfigError
from onerec.io import read_json
from onerec.retrieval.condition import ConditionNormalizer, condition_values
from onerec.retrieval.eval_control import (
    DEFAULT_LEVEL_QUANTILES,
    ControlRow,
    control_table,
    evaluate_strategy,
)
from onerec.retrieval.examples import (
    HeldOutUsers,
    RetrievalBatches,
    TrainingExamples,
    build_heldout,
    build_training_examples,
    split_masks,
)
from onerec.retrieval.features import item_feature_matrix, positive_rows, user_feature_tables
from onerec.retrieval.index import IndexConfig, ItemIndex, recall_vs_exact
from onerec.retrieval.loss import sampled_softmax_logq_loss
from onerec.retrieval.model import CRMModel, TwoTowerConfig
from onerec.retrieval.strategies import DEFAULT_TDM_QUANTILES
from onerec.training import LossOutput, TrainConfig, Trainer, seed_everything
from onerec.training.distributed import barrier, is_main_process, main_process_first
from onerec.training.sharding import batch_offset, gather_batch_rows


class RetrievalDataConfig(StrictModel):
    """Which data, which condition, how it is split."""

    dataset: str = Field(
        default="kuairand-1k", description="named data set or a prepared directory"
    )
    condition_target: str = Field(
        default="play_time_ms",
        description="watch_ratio | play_time_ms | rating | any numeric column",
    )
    max_watch_ratio: float = Field(default=2.0, gt=0, description="clip for watch_ratio")
    condition_encoding: Literal["bucket", "continuous"] = "bucket"
    condition_levels: int = Field(default=10, ge=2, description="equal-frequency buckets / anchors")
    split: Literal["global_time", "user_time"] = Field(
        default="global_time",
        description="time cut-offs for everyone, or per user (see split_masks)",
    )
    valid_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    min_history: int = Field(
        default=1, ge=0, description="skip training rows with a shorter history"
    )
    positive_column: str | None = Field(
        default=None,
        description="keep only rows where this column > 0 (e.g. click) — history, training "
        "examples and held-out targets alike; None keeps every row",
    )
    item_feature_columns: list[str] = Field(
        default_factory=list, description="numeric item columns (log1p, standardised)"
    )
    user_feature_columns: list[str] = Field(
        default_factory=list,
        description="user-table columns: strings become categorical embeddings, numbers dense",
    )
    semantic_ids_dir: str | None = Field(
        default=None, description="a saved SemanticTokenizer directory"
    )


class RetrievalLossConfig(StrictModel):
    """In-batch + sampled softmax with log-Q correction."""

    num_sampled_negatives: int = Field(default=256, ge=0)
    negative_sampling: Literal["uniform", "popularity"] = "uniform"
    logq_correction: bool = True
    condition_dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="fraction of training conditions replaced by the training median's position",
    )


class RetrievalEvalConfig(StrictModel):
    """What the control tables report."""

    ks: list[int] = Field(default_factory=lambda: [50, 100])
    level_quantiles: list[float] = Field(default_factory=lambda: list(DEFAULT_LEVEL_QUANTILES))
    tdm_quantiles: list[float] = Field(default_factory=lambda: list(DEFAULT_TDM_QUANTILES))
    monitor_strategy: Literal["mean", "max", "tdm", "mix"] = Field(
        default="tdm",
        description="condition strategy behind the validation recall (early stopping)",
    )
    ann_queries: int = Field(default=1000, ge=1, description="users whose vectors probe ANN recall")


class RetrievalTrainConfig(TrainConfig):
    """:class:`TrainConfig` with retrieval defaults (monitor validation Recall@100)."""

    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=512, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    monitor: str = "recall@100"
    early_stopping_patience: int | None = Field(default=3, ge=1)


class CRMTrainConfig(StrictModel):
    """Everything ``onerec train-retrieval`` needs (the TOML file's sections)."""

    out_dir: str = "runs/crm"
    num_threads: int = Field(
        default=0,
        ge=0,
        description="torch CPU threads (0: leave torch's default); 1 is fastest on a busy 2-core box",
    )
    data: RetrievalDataConfig = Field(default_factory=RetrievalDataConfig)
    model: TwoTowerConfig = Field(default_factory=TwoTowerConfig)
    loss: RetrievalLossConfig = Field(default_factory=RetrievalLossConfig)
    train: RetrievalTrainConfig = Field(default_factory=RetrievalTrainConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    eval: RetrievalEvalConfig = Field(default_factory=RetrievalEvalConfig)


@dataclass
class RetrievalData:
    """Everything derived from the data set for one run."""

    dataset: Any
    normalizer: ConditionNormalizer
    train: TrainingExamples
    valid: HeldOutUsers
    test: HeldOutUsers
    interactions: pl.DataFrame  # the rows used (after data.positive_column)
    raw_condition: np.ndarray  # [rows] per row of ``interactions``
    dropped_missing_condition: int
    item_dense: np.ndarray | None = None
    item_codes: np.ndarray | None = None
    user_categorical: np.ndarray | None = None  # [num_users, n_cat] 1-based codes, 0 unknown
    user_cardinalities: list[int] = field(default_factory=list)
    user_dense: np.ndarray | None = None  # [num_users, n_dense] standardised
    codebook_sizes: list[int] = field(default_factory=list)


def load_retrieval_dataset(spec: str) -> Any:
    """A ``PreparedDataset`` from a prepared directory or a named set (``onerec.data``)."""
    from onerec.data import load_dataset

    return load_dataset(spec)


def prepare_retrieval_data(
    dataset: Any, cfg: RetrievalDataConfig, max_history: int
) -> RetrievalData:
    """Split by time, fit the condition on the training window, build examples and held-out users."""
    inter = positive_rows(dataset.interactions, cfg.positive_column)
    user = inter["user_idx"].to_numpy().astype(np.int64)
    item = inter["item_idx"].to_numpy().astype(np.int64)
    ts = inter["timestamp"].to_numpy().astype(np.int64)
    raw = condition_values(inter, cfg.condition_target, cfg.max_watch_ratio)
    in_train, in_valid, in_test = split_masks(
        user, ts, cfg.valid_fraction, cfg.test_fraction, cfg.split
    )
    normalizer = ConditionNormalizer.fit(
        raw[in_train], cfg.condition_encoding, cfg.condition_levels
    )
    n = dataset.num_items
    train, dropped = build_training_examples(
        user, item, raw, in_train, normalizer, max_history, n, cfg.min_history
    )
    if len(train) < 2:
        raise ConfigError("fewer than two training examples before the validation cut-off")
    valid = build_heldout(user, item, raw, in_train, in_valid, normalizer, max_history, n)
    test = build_heldout(user, item, raw, ~in_test, in_test, normalizer, max_history, n)
    data = RetrievalData(dataset, normalizer, train, valid, test, inter, raw, dropped)
    if cfg.item_feature_columns:
        data.item_dense = item_feature_matrix(dataset.items, cfg.item_feature_columns)
    if cfg.user_feature_columns:
        cat, sizes, dense = user_feature_tables(dataset.users, cfg.user_feature_columns)
        data.user_categorical, data.user_cardinalities, data.user_dense = cat, sizes, dense
    if cfg.semantic_ids_dir:
        from onerec.tokenizer import SemanticTokenizer

        tokenizer = SemanticTokenizer.load(cfg.semantic_ids_dir)
        data.item_codes = np.asarray(tokenizer.codes, dtype=np.int64)
        data.codebook_sizes = [int(s) for s in tokenizer.codebook_sizes]
        if data.item_codes.shape[0] != n:
            raise ConfigError(
                f"semantic IDs in {cfg.semantic_ids_dir} cover {data.item_codes.shape[0]} items, "
                f"the data set has {n}; tokenize this data set's items"
            )
    return data


def build_model(cfg: CRMTrainConfig, data: RetrievalData) -> CRMModel:
    """The model with sizes filled from the data and side tables installed."""
    model_cfg = cfg.model.model_copy(
        update={
            "num_items": data.dataset.num_items,
            "num_condition_levels": data.normalizer.num_levels,
            "num_item_dense_features": 0 if data.item_dense is None else data.item_dense.shape[1],
            "semantic_codebook_sizes": data.codebook_sizes,
            "num_users": data.dataset.num_users if cfg.data.user_feature_columns else 0,
            "user_categorical_cardinalities": data.user_cardinalities,
            "num_user_dense_features": 0 if data.user_dense is None else data.user_dense.shape[1],
        }
    )
    model = CRMModel(TwoTowerConfig.model_validate(model_cfg.model_dump()))
    model.item_encoder.set_side_data(
        None if data.item_codes is None else torch.from_numpy(data.item_codes),
        None if data.item_dense is None else torch.from_numpy(data.item_dense),
    )
    model.set_user_features(
        None if data.user_categorical is None else torch.from_numpy(data.user_categorical),
        None if data.user_dense is None else torch.from_numpy(data.user_dense),
    )
    return model


def crm_loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> LossOutput:
    """The Trainer's loss: corrected sampled softmax over in-batch + sampled negatives.

    Under data-parallel training each rank encodes its own rows and the positives of all
    ranks are gathered (differentiably), so every user sees the whole global batch as in-batch
    negatives — the same candidates, loss and gradient as one process.
    """
    model = cast(CRMModel, model)
    cond = batch["condition"] if model.config.condition != "none" else None
    user_vecs = model.user_vectors(batch["history"], cond, batch["user_idx"])  # [R, d]
    pos_vecs = gather_batch_rows(model.item_vectors(batch["target"]))  # [B, d]
    negatives = batch.get("negatives")
    neg_vecs = model.item_vectors(negatives) if negatives is not None else None
    loss, _ = sampled_softmax_logq_loss(
        user_vecs,
        pos_vecs,
        gather_batch_rows(batch["target"]),
        gather_batch_rows(batch["target_log_q"]),
        neg_vecs,
        negatives,
        batch.get("negative_log_q"),
        temperature=model.config.temperature,
        row_offset=batch_offset(),
    )
    return LossOutput(loss=loss, weight=float(user_vecs.shape[0]))  # a mean over the R rows


def validation_fn(data: RetrievalData, cfg: RetrievalEvalConfig) -> Any:
    """``evaluate_fn`` for the Trainer: validation recall under ``cfg.monitor_strategy``.

    The strategy decides the condition from the user's past only — no validation target is
    peeked at — so early stopping stays honest.
    """

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        metrics = evaluate_strategy(
            cast(CRMModel, model),
            data.valid,
            data.normalizer,
            cfg.monitor_strategy,
            cfg.ks,
            cfg.tdm_quantiles,
        )
        return {
            k: v for k, v in metrics.items() if k.startswith("recall@") and not k.endswith("_se")
        }

    return evaluate


@dataclass
class RetrievalRun:
    """What :func:`train_retrieval` produced."""

    model: CRMModel
    data: RetrievalData
    index: ItemIndex
    summary: dict[str, Any]
    out_dir: Path


def train_retrieval(
    cfg: CRMTrainConfig, dataset: Any | None = None, save: bool = True
) -> RetrievalRun:
    """Train, evaluate, index and (``save``) write ``cfg.out_dir/model``; returns the run."""
    threads_before = torch.get_num_threads()
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _train_retrieval(cfg, dataset, save)
    finally:
        torch.set_num_threads(threads_before)


def _train_retrieval(cfg: CRMTrainConfig, dataset: Any | None, save: bool) -> RetrievalRun:
    from onerec.retrieval.artifact import save_retrieval_model

    seed_everything(cfg.train.seed)
    if dataset is None:
        with main_process_first():  # torchrun: rank 0 prepares/caches the data first
            dataset = load_retrieval_dataset(cfg.data.dataset)
    data = prepare_retrieval_data(dataset, cfg.data, cfg.model.max_history)
    model = build_model(cfg, data)
    batches = RetrievalBatches(
        data.train,
        dataset.num_items,
        cfg.train.batch_size,
        cfg.loss.num_sampled_negatives,
        cfg.loss.negative_sampling,
        cfg.loss.logq_correction,
        seed=cfg.train.seed,
        condition_dropout=cfg.loss.condition_dropout,
        dropout_position=float(data.normalizer.encode([data.normalizer.median])[0]),
    )
    out_dir = Path(cfg.out_dir)
    train_cfg = (
        cfg.train.model_copy(update={"out_dir": str(out_dir / "training")}) if save else cfg.train
    )
    trainer = Trainer(model, crm_loss_fn, batches, train_cfg, validation_fn(data, cfg.eval))
    result = trainer.fit()
    model.eval()

    index = ItemIndex.build(model.all_item_vectors().detach().cpu().numpy(), cfg.index)
    tables = {
        split: [row.as_dict() for row in _control(model, held, data.normalizer, cfg)]
        for split, held in (("valid", data.valid), ("test", data.test))
    }
    summary = {
        "dataset": getattr(dataset, "name", cfg.data.dataset),
        "condition": cfg.model.condition,
        "condition_target": cfg.data.condition_target,
        "num_condition_levels": data.normalizer.num_levels,
        "train_examples": len(data.train),
        "dropped_missing_condition": data.dropped_missing_condition,
        "valid_users": len(data.valid),
        "test_users": len(data.test),
        "skipped_cold_users": {
            "valid": data.valid.skipped_cold_users,
            "test": data.test.skipped_cold_users,
        },
        "best_step": result.best_step,
        "train_seconds": result.train_seconds,
        "validation": result.best_metrics,
        "control": tables,
        "ann_recall@100": ann_recall(model, data, index, cfg.eval.ann_queries),
        "index": cfg.index.model_dump(),
    }
    if save and is_main_process():  # under torchrun rank 0 alone writes the model directory
        save_retrieval_model(out_dir / "model", model, cfg, data, index, summary)
    barrier()  # the directory is complete before any rank returns
    return RetrievalRun(model, data, index, summary, out_dir)


def _control(
    model: CRMModel, held: HeldOutUsers, normalizer: ConditionNormalizer, cfg: CRMTrainConfig
) -> list[ControlRow]:
    return control_table(
        model, held, normalizer, cfg.eval.ks, cfg.eval.level_quantiles, cfg.eval.tdm_quantiles
    )


def evaluate_saved(model_dir: str | Path) -> dict[str, Any]:
    """Recompute the validation and test control tables of a saved model directory.

    The data set, split and condition come from the run config saved beside the weights, so the
    held-out users are the ones the model was evaluated on at training time.
    """
    from onerec.retrieval.artifact import Retriever

    retriever = Retriever(model_dir)
    cfg = CRMTrainConfig.model_validate(read_json(retriever.directory / "config.json")["run"])
    dataset = load_retrieval_dataset(cfg.data.dataset)
    data = prepare_retrieval_data(dataset, cfg.data, cfg.model.max_history)
    return {
        split: [row.as_dict() for row in _control(retriever.model, held, data.normalizer, cfg)]
        for split, held in (("valid", data.valid), ("test", data.test))
    }


@torch.no_grad()
def ann_recall(model: CRMModel, data: RetrievalData, index: ItemIndex, max_queries: int) -> float:
    """ANN recall@100 against exact search, probing with real test-user vectors (mean strategy)."""
    from onerec.retrieval.eval_control import user_vectors_for

    held = data.test if len(data.test) else data.valid
    take = min(max_queries, len(held))
    positions = data.normalizer.snap(held.condition_mean[:take])
    queries = user_vectors_for(model, held.history[:take], positions, held.user_idx[:take])
    vectors = model.all_item_vectors().cpu().numpy()
    k = min(100, vectors.shape[0])
    return recall_vs_exact(index, vectors, queries.cpu().numpy(), k) if take else float("nan")
