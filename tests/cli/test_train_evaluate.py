"""`onerec train` / `onerec evaluate` end to end on the embedded kuairand-demo data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from onerec.cli.app import app
from onerec.errors import CheckpointError, ConfigError, OnerecError

runner = CliRunner()

SASREC_TOML = """\
# onerec train {path}  (tiny CLI test config)
task = "sasrec"

[data]
dataset = "kuairand-demo"

[model]
d_model = 8
num_heads = 1
num_layers = 1
ffn_dim = 16
max_len = 10

[train]
epochs = 1
max_steps = 2
eval_every_steps = 2
batch_size = 128
device = "cpu"
progress = false
"""


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_popular_train_then_evaluate(tmp_path: Path) -> None:
    config = tmp_path / "popular.toml"
    config.write_text('task = "popular"\n[data]\ndataset = "kuairand-demo"\n')
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "R@10" in result.output
    for name in ("run_config.json", "metrics.json", "model/config.json", "model/model.safetensors"):
        assert (run / name).is_file(), name
    trained = json.loads((run / "metrics.json").read_text())["metrics"]

    result = runner.invoke(app, ["evaluate", str(run), "--split", "both", "--ks", "5,10"])
    assert result.exit_code == 0, result.output
    assert "N@5" in result.output and "MRR@10" in result.output
    evaluated = _last_json(result.output)["metrics"]
    assert evaluated["test"]["recall@10"] == pytest.approx(trained["test"]["recall@10"])
    assert evaluated["valid"]["ndcg@5"] == pytest.approx(trained["valid"]["ndcg@5"])

    # evaluating against data other than the training data is refused
    resolved = json.loads((run / "run_config.json").read_text())
    resolved["dataset_fingerprint"]["interactions_sha256"] = "0" * 64
    (run / "run_config.json").write_text(json.dumps(resolved))
    result = runner.invoke(app, ["evaluate", str(run)])
    assert isinstance(result.exception, CheckpointError)
    assert "interactions_sha256" in str(result.exception)


def test_sasrec_train_evaluate_and_override(tmp_path: Path) -> None:
    config = tmp_path / "sasrec.toml"
    config.write_text(SASREC_TOML)
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(config), "train.lr=3e-3", "--out", str(run), "--threads", "1"]
    )
    assert result.exit_code == 0, result.output
    resolved = json.loads((run / "run_config.json").read_text())
    assert resolved["train"]["lr"] == 3e-3 and resolved["task"] == "sasrec"
    assert (run / "checkpoints/best/model.safetensors").is_file()
    assert (run / "source_config.toml").read_text() == SASREC_TOML
    trained = json.loads((run / "metrics.json").read_text())["metrics"]["test"]

    result = runner.invoke(app, ["evaluate", str(run), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    reloaded = _last_json(result.output)["metrics"]["test"]
    for key in ("recall@5", "ndcg@5", "recall@10", "ndcg@10"):
        assert reloaded[key] == pytest.approx(trained[key], abs=1e-9), key
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["test"] == reloaded

    # eval.* settings can be overridden after training (batch size: same figures) ...
    result = runner.invoke(app, ["evaluate", str(run), "eval.batch_size=3"])
    assert result.exit_code == 0, result.output
    report = _last_json(result.output)
    assert report["meta"]["overrides"] == ["eval.batch_size=3"]
    for key in ("recall@10", "ndcg@10"):
        assert report["metrics"]["test"][key] == pytest.approx(trained[key], abs=1e-9), key
    # ... the model and the data cannot
    result = runner.invoke(app, ["evaluate", str(run), "model.d_model=4"])
    assert isinstance(result.exception, ConfigError)
    assert "only eval.* settings" in str(result.exception)


def test_user_errors_are_onerec_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('task = "nope"\n')
    result = runner.invoke(app, ["train", str(bad)])
    assert isinstance(result.exception, ConfigError) and "known tasks" in str(result.exception)

    no_task = tmp_path / "none.toml"
    no_task.write_text("[data]\ndataset = 'x'\n")
    result = runner.invoke(app, ["train", str(no_task)])
    assert isinstance(result.exception, ConfigError) and "task" in str(result.exception)

    typo = tmp_path / "typo.toml"
    typo.write_text('task = "popular"\n[data]\ndataset = "kuairand-demo"\nmax_histroy = 3\n')
    result = runner.invoke(app, ["train", str(typo), "--out", str(tmp_path / "t")])
    assert isinstance(result.exception, ConfigError) and "max_histroy" in str(result.exception)

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("x")
    result = runner.invoke(app, ["train", str(bad), "--out", str(occupied)])
    assert isinstance(result.exception, OnerecError)

    result = runner.invoke(app, ["evaluate", str(tmp_path)])
    assert isinstance(result.exception, OnerecError) and "not a run directory" in str(
        result.exception
    )


def test_help_texts() -> None:
    for verb in ("train", "evaluate"):
        result = runner.invoke(app, [verb, "--help"])
        assert result.exit_code == 0
        assert "Example" in result.output
