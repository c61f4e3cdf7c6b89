"""One torch thread: the torchrun workers get OMP_NUM_THREADS=1 from torchrun, and the
single-process references must run the same kernels to be comparable bit for bit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
