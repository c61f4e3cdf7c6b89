"""``onerec train`` for ``task = "generator"``: tokenizer -> OneRec generator -> beam-search eval.

Leave-one-out (the TIGER protocol): the model trains on every position of each user's sequence
minus its last two items — history = up to ``data.max_history`` items before the position,
target session = the next ``objective.session_items`` items (``m = 1``: next item). Validation
NDCG@10 (beam search over a fixed sample of ``eval.valid_users`` users, to keep epochs cheap)
drives early stopping; the best model is then evaluated on the full validation and test sets,
full ranking through beam search (beam ``eval.beam_width`` ≥ 20, top ``max(ks)``).

Config sections: ``[data]`` (as the baselines), ``[tokenizer]`` (a saved tokenizer ``path``, or
``fit`` + ``embeddings`` to fit one), ``[model]`` (``size`` plus any ``GeneratorConfig`` field),
``[objective]``, ``[train]`` (``TrainConfig``), ``[eval]``.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field, field_validator
from torch import nn

from onerec.baselines.runs import (
    METRICS_FILE,
    MODEL_DIR,
    DataSection,
    LoadedData,
    data_fingerprint,
    load_run_for_evaluation,
    load_split,
    write_run_config,
)
from onerec.config import StrictModel, build_config
from onerec.data import EvalExamples
from onerec.eval import MetricsReport, ranking_metrics
from onerec.eval.sharded import sharded_topk
from onerec.generation.recommend import recommend_topk
from onerec.model.artifacts import load_generator, save_generator
from onerec.model.batching import GeneratorBatches, pad_histories, sliding_session_examples
from onerec.model.config import NAMED_SIZES, GeneratorConfig
from onerec.model.generator import OneRecGenerator
from onerec.model.loss import generator_loss
from onerec.model.targets import session_decoder_sequences
from onerec.tokenizer import EmbeddingSourceConfig, SemanticTokenizer, TokenizerConfig
from onerec.training import (
    LossOutput,
    TrainConfig,
    Trainer,
    TrainResult,
    resolve_device,
    seed_everything,
)
from onerec.training.distributed import barrier, is_main_process, main_process_first


class TokenizerSection(StrictModel):
    """``[tokenizer]``: a saved tokenizer directory, or how to fit one for this data set."""

    path: str | None = Field(default=None, description="saved SemanticTokenizer directory")
    init_code_embeddings: bool = Field(
        default=True, description="start the code embeddings from the k-means centroids (PCA)"
    )
    fit: TokenizerConfig = Field(default_factory=lambda: TokenizerConfig.model_validate({}))
    embeddings: EmbeddingSourceConfig = Field(
        default_factory=lambda: EmbeddingSourceConfig.model_validate({})
    )


class ObjectiveSection(StrictModel):
    """``[objective]``: what the decoder learns to generate."""

    session_items: int = Field(default=1, ge=1, description="m: items per target session")
    min_history: int = Field(default=1, ge=1, description="shortest history that makes an example")
    aux_loss_weight: float = Field(default=0.01, ge=0, description="MoE load-balancing weight")


class GeneratorEvalSection(StrictModel):
    """``[eval]``: full ranking through beam search."""

    ks: list[int] = Field(default_factory=lambda: [5, 10])
    beam_width: int = Field(default=20, ge=1)
    batch_size: int = Field(default=256, ge=1, description="users per beam search")
    exclude_history: bool = Field(default=False, description="TIGER protocol: False")
    valid_users: int | None = Field(
        default=2000, ge=1, description="validation users sampled for early stopping (None: all)"
    )


class GeneratorRunConfig(StrictModel):
    """A ``task = "generator"`` config file."""

    task: str = "generator"
    data: DataSection
    tokenizer: TokenizerSection = Field(default_factory=TokenizerSection)
    model: dict[str, Any] = Field(default_factory=lambda: {"size": "small"})
    objective: ObjectiveSection = Field(default_factory=ObjectiveSection)
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig.model_validate(
            {"early_stopping_patience": 3, "monitor": "ndcg@10"}
        )
    )
    eval: GeneratorEvalSection = Field(default_factory=GeneratorEvalSection)

    @field_validator("model")
    @classmethod
    def _model_section_builds(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "codebook_sizes" in value:
            raise ValueError("codebook_sizes comes from the tokenizer; remove it from [model]")
        size = value.get("size", "small")
        if size not in NAMED_SIZES:
            raise ValueError(f"unknown size {size!r}; choose from {sorted(NAMED_SIZES)}")
        build_generator_config(value, [2], 1)  # dry run: field names and values are valid
        return value


def build_generator_config(
    model_section: dict[str, Any],
    codebook_sizes: list[int],
    session_items: int,
    max_history: int = 20,
) -> GeneratorConfig:
    """``GeneratorConfig`` from a ``[model]`` section once the tokenizer's sizes are known."""
    fields = {k: v for k, v in model_section.items() if k != "size"}
    fields.setdefault("max_history", max_history)
    fields.setdefault("max_session_items", session_items)
    return GeneratorConfig.named(model_section.get("size", "small"), codebook_sizes, **fields)


def prepare_tokenizer(
    section: TokenizerSection,
    data: DataSection,
    train_sequences: Sequence[np.ndarray] | None = None,
) -> SemanticTokenizer:
    """Load ``section.path``, or fit a tokenizer on the data set's item embeddings.

    Collaborative embeddings are counted on ``train_sequences`` (the training split), so the
    validation and test items' co-occurrences never shape the codes.
    """
    if section.path is not None:
        return SemanticTokenizer.load(section.path)
    from onerec.tokenizer.pipeline import build_embeddings

    embeddings = build_embeddings(
        data.dataset,
        section.embeddings,
        data.data_root,
        show_progress=False,
        sequences=train_sequences,
    )
    return SemanticTokenizer.fit(embeddings.matrix, None, section.fit)


def evaluate_generator(
    model: OneRecGenerator,
    examples: EvalExamples,
    tokenizer: SemanticTokenizer,
    cfg: GeneratorEvalSection,
    ks: Sequence[int] | None = None,
    progress: bool = False,
) -> dict[str, float]:
    """Full-ranking metrics of beam-search top-``max(ks)`` lists against the held-out items.

    Under ``torchrun`` the users are split across the ranks (every rank must call this) and
    each rank runs exactly the beam-search batches one process would — ``recommend_topk``
    batches users sorted by history length, so the split follows that order — hence the
    metrics are identical to a single-process run; without a process group it is the plain call.
    """
    ks = list(ks or cfg.ks)
    top_k = max(ks)
    if cfg.beam_width < top_k:
        raise ValueError(f"eval.beam_width {cfg.beam_width} must be at least max(ks) = {top_k}")
    histories = examples.histories
    targets = np.asarray(examples.targets)
    if len(targets) == 0:
        return ranking_metrics(np.zeros((0, top_k), dtype=np.int64), targets, ks)
    _, lengths = pad_histories(histories, model.config.max_history)
    order = np.argsort(lengths, kind="stable")  # recommend_topk's batching order

    def topk_of(indices: np.ndarray) -> np.ndarray:
        items, _ = recommend_topk(
            model,
            [histories[int(i)] for i in indices],
            tokenizer.codes,
            tokenizer.trie,
            top_k=top_k,
            beam_width=cfg.beam_width,
            batch_size=cfg.batch_size,
            exclude_history=cfg.exclude_history,
            progress=progress and is_main_process(),
        )
        return items

    topk = sharded_topk(topk_of, len(targets), cfg.batch_size, order)
    return ranking_metrics(topk, targets, ks)


def sample_examples(examples: EvalExamples, count: int | None, seed: int) -> EvalExamples:
    """A fixed random subset of ``count`` users (all when ``count`` is None or larger)."""
    total = len(examples.targets)
    if count is None or count >= total:
        return examples
    rows = np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
    return EvalExamples(
        user_idx=np.asarray(examples.user_idx)[rows],
        histories=[examples.histories[i] for i in rows],
        targets=np.asarray(examples.targets)[rows],
    )


@dataclass
class GeneratorTrainOutput:
    """What :func:`train_generator` returns."""

    model: OneRecGenerator
    result: TrainResult
    metrics: dict[str, dict[str, float]]  # {"valid": ..., "test": ...}
    expert_load: list[list[float]]  # [moe_layers][N]; empty for a dense decoder


def train_generator(
    cfg: GeneratorRunConfig, data: LoadedData, tokenizer: SemanticTokenizer, out_dir: Path | None
) -> GeneratorTrainOutput:
    """Train on ``data``; the best model, its valid/test metrics and its expert load."""
    if tokenizer.num_items != data.num_items:
        raise ValueError(
            f"the tokenizer covers {tokenizer.num_items} items, the data set has {data.num_items}"
        )
    train_cfg = cfg.train.model_copy(update={"out_dir": str(out_dir) if out_dir else None})
    seed_everything(train_cfg.seed)
    model_cfg = build_generator_config(
        cfg.model, tokenizer.codebook_sizes, cfg.objective.session_items, cfg.data.max_history
    )
    model = OneRecGenerator(model_cfg)
    if cfg.tokenizer.init_code_embeddings:
        model.init_code_embeddings(tokenizer.centroids)
    examples = sliding_session_examples(
        data.split.train_sequences,
        max_history=model_cfg.max_history,
        session_items=cfg.objective.session_items,
        min_history=cfg.objective.min_history,
    )
    batches = GeneratorBatches(examples, tokenizer.codes, train_cfg.batch_size, seed=train_cfg.seed)
    weight = cfg.objective.aux_loss_weight

    def loss_fn(net: nn.Module, batch: dict[str, torch.Tensor]) -> LossOutput:
        assert isinstance(net, OneRecGenerator)
        out = generator_loss(net, batch, weight)
        # The CE is a mean over target tokens: weighting each rank by its count makes the
        # data-parallel loss the single-process one. The MoE aux loss (global expert fractions,
        # rank-mean router probabilities; see moe.data_parallel_expert_counts) is a mean over
        # routed tokens, which equal the target tokens for m = 1 (exact) and nearly for m > 1.
        return LossOutput(out.loss, out.metrics, weight=out.metrics["target_tokens"])

    ks = sorted(set(cfg.eval.ks) | {10})  # ndcg@10 drives early stopping
    valid_sample = sample_examples(data.split.valid, cfg.eval.valid_users, train_cfg.seed)
    trainer = Trainer(
        model,
        loss_fn,
        batches.for_epoch,
        train_cfg,
        evaluate_fn=lambda m: evaluate_generator(m, valid_sample, tokenizer, cfg.eval, ks),  # type: ignore[arg-type]
    )
    result = trainer.fit()  # best weights restored
    model.eval()
    metrics = {
        "valid": evaluate_generator(model, data.split.valid, tokenizer, cfg.eval),
        "test": evaluate_generator(model, data.split.test, tokenizer, cfg.eval),
    }
    return GeneratorTrainOutput(model, result, metrics, expert_load(model, batches))


@torch.no_grad()
def expert_load(
    model: OneRecGenerator, batches: GeneratorBatches, max_batches: int = 20
) -> list[list[float]]:
    """Fraction of routed assignments per expert ``[moe_layers][N]`` over some training batches."""
    if model.config.ffn != "moe":
        return []
    model.eval()
    device = next(model.parameters()).device
    total: torch.Tensor | None = None
    for number, batch in enumerate(batches.for_epoch(0)):
        if number >= max_batches:
            break
        decoder_input, _, input_mask = session_decoder_sequences(
            batch["session_codes"], batch["session_mask"], model.code_offsets.cpu()
        )
        out = model(
            batch["history_codes"].to(device),
            batch["history_mask"].to(device),
            decoder_input.to(device),
            None,
            input_mask.to(device),
        )
        assert out.expert_load is not None
        load = out.expert_load * float(input_mask.sum())  # weight batches by routed tokens
        total = load if total is None else total + load
    if total is None:
        return []
    return (total / total.sum(dim=1, keepdim=True)).cpu().tolist()


def run_generator_task(config: dict[str, Any], run_dir: Path) -> MetricsReport:
    """``onerec train`` for ``task = "generator"``: tokenizer, train, save model dir, metrics."""
    cfg = build_config(GeneratorRunConfig, config, source="generator config")
    started = time.perf_counter()
    # Under torchrun every rank loads the data and fits the same (seeded) tokenizer; rank 0 goes
    # first so that caches (embeddings, prepared data) are written once and then only read.
    with main_process_first():
        data = load_split(cfg.data)
        tokenizer = prepare_tokenizer(cfg.tokenizer, cfg.data, data.split.train_sequences)
    if is_main_process():  # rank 0 alone writes the run directory
        write_run_config(
            run_dir,
            {
                **cfg.model_dump(),
                "dataset_fingerprint": data_fingerprint(data.dataset) if data.dataset else {},
            },
        )
    trained = train_generator(cfg, data, tokenizer, run_dir)
    model, result = trained.model, trained.result
    item_ids = None
    if data.dataset is not None:
        item_ids = data.dataset.items.sort("item_idx")["item_id"].cast(str).to_list()
    if is_main_process():
        save_generator(run_dir / MODEL_DIR, model, tokenizer, item_ids)
    meta = {
        "task": "generator",
        "dataset": data.name,
        "generator": model.config.model_dump(),
        "session_items": cfg.objective.session_items,
        "beam_width": cfg.eval.beam_width,
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
        "tokenizer": {
            "codebook_sizes": tokenizer.codebook_sizes,
            "method": tokenizer.config.method,
        },
    }
    meta["expert_load"] = [[round(x, 4) for x in layer] for layer in trained.expert_load]
    report = MetricsReport(trained.metrics, meta)
    if is_main_process():
        report.save(run_dir / METRICS_FILE)
    barrier()  # the run directory is complete before any rank returns
    return report


def evaluate_generator_run(
    run_dir: Path, resolved: dict[str, Any], splits: Sequence[str], ks: Sequence[int]
) -> MetricsReport:
    """Re-load ``run_dir/model`` (safetensors + JSON + tokenizer) and evaluate on ``splits``."""
    cfg, data = load_run_for_evaluation(run_dir, resolved, GeneratorRunConfig)
    loaded = load_generator(run_dir / MODEL_DIR, resolve_device(cfg.train.device))
    examples = {"valid": data.split.valid, "test": data.split.test}
    return MetricsReport(
        {
            split: evaluate_generator(loaded.model, examples[split], loaded.tokenizer, cfg.eval, ks)
            for split in splits
        },
        {"task": "generator", "dataset": data.name, "beam_width": cfg.eval.beam_width},
    )
