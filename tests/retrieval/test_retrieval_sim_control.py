"""Ground-truth control experiment on a tiny simulated world (structure, oracle, truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from onerec.config import apply_overrides, build_config
from onerec.retrieval.eval_control import spearman
from onerec.retrieval.sim_control import (
    SimControlConfig,
    oracle_curve,
    run_sim_control,
    true_item_feedback,
)
from onerec.sim.config import SimConfig
from onerec.sim.world import UserSimulator

TINY_WORLD = ["sim.num_users=80", "sim.num_items=150", "sim.logging.sessions_per_user=6"]


def test_true_item_feedback_is_per_item_and_matches_the_simulator() -> None:
    sim = UserSimulator(SimConfig(num_users=5, num_items=20))
    items = np.array([[0, 3, 7], [1, 2, 3]])
    truth = true_item_feedback(sim, np.array([0, 4]), items)
    assert truth["play_time_ms"].shape == (2, 3)
    alone = sim.expected_item_feedback(np.array([4]), np.array([[2]]))["play_time_ms"][0, 0]
    assert truth["play_time_ms"][1, 1] == alone


def test_oracle_is_monotone_for_engaged_views() -> None:
    sim = UserSimulator(SimConfig(num_users=40, num_items=300))
    levels = np.geomspace(3_000, 200_000, 8)
    curve = oracle_curve(sim, np.arange(40), levels, k=20, engaged_only=True)
    assert spearman(levels.tolist(), curve) > 0.9


def test_run_sim_control_end_to_end(tmp_path: Path) -> None:
    overrides = [
        *TINY_WORLD,
        f"crm.out_dir={tmp_path}",
        "crm.num_threads=1",
        "crm.data.positive_column=click",
        "crm.data.condition_levels=4",
        "crm.model.embed_dim=16",
        "crm.model.hidden_dim=32",
        "crm.loss.num_sampled_negatives=16",
        "crm.train.epochs=2",
        "crm.train.batch_size=64",
        "crm.train.progress=false",
        "crm.eval.level_quantiles=[0.5]",
        "crm.index.kind=flat",
        "num_levels=4",
        "k=10",
        "eval_users=30",
        "oracle_users=20",
    ]
    cfg = build_config(SimControlConfig, apply_overrides({}, overrides))
    result = run_sim_control(cfg, save=False)
    probe = result["probe"]
    assert len(probe["levels"]) == 4
    assert [lv["position"] for lv in probe["levels"]] == sorted(
        lv["position"] for lv in probe["levels"]
    )
    assert all(lv["true_watch_s"] > 0 and 0 < lv["true_click"] < 1 for lv in probe["levels"])
    assert -1.0 <= probe["spearman"] <= 1.0 and "max" in probe and "mean" in probe
    assert len(probe["oracle"]["engaged_only"]) == 4 == len(probe["oracle"]["all_impressions"])
