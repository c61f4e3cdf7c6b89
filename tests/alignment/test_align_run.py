"""``onerec align`` end to end on tiny saved models, and ``align-sim`` on a tiny world."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from onerec.alignment.align_run import AlignConfig, run_align
from onerec.alignment.sim_experiment import run_sim_alignment
from onerec.alignment.sim_setup import SimAlignConfig
from onerec.cli.app import app
from onerec.config import build_config
from onerec.errors import ConfigError
from onerec.model import GeneratorConfig, OneRecGenerator
from onerec.model.artifacts import load_generator, save_generator
from onerec.reward import RewardConfig, RewardModel, save_reward_model
from onerec.sim import LoggingPolicyConfig, SimConfig, UserSimulator, simulate_logs
from onerec.sim.logs import as_prepared_dataset, item_content_embeddings
from onerec.tokenizer import SemanticTokenizer, TokenizerConfig


def _saved_models(tmp_path, reward_items: int | None = None):
    sim = UserSimulator(
        SimConfig(
            num_users=40,
            num_items=60,
            num_tags=4,
            seed=2,
            logging=LoggingPolicyConfig(sessions_per_user=3),
        )
    )
    dataset = as_prepared_dataset(sim, simulate_logs(sim))
    dataset.save(tmp_path / "data")
    tokenizer = SemanticTokenizer.fit(
        item_content_embeddings(sim), None, TokenizerConfig(levels=2, codebook_size=4)
    )
    torch.manual_seed(0)
    generator = OneRecGenerator(
        GeneratorConfig.named("tiny", tokenizer.codebook_sizes, max_session_items=3)
    )
    save_generator(tmp_path / "gen", generator, tokenizer, [str(i) for i in range(60)])
    reward = RewardModel(
        RewardConfig(num_users=40, num_items=reward_items or 60, d_model=16, num_heads=2)
    )
    save_reward_model(tmp_path / "rm", reward)
    return generator


def _config(tmp_path, **ipa) -> AlignConfig:
    return build_config(
        AlignConfig,
        {
            "generator": str(tmp_path / "gen"),
            "reward_model": str(tmp_path / "rm"),
            "data": {"dataset": str(tmp_path / "data")},
            "session_items": 3,
            "monitor_users": 10,
            "out_dir": str(tmp_path / "aligned"),
            "ipa": {
                "iterations": 1,
                "user_fraction": 0.5,
                "num_candidates": 4,
                "beam_width": 4,
                "train": {
                    "max_steps": 3,
                    "batch_size": 8,
                    "eval_every_epochs": None,
                    "progress": False,
                },
                **ipa,
            },
        },
    )


def test_align_writes_an_aligned_generator(tmp_path) -> None:
    original = _saved_models(tmp_path)
    summary = run_align(_config(tmp_path), show=lambda _: None)
    assert summary["rounds"][0]["users"] == 20 and "rm_reward" in summary["before"]
    aligned = load_generator(tmp_path / "aligned" / "model")
    moved = any(
        not torch.equal(a, b)
        for a, b in zip(
            aligned.model.state_dict().values(), original.state_dict().values(), strict=True
        )
    )
    assert moved
    log = json.loads((tmp_path / "aligned" / "ipa_log.json").read_text())
    assert log["rounds"][0]["iteration"] == 1


def test_align_refuses_models_from_different_data(tmp_path) -> None:
    _saved_models(tmp_path, reward_items=61)
    with pytest.raises(ConfigError, match="catalogue size"):
        run_align(_config(tmp_path), show=lambda _: None)


def test_align_cli(tmp_path) -> None:
    _saved_models(tmp_path)
    cfg = _config(tmp_path)
    path = tmp_path / "align.json"
    path.write_text(json.dumps(cfg.model_dump()))
    result = CliRunner().invoke(
        app, ["align", str(path), "ipa.train.max_steps=2", "--out", str(tmp_path / "cli_out")]
    )
    assert result.exit_code == 0, result.output
    assert (
        "round 1:" in result.output and (tmp_path / "cli_out" / "model" / "config.json").is_file()
    )


def test_align_sim_runs_every_variant_on_a_tiny_world(tmp_path) -> None:
    cfg = build_config(
        SimAlignConfig,
        {
            "out_dir": str(tmp_path / "exp"),
            "sim": {
                "num_users": 120,
                "num_items": 150,
                "num_tags": 6,
                "logging": {"sessions_per_user": 6},
            },
            "tokenizer": {"levels": 2, "codebook_size": 8},
            "session_items": 3,
            "generator_train": {"epochs": 1, "batch_size": 64, "progress": False},
            "generator_valid_users": 50,
            "reward": {
                "train": {
                    "epochs": 1,
                    "progress": False,
                    "monitor": "valid_loss",
                    "monitor_mode": "min",
                }
            },
            "ipa": {
                "iterations": 1,
                "user_fraction": 0.2,
                "num_candidates": 4,
                "beam_width": 8,
                "train": {
                    "max_steps": 3,
                    "batch_size": 8,
                    "eval_every_epochs": None,
                    "progress": False,
                },
            },
            "eval_users": 40,
            "recall_users": 60,
            "r_ablation": 0.5,
        },
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = run_sim_alignment(cfg, show=lambda _: None)
    assert set(results["variants"]) == {"ipa", "ntp_only", "r_ablation", "oracle"}
    for variant in results["variants"].values():
        assert len(variant["rounds"]) == 2
        assert all(
            np.isfinite(r["true_reward"]) and 0 <= r["recall@10"] <= 1 for r in variant["rounds"]
        )
        # Round 0 is M_0 itself: no user gained or lost a Recall@10 hit against M_0.
        assert variant["rounds"][0]["recall_gained"] == variant["rounds"][0]["recall_lost"] == 0
    assert (
        results["variants"]["r_ablation"]["logs"][0]["users"]
        > results["variants"]["ipa"]["logs"][0]["users"]
    )
    assert (tmp_path / "exp" / "report.md").read_text().count("| oracle |") == 2
