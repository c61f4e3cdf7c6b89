"""``onerec demo`` on the command line: config resolution, the run, and its refusals."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

import pytest
import torch

from onerec.demo import DemoConfig
from onerec.demo.toml_out import config_toml, dump_toml

from .kuairand_like import tiny_demo_config


def onerec(*args: str) -> tuple[int, str, str]:
    """Run the console-script entry point in process: (exit status, stdout, stderr)."""
    from onerec.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv, threads = sys.argv, torch.get_num_threads()
    sys.argv = ["onerec", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
        torch.set_num_threads(threads)
    return code, out.getvalue(), err.getvalue()


def test_print_config_is_the_default_config_as_toml() -> None:
    code, out, _ = onerec("demo", "--print-config")
    assert code == 0
    assert out == config_toml(DemoConfig.model_validate({}))
    code, out, _ = onerec("demo", "--fast", "--print-config", "generator.train.epochs=2")
    assert code == 0 and "epochs = 2" in out and "eval_users = 100" in out


def test_demo_runs_from_a_config_file_and_prints_the_report_path(
    tiny_source: tuple[Path, Path], tmp_path: Path
) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(dump_toml(tiny_demo_config(*tiny_source)))
    out = tmp_path / "run"
    code, stdout, stderr = onerec(
        "demo",
        "--config",
        str(config),
        "--out",
        str(out),
        "--quiet",
        "--stop-after",
        "tokenizer",
        "tokenizer.fit.codebook_size=8",
    )
    assert code == 0, stdout + stderr
    assert f"report: {(out / 'report.html').resolve()}" in " ".join(stdout.split())
    assert (out / "tokenizer" / "semantic_ids" / "tokenizer.json").is_file()
    assert '"codebook_size": 8' in (out / "demo_config.json").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop-after", "training"], "not a stage"),
        (["--fast", "--config", "x.toml"], "either --fast or --config"),
        (["generator.train.lr=0"], "generator.train.lr"),
        (["--config", "missing.toml"], "does not exist"),
    ],
)
def test_refusals_are_one_clear_error(args: list[str], message: str, tmp_path: Path) -> None:
    code, stdout, stderr = onerec("demo", "--out", str(tmp_path / "out"), *args)
    assert code == 2
    assert stderr.startswith("error: ") and message in stderr and "Traceback" not in stderr + stdout
    assert not (tmp_path / "out").exists()
