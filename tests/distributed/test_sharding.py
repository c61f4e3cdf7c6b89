"""Single-process checks of the sharding rules and of the rank-combination arithmetic.

The multi-process behaviour itself is checked end to end in ``test_torchrun.py``; here the
pieces are tested against hand-derived numbers (collectives are replaced by a fake gather).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from onerec.errors import ConfigError
from onerec.training import LossOutput
from onerec.training import ddp as ddp_module
from onerec.training.ddp import ParallelTraining
from onerec.training.distributed import (
    all_gather_objects,
    broadcast_object,
    device_for_rank,
    init_distributed,
    launched_by_torchrun,
)
from onerec.training.sharding import (
    batch_fingerprint,
    batch_rows,
    shard_batch,
    shard_bounds,
    sharded_map,
    sharded_rows,
)


@given(
    count=st.integers(0, 200), parts=st.integers(1, 9), align=st.integers(1, 17)
)  # fmt: skip
def test_shard_bounds_cover_in_aligned_balanced_blocks(count: int, parts: int, align: int) -> None:
    bounds = shard_bounds(count, parts, align)
    assert len(bounds) == parts + 1 and bounds[0] == 0 and bounds[-1] == count
    assert all(a <= b for a, b in zip(bounds, bounds[1:], strict=False))
    assert all(b % align == 0 for b in bounds[:-1] if b < count)  # cuts only at block edges
    blocks = [-(-(b - a) // align) for a, b in zip(bounds, bounds[1:], strict=False)]
    assert max(blocks) - min(blocks) <= 1


def test_shard_bounds_examples() -> None:
    assert shard_bounds(7, 2) == [0, 4, 7]
    assert shard_bounds(1, 2) == [0, 1, 1]
    assert shard_bounds(37, 2, align=8) == [0, 24, 37]  # 5 blocks of 8: 3 + 2
    assert shard_bounds(5, 4, align=2) == [0, 2, 4, 5, 5]
    with pytest.raises(ValueError):
        shard_bounds(3, 0)


def test_shard_batch_slices_batch_leaves_and_keeps_shared_ones() -> None:
    batch = {
        "ids": torch.arange(14).reshape(7, 2),
        "lengths": np.arange(7),
        "negatives": torch.tensor([5, 6, 7]),  # shared across the batch (other leading size)
        "scale": torch.tensor(2.0),
        "name": "x",
    }
    first, rows0 = shard_batch(batch, 0, 2)
    second, rows1 = shard_batch(batch, 1, 2)
    assert (rows0, rows1) == (4, 3)
    assert first["ids"].tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert second["lengths"].tolist() == [4, 5, 6]
    assert second["negatives"].tolist() == [5, 6, 7] and float(second["scale"]) == 2.0
    assert second["name"] == "x"


def test_shard_batch_gives_an_empty_rank_a_stand_in_row() -> None:
    Pair = namedtuple("Pair", ["x", "y"])
    batch = [Pair(torch.tensor([[1.0, 2.0]]), torch.tensor([3]))]
    local, rows = shard_batch(batch, 1, 2)
    assert rows == 0
    assert isinstance(local[0], Pair) and local[0].y.tolist() == [3]


def test_batch_rows_needs_a_tensor() -> None:
    assert batch_rows((torch.zeros(()), [np.zeros((3, 2))])) == 3
    with pytest.raises(ValueError, match="batch dimension"):
        batch_rows({"a": 1})


def test_fingerprint_tells_batches_apart() -> None:
    a = {"x": torch.arange(10)}
    assert batch_fingerprint(a) == batch_fingerprint({"x": torch.arange(10)})
    assert batch_fingerprint(a) != batch_fingerprint({"x": torch.arange(10).flip(0)})
    assert batch_fingerprint(a) != batch_fingerprint({"x": torch.arange(9)})


def test_single_process_maps_are_plain_calls() -> None:
    seen: list[list[int]] = []

    def record(chunk: list[int]) -> list[int]:
        seen.append(list(chunk))
        return [10 * i for i in chunk]

    assert sharded_map(record, [1, 2, 3], align=2, order=[2, 0, 1]) == [10, 20, 30]
    assert seen == [[3, 1, 2]]  # one call, items taken in `order`, results back by position
    rows = sharded_rows(lambda c: np.asarray([[i, -i] for i in c]), [4, 5, 6], order=[1, 2, 0])
    assert rows.tolist() == [[4, -4], [5, -5], [6, -6]]
    pair = sharded_rows(lambda c: (np.asarray(c), np.asarray(c) * 2.0), [1, 2])
    assert pair[0].tolist() == [1, 2] and pair[1].tolist() == [2.0, 4.0]
    with pytest.raises(ValueError, match="permutation"):
        sharded_map(record, [1, 2], order=[0, 0])
    with pytest.raises(ValueError, match="results"):
        sharded_map(lambda c: [], [1, 2])


def test_without_torchrun_everything_is_single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    assert not launched_by_torchrun()
    info = init_distributed()
    assert (info.rank, info.world_size, info.backend) == (0, 1, None)
    assert broadcast_object({"a": 1}) == {"a": 1} and all_gather_objects(3) == [3]
    assert device_for_rank(torch.device("cpu")) == torch.device("cpu")
    for choice in ("auto", "ddp", "fsdp2", "none"):
        assert ParallelTraining.setup(choice, torch.device("cpu")).strategy == "none"
    with pytest.raises(ConfigError, match="train.distributed"):
        ParallelTraining.setup("zero3", torch.device("cpu"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(key, "0")
    assert not launched_by_torchrun()  # torchrun with one process: no group needed


def test_single_process_combine_is_the_plain_loss() -> None:
    parallel = ParallelTraining("none", torch.device("cpu"))
    batch = {"x": torch.ones(3, 2)}
    assert parallel.shard(batch) is batch
    scale, logged = parallel.combine(LossOutput(torch.tensor(2.5), {"acc": 0.5}, weight=7.0))
    assert scale == 1.0 and logged == {"loss": 2.5, "acc": 0.5}


def _two_rank_parallel(monkeypatch: pytest.MonkeyPatch, other: tuple[Any, ...]) -> Any:
    """A ``ddp`` ParallelTraining acting as rank 0 of 2, whose gather returns ``other`` as
    rank 1's contribution."""
    parallel = ParallelTraining("none", torch.device("cpu"))
    parallel.strategy, parallel.world, parallel.rank = "ddp", 2, 0

    def fake_gather(mine: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return [mine, (other[0], other[1], other[2], mine[3] if other[3] is None else other[3])]

    monkeypatch.setattr(ddp_module, "all_gather_objects", fake_gather)
    return parallel


def test_ranks_are_weighted_to_the_single_process_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rank 0: 4 of 7 rows, mean loss 2.0 over 10 tokens; rank 1: mean 3.0 over 30 tokens.
    parallel = _two_rank_parallel(monkeypatch, (30.0, 3.0, {"acc": 0.25}, None))
    local = parallel.shard({"x": torch.zeros(7, 1)})
    assert local["x"].shape == (4, 1)
    scale, logged = parallel.combine(LossOutput(torch.tensor(2.0), {"acc": 0.75}, weight=10.0))
    # DDP averages the two ranks' gradients: scale_r = w_r * world / sum(w).
    assert scale == pytest.approx(10 * 2 / 40)
    assert logged["loss"] == pytest.approx((10 * 2.0 + 30 * 3.0) / 40)  # = 2.75
    assert logged["acc"] == pytest.approx((10 * 0.75 + 30 * 0.25) / 40)
    # Without an explicit weight the rank's row count (4 of 7) is used.
    parallel = _two_rank_parallel(monkeypatch, (3.0, 1.0, {}, None))
    parallel.shard({"x": torch.zeros(7, 1)})
    scale, logged = parallel.combine(LossOutput(torch.tensor(2.0)))
    assert scale == pytest.approx(4 * 2 / 7)
    assert logged["loss"] == pytest.approx((4 * 2.0 + 3 * 1.0) / 7)


def test_an_empty_rank_contributes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    parallel = _two_rank_parallel(monkeypatch, (1.0, 4.0, {}, None))
    parallel.rank = 1  # with one row, rank 1 holds only the stand-in
    parallel.shard({"x": torch.zeros(1, 1)})
    scale, logged = parallel.combine(LossOutput(torch.tensor(9.0), weight=5.0))
    assert scale == 0.0 and logged["loss"] == pytest.approx(4.0)


def test_different_batches_on_different_ranks_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parallel = _two_rank_parallel(monkeypatch, (1.0, 1.0, {}, (("other",),)))
    parallel.shard({"x": torch.zeros(2, 1)})
    with pytest.raises(ConfigError, match="different training batches"):
        parallel.combine(LossOutput(torch.tensor(1.0)))
