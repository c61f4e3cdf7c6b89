"""Device resolution and batch moving."""

from __future__ import annotations

import pytest
import torch

from onerec.errors import ConfigError
from onerec.training import resolve_device, to_device


def test_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("CPU") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_requested_without_cuda_is_clear() -> None:
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda:1")


@pytest.mark.gpu
def test_cuda_index_bounds() -> None:
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_unknown_device_name() -> None:
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")


def test_to_device_nested() -> None:
    batch = {"x": torch.ones(2), "meta": [torch.zeros(1), "name", 3]}
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved, dict)
    assert torch.equal(moved["x"], batch["x"])
    assert moved["meta"][1:] == ["name", 3]
