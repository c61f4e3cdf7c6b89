"""``onerec bundle`` and ``onerec serve`` argument handling (in process, through ``main``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI

from onerec.cli import main
from onerec.data import SCHEMA_VERSION
from onerec.model import GeneratorConfig, OneRecGenerator
from onerec.model.artifacts import save_generator
from onerec.serve import load_bundle
from onerec.serve.smoke import random_retrieval_dir
from onerec.tokenizer import SemanticTokenizer, TokenizerConfig

from .tiny_world import make_dataset


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["onerec", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_bundle_command_assembles_a_servable_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = make_dataset()
    dataset.manifest = {"schema_version": SCHEMA_VERSION, "name": "serve-tiny"}
    dataset.save(tmp_path / "data")
    # A generator run directory as `onerec train` leaves it: weights + config + tokenizer/.
    embeddings = np.random.default_rng(0).normal(size=(dataset.num_items, 8)).astype(np.float32)
    tokenizer = SemanticTokenizer.fit(embeddings, config=TokenizerConfig(levels=2, codebook_size=4))
    config = GeneratorConfig.named("tiny", tokenizer.codebook_sizes, max_history=8)
    item_ids = dataset.items["item_id"].to_list()
    save_generator(tmp_path / "gen", OneRecGenerator(config), tokenizer, item_ids)
    random_retrieval_dir(tmp_path / "crm", dataset, max_history=8)

    code = run_cli(
        monkeypatch, "bundle", str(tmp_path / "bundle"), "--data", str(tmp_path / "data"),
        "--generator", str(tmp_path / "gen"), "--retrieval", str(tmp_path / "crm"),
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    bundle = load_bundle(tmp_path / "bundle")
    assert bundle.semantic_codes is not None
    np.testing.assert_array_equal(bundle.semantic_codes, tokenizer.codes)
    assert bundle.generator is not None and bundle.retrieval is not None

    # A generator trained on another catalogue (its item_ids.json differs) is refused.
    save_generator(tmp_path / "gen", OneRecGenerator(config), tokenizer, item_ids[::-1])
    code = run_cli(
        monkeypatch, "bundle", str(tmp_path / "other"), "--data", str(tmp_path / "data"),
        "--generator", str(tmp_path / "gen"),
    )  # fmt: skip
    assert code == 2 and "another item list" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_serve_refuses_a_directory_that_is_not_a_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "serve", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "not a service bundle" in err and "Traceback" not in err
    assert run_cli(monkeypatch, "serve", str(tmp_path), "--workers", "2") == 2
    assert "not a service bundle" in capsys.readouterr().err


def test_serve_refuses_bad_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "serve", str(tmp_path), "--max-body-bytes", "10") == 2
    assert "max_body_bytes" in capsys.readouterr().err
    assert run_cli(monkeypatch, "serve", str(tmp_path), "--device", "tpu") == 2
    assert "unknown device" in capsys.readouterr().err


def test_serve_hands_uvicorn_a_loopback_app_or_a_worker_factory(
    bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    import onerec.serve.app as serve_app

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append((target, kw)))
    applied: list[int] = []
    monkeypatch.setattr(
        serve_app, "apply_process_settings", lambda c: applied.append(c.torch_threads)
    )
    monkeypatch.delenv(serve_app.ENV_MODEL_DIR, raising=False)
    monkeypatch.delenv(serve_app.ENV_CONFIG_JSON, raising=False)

    assert run_cli(monkeypatch, "serve", str(bundle_dir), "--port", "9999") == 0
    target, kwargs = calls[-1]
    assert isinstance(target, FastAPI) and kwargs["host"] == "127.0.0.1" and kwargs["port"] == 9999
    assert applied == [1]  # one torch thread per server process by default

    assert (
        run_cli(monkeypatch, "serve", str(bundle_dir), "--workers", "3", "--max-history", "7") == 0
    )
    target, kwargs = calls[-1]
    assert (
        target == "onerec.serve.app:app_from_env" and kwargs["factory"] and kwargs["workers"] == 3
    )
    assert kwargs.get("timeout_worker_healthcheck", 300) >= 60  # workers import torch slowly
    assert os.environ[serve_app.ENV_MODEL_DIR] == str(bundle_dir.resolve())
    assert '"max_history_items":7' in os.environ[serve_app.ENV_CONFIG_JSON]
