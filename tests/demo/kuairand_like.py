"""A tiny KuaiRand-shaped data set (CSV files) and a demo config sized for it.

Users prefer one of four tags; an impression of an item with the user's tag is clicked (and
watched long) more often, so engagement carries a little signal. Timestamps are milliseconds,
spread over the same window for every user (the CRM's global time split needs that) with
gaps over 30 minutes (the reward model's sessions need those).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

TAGS = 4


def write_kuairand_like(
    out_dir: Path, users: int = 40, items: int = 64, per_user: int = 24, seed: int = 0
) -> tuple[Path, Path]:
    """Write ``interactions.csv`` and ``items.csv``; return their paths."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    item_tag = np.arange(items) % TAGS
    duration = rng.integers(5_000, 120_000, items)
    user_tag = rng.integers(0, TAGS, users)
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "user_id",
            "item_id",
            "timestamp",
            "click",
            "long_view",
            "like",
            "follow",
            "play_time_ms",
            "duration_ms",
        )
    }
    start = 1_650_000_000_000
    for user in range(users):
        shown = rng.choice(items, size=per_user, replace=False)
        times = np.sort(rng.integers(0, 20 * 24 * 3600 * 1000, per_user)) + start
        for item, time in zip(shown, times, strict=True):
            likes_tag = item_tag[item] == user_tag[user]
            click = rng.random() < (0.6 if likes_tag else 0.15)
            ratio = rng.uniform(0.3, 1.2) if click else rng.uniform(0.0, 0.2)
            play = int(ratio * duration[item])
            rows["user_id"].append(f"u{user}")
            rows["item_id"].append(f"v{item}")
            rows["timestamp"].append(int(time))
            rows["click"].append(int(click))
            rows["long_view"].append(int(click and play >= min(18_000, duration[item])))
            rows["like"].append(int(click and rng.random() < 0.2))
            rows["follow"].append(int(click and rng.random() < 0.05))
            rows["play_time_ms"].append(play)
            rows["duration_ms"].append(int(duration[item]))
    interactions = out_dir / "interactions.csv"
    pl.DataFrame(rows).write_csv(interactions)
    item_table = pl.DataFrame(
        {
            "item_id": [f"v{i}" for i in range(items)],
            "text": [f"tag {item_tag[i]} duration {duration[i] // 1000}s" for i in range(items)],
            "tags": [str(item_tag[i]) for i in range(items)],
            "duration_ms": duration.astype(np.int64),
            "upload_type": ["Web" if i % 2 else "LongImport" for i in range(items)],
            "video_type": ["NORMAL"] * items,
        }
    )
    item_path = out_dir / "items.csv"
    item_table.write_csv(item_path)
    return interactions, item_path


def tiny_demo_config(interactions: Path, items: Path) -> dict[str, Any]:
    """A DemoConfig mapping that runs every stage on the tiny data in seconds."""
    return {
        "threads": 1,
        "data": {"dataset": None, "interactions": str(interactions), "items": str(items)},
        "embeddings": {"kind": "collab", "collab_dim": 8},
        "tokenizer": {"fit": {"levels": 2, "codebook_size": 4, "balanced_iters": 2}},
        "generator": {
            "model": {"size": "tiny", "dropout": 0.0},
            "objective": {"session_items": 3},
            "train": {
                "epochs": 1,
                "batch_size": 64,
                "eval_every_epochs": 1,
                "log_every": 1,
                "early_stopping_patience": None,
            },
            "eval": {"beam_width": 10, "valid_users": 20},
        },
        "reward": {
            "model": {"d_model": 8, "num_heads": 2, "tower_hidden": 8},
            "train": {
                "epochs": 1,
                "batch_size": 64,
                "log_every": 1,
                "monitor": "valid_loss",
                "monitor_mode": "min",
            },
        },
        "ipa": {
            "ipa": {
                "iterations": 1,
                "user_fraction": 0.3,
                "num_candidates": 4,
                "beam_width": 4,
                "train": {
                    "max_steps": 2,
                    "batch_size": 8,
                    "eval_every_epochs": None,
                    "progress": False,
                    "monitor": "loss",
                },
            },
            "eval_users": 8,
        },
        "crm": {
            "config": {
                "data": {"condition_levels": 4},
                "model": {"embed_dim": 8, "hidden_dim": 16, "max_history": 10},
                "loss": {"num_sampled_negatives": 8},
                "train": {"epochs": 1, "batch_size": 64, "log_every": 1, "monitor": "recall@10"},
                "index": {"kind": "flat"},
                "eval": {"ks": [5, 10], "ann_queries": 10},
            }
        },
    }
