"""`task = "generator"` end to end on a synthetic prepared data set: tokenizer fit, training
through the Trainer, beam-search evaluation, saved model directory, re-evaluation, and
`onerec recommend` on the result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from onerec.cli.app import app
from onerec.data import prepare_dataset
from onerec.model.artifacts import load_generator
from onerec.model.recipe import (
    GeneratorRunConfig,
    evaluate_generator_run,
    load_split,
    run_generator_task,
)
from onerec.tokenizer import pipeline

NUM_ITEMS = 30
COLLAB_SEQUENCES: list[list[np.ndarray]] = []  # what the tokenizer's co-occurrence counts saw


def _cyclic_world(path: Path, users: int = 150, seed: int = 0) -> Path:
    # Every user walks the catalogue in order: item ids 100, 101, ..., 129, 100, ...
    rng = np.random.default_rng(seed)
    lines = []
    for user in range(users):
        start = int(rng.integers(0, NUM_ITEMS))
        length = int(rng.integers(5, 11))
        items = [str(100 + (start + k) % NUM_ITEMS) for k in range(length)]
        lines.append(" ".join([str(user + 1), *items]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(prepared: Path) -> dict[str, Any]:
    return {
        "task": "generator",
        "data": {"dataset": str(prepared), "max_history": 5},
        "tokenizer": {
            "fit": {"levels": 2, "codebook_size": 4, "seed": 0},
            "embeddings": {"kind": "collab", "collab_dim": 8, "collab_window": 2},
        },
        "model": {"size": "tiny", "dropout": 0.0, "expert_hidden": 32},
        "objective": {"session_items": 1},
        "train": {
            "epochs": 12,
            "batch_size": 128,
            "lr": 3e-3,
            "eval_every_epochs": 4,
            "early_stopping_patience": 5,
            "progress": False,
            "device": "cpu",
            "seed": 0,
        },
        "eval": {"ks": [1, 10], "beam_width": 10, "valid_users": 40},
    }


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("generator")
    prepared = root / "prepared"
    prepare_dataset(_cyclic_world(root / "walks.txt"), prepared)
    run_dir = root / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread beats two contended ones
    real_collab = pipeline.collaborative_embeddings

    def spy(sequences: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        COLLAB_SEQUENCES.append([np.asarray(seq).copy() for seq in sequences])
        return real_collab(sequences, *args, **kwargs)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pipeline, "collaborative_embeddings", spy)
            report = run_generator_task(_config(prepared), run_dir)
    finally:
        torch.set_num_threads(threads)
    return run_dir, report.to_dict()


def test_tokenizer_counts_co_occurrence_on_the_training_split_only(
    trained_run: tuple[Path, dict[str, Any]],
) -> None:
    # Leave-one-out: every user's last two items (validation, test targets) must not shape the
    # semantic IDs, so the collaborative vectors see each sequence without them.
    run_dir, _ = trained_run
    resolved = json.loads((run_dir / "run_config.json").read_text())
    full = load_split(
        GeneratorRunConfig.model_validate(
            {k: v for k, v in resolved.items() if k != "dataset_fingerprint"}
        ).data
    ).dataset.sequences()
    assert len(COLLAB_SEQUENCES) == 1
    seen = COLLAB_SEQUENCES[0]
    assert len(seen) == len(full)
    for got, whole in zip(seen, full, strict=True):
        np.testing.assert_array_equal(got, whole[:-2])


def test_run_learns_the_walk_and_saves_everything(trained_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, report = trained_run
    test = report["metrics"]["test"]
    assert test["recall@10"] >= 0.9, test
    assert test["recall@1"] >= 0.6, test
    for name in (
        "run_config.json",
        "metrics.json",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer/tokenizer.json",
        "model/item_ids.json",
        "metrics.jsonl",
    ):
        assert (run_dir / name).is_file(), name
    load = report["meta"]["expert_load"]
    assert len(load) == 1 and abs(sum(load[0]) - 1) < 1e-3
    loaded = load_generator(run_dir / "model")
    assert loaded.tokenizer.num_items == NUM_ITEMS
    assert loaded.model.config.max_history == 5


def test_reevaluation_reproduces_saved_metrics(trained_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, report = trained_run
    resolved = json.loads((run_dir / "run_config.json").read_text())
    again = evaluate_generator_run(run_dir, resolved, ["test"], [1, 10])
    for key in ("recall@1", "recall@10", "ndcg@10"):
        assert again.splits["test"][key] == pytest.approx(report["metrics"]["test"][key])


def test_recommend_cli_prints_the_next_item(trained_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = trained_run
    result = CliRunner().invoke(
        app,
        [
            "recommend",
            "--model",
            str(run_dir),
            "--history",
            "110 111 112",
            "--top-k",
            "3",
            "--beam",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    first_row = next(
        line
        for line in result.output.splitlines()
        if line.strip().startswith("│ 1") or " 1 " in line[:8]
    )
    assert "113" in first_row, result.output
    direct = CliRunner().invoke(
        app, ["recommend", "--model", str(run_dir / "model"), "--history", "110"]
    )
    assert direct.exit_code == 0, direct.output


def test_recommend_cli_reports_user_mistakes(trained_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, _ = trained_run
    runner = CliRunner()
    unknown = runner.invoke(app, ["recommend", "--model", str(run_dir), "--history", "999"])
    assert unknown.exit_code != 0 and "unknown item ids" in str(unknown.exception)
    both = runner.invoke(app, ["recommend", "--model", str(run_dir)])
    assert both.exit_code != 0
    too_long = runner.invoke(
        app, ["recommend", "--model", str(run_dir), "--history", "110", "--session-items", "3"]
    )
    assert too_long.exit_code != 0 and "max_session_items 1" in str(too_long.exception)


def test_config_rejects_codebook_sizes_and_unknown_fields() -> None:
    base = _config(Path("unused"))
    with pytest.raises(ValueError):
        GeneratorRunConfig.model_validate(
            {**base, "model": {"size": "tiny", "codebook_sizes": [4]}}
        )
    with pytest.raises(ValueError):
        GeneratorRunConfig.model_validate({**base, "model": {"size": "tiny", "d_modle": 8}})
    with pytest.raises(ValueError):
        GeneratorRunConfig.model_validate({**base, "model": {"size": "huge"}})
