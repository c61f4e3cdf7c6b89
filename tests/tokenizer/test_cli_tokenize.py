"""``onerec tokenize`` through typer's CliRunner on synthetic embedding files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from onerec.cli import app
from onerec.cli.app import main
from onerec.errors import ConfigError, DataValidationError
from onerec.tokenizer import SemanticTokenizer

runner = CliRunner()


def _npy(tmp_path: Path, n: int = 64, d: int = 5) -> Path:
    path = tmp_path / "emb.npy"
    np.save(path, np.random.default_rng(0).normal(size=(n, d)).astype(np.float32))
    return path


def test_compare_prints_both_and_saves(tmp_path: Path):
    out = tmp_path / "tok"
    args = [
        "tokenize",
        "--embeddings",
        str(_npy(tmp_path)),
        "--levels",
        "2",
        "--codebook-size",
        "4",
        "--compare",
        "--out",
        str(out),
        "--quiet",
        "--set",
        "tokenizer.kmeans_iters=5",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "balanced" in result.output and "plain" in result.output
    assert "collision rate" in result.output and "L2 utilisation" in result.output
    tok = SemanticTokenizer.load(out)
    assert tok.config.method == "balanced" and tok.config.kmeans_iters == 5
    assert tok.num_items == 64 and tok.codebook_sizes[:2] == [4, 4]
    diag = json.loads((out / "diagnostics.json").read_text())
    assert set(diag["methods"]) == {"balanced", "plain"}
    assert diag["methods"]["balanced"]["per_level"][0]["max_over_mean"] == 1.0  # 64 / 4 each
    assert json.loads((out / "item_ids.json").read_text())[:3] == ["0", "1", "2"]


def test_parquet_source_and_config_file(tmp_path: Path):
    rng = np.random.default_rng(1)
    pl.DataFrame(
        {"item_id": [f"sku{i}" for i in range(30)], "vec": rng.normal(size=(30, 3)).tolist()}
    ).write_parquet(tmp_path / "v.parquet")
    cfg = tmp_path / "tok.toml"
    cfg.write_text('[tokenizer]\nlevels = 1\ncodebook_size = 3\nmethod = "plain"\n')
    out = tmp_path / "tok"
    result = runner.invoke(
        app,
        [
            "tokenize",
            "--embeddings",
            str(tmp_path / "v.parquet"),
            "--config",
            str(cfg),
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert SemanticTokenizer.load(out).config.method == "plain"
    assert json.loads((out / "item_ids.json").read_text())[0] == "sku0"


def test_user_errors(tmp_path: Path):
    result = runner.invoke(
        app, ["tokenize", "--embeddings", str(_npy(tmp_path)), "--method", "fancy"]
    )
    assert isinstance(result.exception, ConfigError) and "method" in str(result.exception)
    result = runner.invoke(app, ["tokenize", "--embeddings", str(tmp_path / "missing.npy")])
    assert isinstance(result.exception, DataValidationError)


def test_main_exits_2_with_one_line(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(sys, "argv", ["onerec", "tokenize", "--embeddings", "text"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "need a data set" in err and "Traceback" not in err
