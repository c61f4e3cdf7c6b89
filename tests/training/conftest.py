"""One torch thread for these tests: their tensors are tiny, and on a shared 2-core machine
OpenMP's thread hand-off costs far more than it saves (a 21x16 sqrt: ~30 µs on one thread,
~4 ms on two when the cores are oversubscribed)."""

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
