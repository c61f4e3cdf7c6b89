"""A tiny data set and bundles of small untrained real models for the service tests.

The models are real (OneRecGenerator, CRMModel + faiss index) with random weights, built through
the public save functions by :mod:`onerec.serve.smoke`; nothing of the service is mocked.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from onerec.data.prepared import PreparedDataset
from onerec.serve.smoke import build_smoke_bundle

NUM_USERS, NUM_ITEMS, PER_USER = 30, 50, 12
CODEBOOK_SIZES = [4, 4, 4]
GENERATOR_OVERRIDES: dict[str, Any] = {"max_history": 8, "max_session_items": 5, "dropout": 0.0}


def make_dataset(seed: int = 0) -> PreparedDataset:
    """30 users x 12 interactions over 50 items, with play time, and assorted item columns."""
    rng = np.random.default_rng(seed)
    rows = NUM_USERS * PER_USER
    interactions = pl.DataFrame(
        {
            "user_idx": np.repeat(np.arange(NUM_USERS), PER_USER).astype(np.int32),
            "item_idx": rng.integers(0, NUM_ITEMS, rows).astype(np.int32),
            "timestamp": (np.tile(np.arange(PER_USER), NUM_USERS) * 1000 + 1_000_000).astype(
                np.int64
            ),
            "play_time_ms": rng.integers(1_000, 60_000, rows).astype(np.int64),
            "duration_ms": rng.integers(5_000, 60_000, rows).astype(np.int64),
        }
    )
    items = pl.DataFrame(
        {
            "item_idx": np.arange(NUM_ITEMS, dtype=np.int32),
            "item_id": [f"v{i}" for i in range(NUM_ITEMS)],
            "text": [f"video number {i}" for i in range(NUM_ITEMS)],
            "duration_ms": rng.integers(5_000, 60_000, NUM_ITEMS).astype(np.int64),
            "quality": [float("nan") if i % 7 == 0 else i / 10 for i in range(NUM_ITEMS)],
            "tags": [[f"t{i % 3}", f"t{i % 5}"] for i in range(NUM_ITEMS)],
            "upload_date": [dt.date(2022, 4, 1 + i % 28) for i in range(NUM_ITEMS)],
        }
    )
    users = pl.DataFrame(
        {
            "user_idx": np.arange(NUM_USERS, dtype=np.int32),
            "user_id": [f"u{u}" for u in range(NUM_USERS)],
        }
    )
    return PreparedDataset(interactions, items, users, {"name": "serve-tiny"}, "serve-tiny")


def make_bundle(out: Path, dataset: PreparedDataset, **parts: bool) -> Path:
    return build_smoke_bundle(
        out,
        dataset,
        generator_size="tiny",
        codebook_sizes=CODEBOOK_SIZES,
        **parts,
        **GENERATOR_OVERRIDES,
    )
