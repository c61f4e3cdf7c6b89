"""A random-weight service bundle, for service tests and latency benchmarks.

The models are real (:class:`OneRecGenerator` of a named size, :class:`CRMModel` with a faiss
index, built through their public constructors and save functions) but untrained, with random
unique semantic IDs: their answers mean nothing, but every request costs what it costs with a
trained model of the same size, and every code path of the service runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from onerec.data.prepared import PreparedDataset
from onerec.model import GeneratorConfig, OneRecGenerator
from onerec.model.synthetic import random_catalogue
from onerec.retrieval.artifact import save_retrieval_model
from onerec.retrieval.index import IndexConfig, ItemIndex
from onerec.retrieval.model import TwoTowerConfig
from onerec.retrieval.train import (
    CRMTrainConfig,
    RetrievalDataConfig,
    build_model,
    prepare_retrieval_data,
)
from onerec.serve.bundle import SemanticIds, build_bundle
from onerec.training import save_model_dir

DEFAULT_CODEBOOK_SIZES = [32, 32, 32, 8]  # three k-means levels plus a disambiguation level


def random_generator_dir(
    out_dir: Path,
    num_items: int,
    size: str = "small",
    codebook_sizes: list[int] | None = None,
    seed: int = 0,
    **overrides: object,
) -> SemanticIds:
    """Save an untrained generator to ``out_dir``; return the random semantic IDs it reads."""
    sizes = list(codebook_sizes or DEFAULT_CODEBOOK_SIZES)
    codes, _ = random_catalogue(num_items, sizes, seed=seed)
    torch.manual_seed(seed)
    config = GeneratorConfig.named(size, sizes, **overrides)  # type: ignore[arg-type]
    save_model_dir(out_dir, OneRecGenerator(config), config.model_dump())
    return SemanticIds(codes=codes, codebook_sizes=sizes)


def random_retrieval_dir(
    out_dir: Path,
    dataset: PreparedDataset,
    condition_target: str = "play_time_ms",
    condition: str = "nn",
    embed_dim: int = 32,
    max_history: int = 20,
    seed: int = 0,
) -> Path:
    """Save an untrained CRM (exact flat index) for ``dataset`` to ``out_dir``."""
    torch.manual_seed(seed)
    cfg = CRMTrainConfig(
        data=RetrievalDataConfig(condition_target=condition_target, condition_levels=5),
        model=TwoTowerConfig(
            embed_dim=embed_dim,
            hidden_dim=2 * embed_dim,
            max_history=max_history,
            condition=condition,  # type: ignore[arg-type]
        ),
        index=IndexConfig(kind="flat"),
    )
    data = prepare_retrieval_data(dataset, cfg.data, cfg.model.max_history)
    model = build_model(cfg, data).eval()
    with torch.no_grad():
        vectors = model.all_item_vectors().cpu().numpy()  # [num_items, d]
    index = ItemIndex.build(np.ascontiguousarray(vectors, dtype=np.float32), cfg.index)
    return save_retrieval_model(out_dir, model, cfg, data, index, {"untrained": True})


def build_smoke_bundle(
    out_dir: str | Path,
    dataset: PreparedDataset,
    generator_size: str = "small",
    codebook_sizes: list[int] | None = None,
    with_generator: bool = True,
    with_retrieval: bool = True,
    seed: int = 0,
    **generator_overrides: object,
) -> Path:
    """A bundle of untrained models over ``dataset`` (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="onerec-smoke-") as scratch:
        work = Path(scratch)
        generator_dir = retrieval_dir = None
        ids = None
        if with_generator:
            generator_dir = work / "generator"
            ids = random_generator_dir(
                generator_dir,
                dataset.num_items,
                generator_size,
                codebook_sizes,
                seed,
                **generator_overrides,
            )
        if with_retrieval:
            retrieval_dir = random_retrieval_dir(work / "retrieval", dataset, seed=seed)
        return build_bundle(
            out_dir,
            dataset,
            generator_dir=generator_dir,
            semantic_ids=ids,
            retrieval_dir=retrieval_dir,
            name=f"{dataset.name}-untrained-{generator_size if with_generator else 'crm'}",
        )
