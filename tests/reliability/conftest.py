"""Helpers of the reliability tests: run the real ``onerec`` CLI, in process or as a process."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    """Exit status and output of one ``onerec`` invocation."""

    code: int
    stdout: str
    stderr: str
    escaped: str = ""  # a traceback, when an exception got past the CLI's error handling

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli_in_process(args: list[str], cwd: Path) -> CliResult:
    """``onerec ARGS`` through the console-script entry point, in this process.

    Same code path as the installed command (``onerec.cli:main``): typer's parsing, the
    commands, and ``main``'s one-line handling of user errors. An exception that escapes
    ``main`` is a bug (a user would see a traceback); it is returned in ``escaped``.
    """
    from onerec.cli import main

    out, err = io.StringIO(), io.StringIO()
    code, escaped = 0, ""
    argv, here = sys.argv, Path.cwd()
    threads = torch.get_num_threads()
    try:
        sys.argv = ["onerec", *args]
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # what a user would see as a traceback
                code, escaped = 1, traceback.format_exc()
    finally:
        sys.argv = argv
        os.chdir(here)
        torch.set_num_threads(threads)
    return CliResult(code, out.getvalue(), err.getvalue(), escaped)


def run_cli_process(args: list[str], cwd: Path, timeout: float = 240.0) -> CliResult:
    """``onerec ARGS`` as a separate Python process (what a shell runs)."""
    done = subprocess.run(
        [sys.executable, "-c", "from onerec.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[object]:
    """``cli(*args) -> CliResult``, run in process with ``tmp_path`` as working directory."""

    def invoke(*args: str) -> CliResult:
        return run_cli_in_process([str(a) for a in args], tmp_path)

    yield invoke
