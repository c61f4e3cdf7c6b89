"""CRM test fixtures. ``make_synthetic`` builds a tiny synthetic world: topics drive who watches what, length drives how long.

Every item has a topic (one of ``num_topics``) and a length class (short = 1, long = 4). Each
user likes one topic; 80 % of their impressions come from it. Logged play time =
length × (1 if the topic matches else 0.25) × log-normal noise, so a high play-time condition
should retrieve *long items of the user's topic* and a low one short or off-topic items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import polars as pl
import pytest
import torch

from onerec.data.prepared import PreparedDataset
from onerec.data.schema import SCHEMA_VERSION


def synthetic_dataset(
    num_users: int = 160,
    num_items: int = 120,
    per_user: int = 30,
    num_topics: int = 4,
    seed: int = 0,
) -> PreparedDataset:
    """In-memory prepared data set with ``play_time_ms``, ``duration_ms`` and ``rating``."""
    rng = np.random.default_rng(seed)
    item_topic = np.arange(num_items) % num_topics
    item_long = (np.arange(num_items) // num_topics) % 2 == 1
    user_topic = rng.integers(0, num_topics, num_users)
    rows_user, rows_item, rows_ts, rows_play = [], [], [], []
    for u in range(num_users):
        on_topic = np.flatnonzero(item_topic == user_topic[u])
        picks = np.where(
            rng.random(per_user) < 0.8,
            rng.choice(on_topic, per_user),
            rng.integers(0, num_items, per_user),
        )
        match = item_topic[picks] == user_topic[u]
        play = 10_000.0 * np.where(item_long[picks], 4.0, 1.0) * np.where(match, 1.0, 0.25)
        play *= rng.lognormal(0.0, 0.3, per_user)
        rows_user.append(np.full(per_user, u))
        rows_item.append(picks)
        rows_ts.append(1_000_000 + np.sort(rng.integers(0, 10_000_000, per_user)))
        rows_play.append(play)
    play_all = np.concatenate(rows_play)
    items_all = np.concatenate(rows_item)
    interactions = pl.DataFrame(
        {
            "user_idx": np.concatenate(rows_user).astype(np.int32),
            "item_idx": items_all.astype(np.int32),
            "timestamp": np.concatenate(rows_ts).astype(np.int64),
            "play_time_ms": play_all.round().astype(np.int64),
            "duration_ms": np.where(item_long[items_all], 40_000, 10_000).astype(np.int64),
            "rating": np.clip(np.round(np.log2(play_all / 2_500.0)), 1, 5),
        }
    )
    items = pl.DataFrame(
        {
            "item_idx": np.arange(num_items, dtype=np.int32),
            "item_id": [f"v{i}" for i in range(num_items)],
            "duration_ms": np.where(item_long, 40_000, 10_000).astype(np.int64),
        }
    )
    users = pl.DataFrame(
        {
            "user_idx": np.arange(num_users, dtype=np.int32),
            "user_id": [f"u{u}" for u in range(num_users)],
            "gender": ["f" if u % 2 else "m" for u in range(num_users)],
            "age": (18 + np.arange(num_users) % 40).astype(np.int64),
        }
    )
    manifest = {"name": "synthetic", "schema_version": SCHEMA_VERSION}
    dataset = PreparedDataset(interactions, items, users, manifest, "synthetic")
    dataset.item_long = item_long  # type: ignore[attr-defined]  # ground truth for assertions
    dataset.user_topic = user_topic  # type: ignore[attr-defined]
    dataset.item_topic = item_topic  # type: ignore[attr-defined]
    return dataset


@pytest.fixture(scope="session")
def make_synthetic() -> Callable[..., PreparedDataset]:
    """The :func:`synthetic_dataset` builder (keyword arguments as there)."""
    return synthetic_dataset


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """These tests are many tiny ops: one thread beats two contended ones on a shared box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
