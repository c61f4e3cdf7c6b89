"""Fixtures for the service tests (data and models: :mod:`tests.serve.tiny_world`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from onerec.data.prepared import PreparedDataset
from onerec.serve import ServeConfig, create_app

from .tiny_world import make_bundle, make_dataset


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run as the server does (``--torch-threads 1``), and give the setting back afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_dataset() -> PreparedDataset:
    return make_dataset()


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, tiny_dataset: PreparedDataset) -> Path:
    """Generator + CRM."""
    return make_bundle(tmp_path_factory.mktemp("serve") / "bundle", tiny_dataset)


@pytest.fixture(scope="session")
def client(bundle_dir: Path) -> TestClient:
    return TestClient(
        create_app(bundle_dir, ServeConfig(max_body_bytes=100_000, max_history_items=50))
    )
