"""``onerec train-retrieval`` and ``onerec retrieve`` through typer's CliRunner."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from onerec.cli import app
from onerec.errors import OnerecError

runner = CliRunner()

CONFIG = """
out_dir = "{out}"
num_threads = 1
[data]
dataset = "{data}"
condition_target = "play_time_ms"
condition_levels = 4
[model]
condition = "nn"
embed_dim = 16
hidden_dim = 32
[loss]
num_sampled_negatives = 16
[train]
epochs = 2
batch_size = 128
progress = false
[index]
kind = "hnsw"
[eval]
level_quantiles = [0.2, 0.8]
"""


def test_train_then_retrieve(tmp_path: Path, make_synthetic: Callable[..., Any]) -> None:
    data_dir = make_synthetic(num_users=60).save(tmp_path / "data")
    config = tmp_path / "crm.toml"
    config.write_text(CONFIG.format(out=tmp_path / "run", data=data_dir))
    result = runner.invoke(app, ["train-retrieval", str(config), "train.epochs=1"])
    assert result.exit_code == 0, result.output
    assert "recall@50" in result.output and "ANN recall@100" in result.output
    model = tmp_path / "run" / "model"
    assert (model / "item_index.faiss").is_file()

    result = runner.invoke(
        app,
        [
            "retrieve",
            "--model",
            str(model),
            "--user",
            "u3",
            "--strategy",
            "tdm",
            "--requests",
            "2",
            "-k",
            "7",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)
    assert len(answers) == 2 and all(len(a["item_ids"]) == 7 for a in answers)
    assert answers[0]["condition_position"] != answers[1]["condition_position"]  # tdm alternates

    result = runner.invoke(
        app, ["retrieve", "--model", str(model), "--user", "u3", "--strategy", "mix", "-k", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "strategy mix" in result.output and "marginalised" in result.output

    result = runner.invoke(
        app, ["retrieve", "--model", str(model), "--user", "u3", "--condition", "30000", "-k", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "play_time_ms" in result.output and "rank" in result.output

    result = runner.invoke(
        app, ["eval-retrieval", "--model", str(model), "--out", str(tmp_path / "t.json")]
    )
    assert result.exit_code == 0, result.output
    tables = json.loads((tmp_path / "t.json").read_text())
    saved = json.loads((model / "summary.json").read_text())["control"]
    assert tables["test"][0]["recall@50"] == saved["test"][0]["recall@50"]  # same users, same model

    both = runner.invoke(
        app,
        [
            "retrieve",
            "--model",
            str(model),
            "--user",
            "u3",
            "--condition",
            "1",
            "--strategy",
            "max",
        ],
    )
    assert isinstance(both.exception, OnerecError) and "exactly one" in str(both.exception)
    unknown = runner.invoke(
        app, ["retrieve", "--model", str(model), "--user", "zz", "--strategy", "max"]
    )
    assert isinstance(unknown.exception, OnerecError) and "unknown user" in str(unknown.exception)
