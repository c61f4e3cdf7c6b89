"""One torch thread for these tests: on the shared 2-core machine two threads per process
oversubscribe the cores and small models run ~50x slower (measured 1.9 s vs 0.033 s a step)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
