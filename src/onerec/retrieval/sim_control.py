"""Control with ground truth: on the simulator, does a higher condition retrieve items with a
higher *true* expected watch time?

Procedure (``run_sim_control``): build a :class:`onerec.sim.UserSimulator` world, log its
users' sessions under the simulator's logging policy, train the CRM on those logs with play time
as the condition (the usual temporal split), then for each of ``num_levels`` condition levels
(training quantiles evenly spaced in ``[0.05, 0.95]``) retrieve the top ``k`` items for every
evaluated user through the ANN index, excluding what the user already saw, and average the
simulator's exact expected play time of each retrieved item shown on its own (position 0, no
session effects). Control holds when that mean rises with the level: we report the Spearman
correlation between level and true mean watch time, and whether it is strictly monotone. The
expected click probability of the same items is reported beside it, to show whether a high
condition buys watch time with relevance or by drifting to long-but-irrelevant items.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch
from pydantic import Field

from onerec.config import StrictModel
from onerec.data.prepared import PreparedDataset
from onerec.data.schema import SCHEMA_VERSION
from onerec.retrieval.eval_control import spearman, user_vectors_for
from onerec.retrieval.train import CRMTrainConfig, RetrievalRun, train_retrieval
from onerec.sim.config import SimConfig
from onerec.sim.logs import logging_policy_log_probs, simulate_logs
from onerec.sim.world import UserSimulator


class SimControlConfig(StrictModel):
    """The world, the CRM run, and the control probe."""

    sim: SimConfig = Field(default_factory=lambda: SimConfig.model_validate({}))
    crm: CRMTrainConfig = Field(default_factory=CRMTrainConfig)
    num_levels: int = Field(default=10, ge=2, description="condition levels probed")
    k: int = Field(default=50, ge=1)
    eval_users: int = Field(default=1000, ge=1, description="users probed (the first N by index)")
    oracle_users: int = Field(
        default=0, ge=0, description="also compute the Bayes-oracle curves on this many users"
    )


def simulated_dataset(simulator: UserSimulator, seed: int | None = None) -> PreparedDataset:
    """Log the simulator's users and wrap the log as an in-memory prepared data set."""
    logs = simulate_logs(simulator, seed=seed)
    interactions = logs.select(
        pl.col("user_id").cast(pl.Int32).alias("user_idx"),
        pl.col("item_id").cast(pl.Int32).alias("item_idx"),
        pl.col("timestamp").cast(pl.Int64),
        pl.col("play_time_ms").cast(pl.Float64),
        pl.col("duration_ms").cast(pl.Float64),
        pl.col("click").cast(pl.Int8),
        pl.col("like").cast(pl.Int8),
        pl.col("follow").cast(pl.Int8),
        pl.col("long_view").cast(pl.Int8),
    )
    items = pl.DataFrame(
        {
            "item_idx": np.arange(simulator.num_items, dtype=np.int32),
            "item_id": [str(i) for i in range(simulator.num_items)],
            "duration_ms": np.rint(simulator.item_duration_ms).astype(np.int64),
        }
    )
    users = pl.DataFrame(
        {
            "user_idx": np.arange(simulator.num_users, dtype=np.int32),
            "user_id": [str(u) for u in range(simulator.num_users)],
        }
    )
    manifest = {
        "name": "sim",
        "schema_version": SCHEMA_VERSION,
        "sim_config": simulator.config.model_dump(),
    }
    return PreparedDataset(interactions, items, users, manifest, "sim")


def true_item_feedback(
    simulator: UserSimulator, users: np.ndarray, items: np.ndarray
) -> dict[str, np.ndarray]:
    """Exact expected feedback of each ``items[u, j]`` shown alone to ``users[u]`` → ``[U, k]``."""
    flat_users = np.repeat(users, items.shape[1])
    per_item = simulator.expected_item_feedback(flat_users, items.reshape(-1, 1))
    return {name: values.reshape(items.shape) for name, values in per_item.items()}


@torch.no_grad()
def probe_levels(
    run: RetrievalRun, simulator: UserSimulator, num_levels: int, k: int, eval_users: int
) -> dict[str, Any]:
    """True mean watch time (and click) of the top-``k`` at each condition level and strategy."""
    from onerec.retrieval.artifact import serving_user_state

    data, model = run.data, run.model
    inter = data.interactions
    user = inter["user_idx"].to_numpy().astype(np.int64)
    item = inter["item_idx"].to_numpy().astype(np.int64)
    history, seen_items, offsets, cmax, cmean = serving_user_state(
        user, item, data.raw_condition, data.normalizer, data.dataset.num_users, model.config
    )
    users = np.arange(min(eval_users, data.dataset.num_users))

    def retrieve(positions: np.ndarray | None) -> np.ndarray:
        vecs = user_vectors_for(model, history[users], positions, users).cpu().numpy()
        top = np.zeros((len(users), k), dtype=np.int64)
        for row, u in enumerate(users):
            top[row] = run.index.search_excluding(
                vecs[row], k, seen_items[offsets[u] : offsets[u + 1]]
            )[1]
        return top

    def measure(top: np.ndarray) -> dict[str, float]:
        truth = true_item_feedback(simulator, users, top)
        return {
            "true_watch_s": float(truth["play_time_ms"].mean() / 1000.0),
            "true_click": float(truth["click"].mean()),
        }

    if model.config.condition == "none":
        return {"levels": [], "none": measure(retrieve(None))}
    quantiles = np.linspace(0.05, 0.95, num_levels)
    levels = []
    for q in quantiles:
        value = float(data.normalizer.value_at_quantile([q])[0])
        position = float(data.normalizer.encode([value])[0])
        top = retrieve(np.full(len(users), position, dtype=np.float32))
        levels.append(
            {"quantile": float(q), "condition_ms": value, "position": position, **measure(top)}
        )
    watch = [lv["true_watch_s"] for lv in levels]
    result: dict[str, Any] = {
        "levels": levels,
        "spearman": spearman([lv["quantile"] for lv in levels], watch),
        "strictly_increasing": bool(np.all(np.diff(watch) > 0)),
        "max": measure(retrieve(data.normalizer.snap(np.nan_to_num(cmax[users], nan=0.0)))),
        "mean": measure(retrieve(data.normalizer.snap(np.nan_to_num(cmean[users], nan=0.0)))),
    }
    return result


def oracle_curve(
    simulator: UserSimulator, users: np.ndarray, levels_ms: np.ndarray, k: int, engaged_only: bool
) -> list[float]:
    """True mean watch time (s) of the Bayes-optimal top-``k`` at each logged play time.

    The oracle knows the world: it ranks items by ``log P_log(i | u) + log p(play = c | u, i)``
    (the logging policy times the play-time likelihood; with ``engaged_only`` the likelihood of
    an engaged view only, the model behind ``positive_column = "click"``). The likelihood
    mirrors :class:`onerec.sim.UserSimulator`'s watch model (log-normal watch ratio when
    engaged, log-normal skip play otherwise; caps ignored). It is the best any retriever
    trained on these logs could do, so its curve says what control is attainable.
    """
    cfg = simulator.config
    all_items = np.broadcast_to(np.arange(simulator.num_items), (len(users), simulator.num_items))
    aff = simulator.affinity(users, all_items)  # [U, I]
    click = 1.0 / (1.0 + np.exp(-(cfg.click_bias + cfg.click_affinity * aff)))
    duration = simulator.item_duration_ms[all_items]
    z_dur = (np.log(duration) - cfg.duration_log_mean) / cfg.duration_log_std
    ratio_mean = (
        cfg.engaged_log_ratio_bias
        + cfg.engaged_log_ratio_affinity * aff
        + cfg.engaged_log_ratio_duration_slope * z_dur
    )
    truth = true_item_feedback(simulator, users, all_items)["play_time_ms"]  # [U, I]
    log_policy = logging_policy_log_probs(simulator, users, cfg.logging)  # [U, I]
    curve = []
    for c in levels_ms:
        engaged = (
            click * _lognormal_pdf(c / duration, ratio_mean, cfg.engaged_log_ratio_std) / duration
        )
        skipped = (1 - click) * _lognormal_pdf(c, cfg.skip_log_play_mean, cfg.skip_log_play_std)
        likelihood = engaged if engaged_only else engaged + skipped * (c < duration)
        top = np.argsort(-(log_policy + np.log(likelihood + 1e-300)), axis=1)[:, :k]
        curve.append(float(np.take_along_axis(truth, top, axis=1).mean() / 1000.0))
    return curve


def _lognormal_pdf(x: np.ndarray | float, mu: np.ndarray | float, sigma: float) -> np.ndarray:
    log_x = np.log(x)
    return np.exp(-0.5 * ((log_x - mu) / sigma) ** 2) / (sigma * x * np.sqrt(2 * np.pi))


def run_sim_control(cfg: SimControlConfig, save: bool = True) -> dict[str, Any]:
    """Simulate, train, probe; returns the JSON-ready result (also the run's summary)."""
    simulator = UserSimulator(cfg.sim)
    dataset = simulated_dataset(simulator)
    crm = cfg.crm.model_copy(update={"data": cfg.crm.data.model_copy(update={"dataset": "sim"})})
    run = train_retrieval(crm, dataset=dataset, save=save)
    probe = probe_levels(run, simulator, cfg.num_levels, cfg.k, cfg.eval_users)
    if cfg.oracle_users:
        users = np.arange(min(cfg.oracle_users, simulator.num_users))
        all_plays = dataset.interactions["play_time_ms"].to_numpy()
        engaged_plays = dataset.interactions.filter(pl.col("click") > 0)["play_time_ms"].to_numpy()
        quantiles = np.linspace(0.05, 0.95, cfg.num_levels)
        probe["oracle"] = {
            "engaged_only": oracle_curve(
                simulator, users, np.quantile(engaged_plays, quantiles), cfg.k, True
            ),
            "all_impressions": oracle_curve(
                simulator, users, np.quantile(all_plays, quantiles), cfg.k, False
            ),
            "quantiles": quantiles.tolist(),
        }
    return {
        "condition": crm.model.condition,
        "condition_target": crm.data.condition_target,
        "k": cfg.k,
        "probe": probe,
        "test_recall": {
            row["strategy"] + ("" if row["strategy"] != "fixed" else " " + row["condition"]): {
                key: row[key] for key in row if key.startswith("recall@")
            }
            for row in run.summary["control"]["test"]
        },
        "train_seconds": run.summary["train_seconds"],
    }
