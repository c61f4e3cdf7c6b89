"""Fixtures of the demo tests: one tiny end-to-end run shared by the module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from rich.console import Console

from onerec.demo import DemoConfig, DemoResult, run_demo

from .kuairand_like import tiny_demo_config, write_kuairand_like


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    """The demo sets torch's thread count; give the suite's setting back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_kuairand_like(tmp_path_factory.mktemp("kuairand_like"))


@pytest.fixture(scope="session")
def tiny_config(tiny_source: tuple[Path, Path]) -> DemoConfig:
    return DemoConfig.model_validate(tiny_demo_config(*tiny_source))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_config: DemoConfig) -> DemoResult:
    """Every stage of the demo on the tiny data (about 5 s after imports)."""
    before = torch.get_num_threads()
    try:
        return run_demo(
            tiny_config,
            tmp_path_factory.mktemp("demo") / "run",
            Console(quiet=True),
            show_progress=False,
        )
    finally:
        torch.set_num_threads(before)
