"""Logged interactions from the simulator: a logging policy, sampled feedback, canonical tables.

The logs look like KuaiRand's: one row per impression with ``user_id, item_id, timestamp``
(unix **milliseconds**, as KuaiRand's ``time_ms``) and the feedback columns ``play_time_ms,
duration_ms, click, like, follow, long_view``. Impressions of one logged session follow each
other by the play time plus a few seconds; sessions are at least an hour apart, so grouping a
user's impressions by a 30-minute gap recovers the logged sessions exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
from rich.progress import track

from onerec.data.prepared import PreparedDataset
from onerec.data.schema import SCHEMA_VERSION
from onerec.io import atomic_dir
from onerec.sim.config import LoggingPolicyConfig
from onerec.sim.world import UserSimulator

INTERACTION_COLUMNS = (
    "user_id",
    "item_id",
    "timestamp",
    "play_time_ms",
    "duration_ms",
    "click",
    "like",
    "follow",
    "long_view",
)
MIN_SESSION_GAP_MS = 3_600_000  # sessions start at least an hour apart
SECONDS_BETWEEN_ITEMS_MS = 3_000  # swipe time between impressions of one session


def logging_policy_log_probs(
    simulator: UserSimulator, users: np.ndarray, policy: LoggingPolicyConfig
) -> np.ndarray:
    """Log-probabilities of the logging policy over all items: ``[B, num_items]``.

    ``epsilon / I + (1 - epsilon) · softmax(temperature_inverse · affinity)`` — mostly
    personalised, with a uniform floor so every item gets exposure.
    """
    num_items = simulator.num_items
    all_items = np.broadcast_to(np.arange(num_items), (len(users), num_items))
    logits = policy.temperature_inverse * simulator.affinity(users, all_items)  # [B, I]
    logits -= logits.max(axis=1, keepdims=True)
    personal = np.exp(logits)
    personal /= personal.sum(axis=1, keepdims=True)
    return np.log(policy.epsilon / num_items + (1.0 - policy.epsilon) * personal)


def sample_sessions(
    log_probs: np.ndarray, sessions_per_row: int, session_length: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw sessions of distinct items by Gumbel-top-k: ``[B, I]`` → ``[B, sessions, length]``.

    Gumbel-top-k samples ``length`` items without replacement with the sequential
    (Plackett–Luce) probabilities of ``exp(log_probs)``.
    """
    batch, num_items = log_probs.shape
    gumbel = rng.gumbel(size=(batch, sessions_per_row, num_items))
    keys = log_probs[:, None, :] + gumbel  # [B, S, I]
    top = np.argpartition(-keys, session_length - 1, axis=2)[
        :, :, :session_length
    ]  # [B, S, m] unordered
    top_keys = np.take_along_axis(keys, top, axis=2)
    order = np.argsort(-top_keys, axis=2)
    return np.take_along_axis(top, order, axis=2)


def simulate_logs(
    simulator: UserSimulator,
    policy: LoggingPolicyConfig | None = None,
    seed: int | None = None,
    users_per_chunk: int = 256,
    show_progress: bool = False,
) -> pl.DataFrame:
    """Expose every user to ``policy.sessions_per_user`` logged sessions and sample feedback.

    Returns the interaction table in the canonical raw schema (see :data:`INTERACTION_COLUMNS`),
    sorted by (user_id, timestamp); ``user_id``/``item_id`` are the simulator's indices.
    """
    policy = policy or simulator.config.logging
    rng = np.random.default_rng(simulator.config.seed + 1 if seed is None else seed)
    durations = simulator.item_duration_ms
    frames = []
    chunks = range(0, simulator.num_users, users_per_chunk)
    for start in track(chunks, description="simulating logs") if show_progress else chunks:
        users = np.arange(start, min(start + users_per_chunk, simulator.num_users))
        sessions = sample_sessions(
            logging_policy_log_probs(simulator, users, policy),
            policy.sessions_per_user,
            policy.session_length,
            rng,
        )  # [B, S, m]
        batch, num_sessions, length = sessions.shape
        flat_users = np.repeat(users, num_sessions)  # [B*S]
        flat_sessions = sessions.reshape(batch * num_sessions, length)  # [B*S, m]
        feedback = simulator.sample_feedback(flat_users, flat_sessions, rng)
        play = np.rint(feedback["play_time_ms"]).astype(np.int64)  # [B*S, m]
        gaps = MIN_SESSION_GAP_MS + rng.exponential(
            policy.mean_gap_between_sessions_s * 1000.0, (batch, num_sessions)
        )
        session_start = policy.start_timestamp_s * 1000 + np.cumsum(gaps, axis=1).reshape(
            -1
        )  # [B*S]
        within = np.cumsum(play + SECONDS_BETWEEN_ITEMS_MS, axis=1) - (
            play + SECONDS_BETWEEN_ITEMS_MS
        )
        timestamps = (session_start[:, None] + within).astype(np.int64)  # [B*S, m]
        frames.append(
            pl.DataFrame(
                {
                    "user_id": np.repeat(flat_users, length).astype(np.int64),
                    "item_id": flat_sessions.reshape(-1).astype(np.int64),
                    "timestamp": timestamps.reshape(-1),
                    "play_time_ms": play.reshape(-1),
                    "duration_ms": np.rint(durations[flat_sessions]).astype(np.int64).reshape(-1),
                    **{
                        name: feedback[name].reshape(-1).astype(np.int8)
                        for name in ("click", "like", "follow", "long_view")
                    },
                }
            )
        )
    return pl.concat(frames).sort(["user_id", "timestamp"], maintain_order=True)


def items_table(simulator: UserSimulator) -> pl.DataFrame:
    """Item side table: ``item_id, duration_ms, tags`` (the item's tag as a string)."""
    return pl.DataFrame(
        {
            "item_id": np.arange(simulator.num_items, dtype=np.int64),
            "duration_ms": np.rint(simulator.item_duration_ms).astype(np.int64),
            "tags": [str(t) for t in simulator.item_tags],
        }
    )


def item_content_embeddings(
    simulator: UserSimulator, noise: float = 0.3, seed: int = 0
) -> np.ndarray:
    """``[I, k + T]`` stand-in "content" embeddings: noisy latent vector plus tag one-hot.

    A content model sees the item, not the user, so this is what a real pipeline would feed the
    semantic-ID tokenizer; the noise keeps it from being the exact ground truth.
    """
    rng = np.random.default_rng(seed)
    latent = simulator.item_vectors + noise * rng.standard_normal(
        simulator.item_vectors.shape
    ) / np.sqrt(simulator.config.latent_dim)
    tags = np.eye(simulator.config.num_tags)[simulator.item_tags]
    return np.concatenate([latent, tags], axis=1).astype(np.float32)


def as_prepared_dataset(
    simulator: UserSimulator, logs: pl.DataFrame, name: str = "sim"
) -> PreparedDataset:
    """Wrap simulated ``logs`` as an in-memory prepared data set with identity indices.

    ``user_idx == user_id`` and ``item_idx == item_id`` (every simulator item is in the items
    table, logged or not), so generated item indices can be scored by the simulator directly.
    Timestamps stay in milliseconds (``manifest['timestamp_unit'] == 'ms'``).
    """
    interactions = logs.select(
        pl.col("user_id").cast(pl.Int32).alias("user_idx"),
        pl.col("item_id").cast(pl.Int32).alias("item_idx"),
        pl.col("timestamp").cast(pl.Int64),
        *(pl.col(c).cast(pl.Int64) for c in ("play_time_ms", "duration_ms")),
        *(pl.col(c).cast(pl.Int8) for c in ("click", "like", "follow", "long_view")),
    ).sort(["user_idx", "timestamp"], maintain_order=True)
    items = items_table(simulator).select(
        pl.col("item_id").cast(pl.Int32).alias("item_idx"),
        pl.col("item_id").cast(pl.Utf8),
        "duration_ms",
        "tags",
    )
    users = pl.DataFrame(
        {
            "user_idx": np.arange(simulator.num_users, dtype=np.int32),
            "user_id": [str(u) for u in range(simulator.num_users)],
        }
    )
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "source": {"format": "onerec-simulator", "description": "logs of onerec.sim.UserSimulator"},
        "counts": {
            "users": users.height,
            "items": items.height,
            "interactions": interactions.height,
        },
        "feedback_columns": ["play_time_ms", "duration_ms", "click", "like", "follow", "long_view"],
        "timestamp_unit": "ms",
        "id_maps": {
            "user": "user_idx = simulator user index",
            "item": "item_idx = simulator item index",
        },
        "sim_config": simulator.config.model_dump(),
    }
    return PreparedDataset(interactions, items, users, manifest, name)


def write_simulated_dataset(
    simulator: UserSimulator, out_dir: str | Path, show_progress: bool = True
) -> pl.DataFrame:
    """Simulate logs and write them with the world that produced them.

    Layout of ``out_dir``: ``interactions.parquet`` and ``items.parquet`` (raw canonical
    tables, ready for ``onerec prepare``), ``item_embeddings.safetensors`` (key
    ``embeddings``, rows in item_id order) and ``world/`` (the simulator, for exact rewards).
    """
    from safetensors.numpy import save_file

    logs = simulate_logs(simulator, show_progress=show_progress)
    with atomic_dir(out_dir) as tmp:
        logs.write_parquet(tmp / "interactions.parquet")
        items_table(simulator).write_parquet(tmp / "items.parquet")
        save_file(
            {"embeddings": item_content_embeddings(simulator)},
            str(tmp / "item_embeddings.safetensors"),
        )
        simulator.save(tmp / "world")
    return logs
