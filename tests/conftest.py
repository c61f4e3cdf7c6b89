"""Shared fixtures. Tests that need the real data sets in ../shared/data skip without them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ONEREC_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

# Two cores here: keep torch from oversubscribing when pytest runs alongside other work.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """Path to ../shared/data; skips the test (with the reason) when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data sets not found at {SHARED_DATA} (a fresh clone has no ../shared; "
            "set ONEREC_SHARED_DATA to point elsewhere)"
        )
    return SHARED_DATA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; none is present")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
