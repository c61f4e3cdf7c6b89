"""Most-popular baseline: rank every item by its number of training interactions.

Counts come from the leave-one-out training sequences only (validation and test targets are
never counted). Ties are broken by lower ``item_idx`` so rankings are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

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
from onerec.config import StrictModel, build_config
from onerec.eval import MetricsReport, evaluate_scorer
from onerec.training import load_state_into, read_model_config, save_model_dir


class PopularConfig(StrictModel):
    """``[model]`` of the most-popular baseline (only the catalogue size)."""

    num_items: int | None = None


class MostPopular(nn.Module):
    """Scores every item by its training count (a buffer, so it saves as safetensors)."""

    def __init__(self, num_items: int) -> None:
        super().__init__()
        self.num_items = num_items
        self.counts: torch.Tensor
        self.register_buffer("counts", torch.zeros(num_items, dtype=torch.float64))

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray], num_items: int) -> MostPopular:
        """Count item occurrences over ``sequences``."""
        model = cls(num_items)
        parts = [np.asarray(s, dtype=np.int64) for s in sequences]
        items = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        counts = np.bincount(items, minlength=num_items).astype(np.float64)
        model.counts = torch.from_numpy(counts)
        return model

    def ranking_scores(self) -> torch.Tensor:
        """``[num_items]``: counts with a tie-break below 1 favouring lower item_idx."""
        tie_break = torch.arange(self.num_items, dtype=torch.float64) / (self.num_items + 1)
        return (self.counts - tie_break).float()

    def score_histories(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """``[B, num_items]``: the same popularity scores for every history."""
        return self.ranking_scores().expand(len(histories), -1)


class PopularRunConfig(StrictModel):
    """A ``task = "popular"`` config file."""

    task: str = "popular"
    data: DataSection
    model: PopularConfig = PopularConfig()
    eval: EvalSection = EvalSection()


def _evaluate(
    model: MostPopular, data: LoadedData, cfg: EvalSection, splits: Sequence[str]
) -> dict[str, dict[str, float]]:
    examples = {"valid": data.split.valid, "test": data.split.test}
    return {
        split: evaluate_scorer(
            model.score_histories, examples[split], cfg.ks, cfg.batch_size, cfg.exclude_history
        )
        for split in splits
    }


def run_popular(config: dict[str, Any], run_dir: Path) -> MetricsReport:
    """Fit most-popular on the training split, evaluate valid + test, write the run dir."""
    cfg = build_config(PopularRunConfig, config, source="popular config")
    started = time.perf_counter()
    data = load_split(cfg.data)
    model = MostPopular.fit(data.split.train_sequences, data.num_items)
    cfg.model.num_items = data.num_items
    resolved = {
        **cfg.model_dump(),
        "dataset_fingerprint": data_fingerprint(data.dataset) if data.dataset else {},
    }
    write_run_config(run_dir, resolved)
    save_model_dir(run_dir / MODEL_DIR, model, {"kind": "popular", **cfg.model.model_dump()})
    splits = _evaluate(model, data, cfg.eval, ("valid", "test"))
    meta = {
        "task": "popular",
        "dataset": data.name,
        "seconds": time.perf_counter() - started,
    }
    report = MetricsReport(splits, meta)
    report.save(run_dir / METRICS_FILE)
    return report


def evaluate_popular(
    run_dir: Path, resolved: dict[str, Any], splits: Sequence[str], ks: Sequence[int]
) -> MetricsReport:
    """Re-load a saved most-popular model and evaluate it."""
    cfg, data = load_run_for_evaluation(run_dir, resolved, PopularRunConfig)
    cfg.eval.ks = list(ks)
    model_cfg = read_model_config(run_dir / MODEL_DIR)
    model = MostPopular(int(model_cfg["num_items"]))
    load_state_into(model, run_dir / MODEL_DIR)
    return MetricsReport(_evaluate(model, data, cfg.eval, splits), {"task": "popular"})
