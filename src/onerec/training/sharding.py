"""Splitting work across ranks: training batches for data parallelism, and any per-item map
(evaluation, beam search, candidate sampling) with results gathered back in order.

Two rules make sharded results equal the single-process ones:

* **Training** — every rank builds the same *global* batch (data order depends only on
  ``(seed, epoch)``) and keeps its contiguous slice of the rows (:func:`shard_batch`), so the
  global batch is exactly the single-process batch; the trainer weights each rank's loss so the
  averaged gradient is the single-process gradient (see ``onerec.training.ddp``).
* **Mapping** — :func:`sharded_map` / :func:`sharded_rows` cut the items at multiples of
  ``align`` (pass the batch size), so each rank runs exactly the batches the single process would
  have run: same shapes, same kernels, bit-identical outputs. ``order`` lets a caller process
  items in a different order (e.g. sorted by length) and still get results back by position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import distributed as dist

from onerec.training.distributed import all_gather_objects, is_distributed, rank, world_size

T = TypeVar("T")
R = TypeVar("R")

_FINGERPRINT_SAMPLES = 64  # values sampled per tensor when fingerprinting a batch


def shard_bounds(count: int, parts: int, align: int = 1) -> list[int]:
    """Offsets ``[b_0=0, b_1, …, b_parts=count]``: part ``r`` is ``range(b_r, b_{r+1})``.

    Items are grouped in blocks of ``align`` (the last block may be short); blocks are dealt out
    contiguously and as evenly as possible (the first ``blocks % parts`` parts get one more).
    """
    if parts < 1 or align < 1 or count < 0:
        raise ValueError(f"need parts >= 1, align >= 1, count >= 0; got {parts}, {align}, {count}")
    blocks = -(-count // align)
    base, extra = divmod(blocks, parts)
    bounds = [0]
    end_block = 0
    for part in range(parts):
        end_block += base + (1 if part < extra else 0)
        bounds.append(min(count, end_block * align))
    return bounds


# ------------------------------------------------------------------ training batches
def _leaves(batch: Any) -> list[torch.Tensor | np.ndarray]:
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        return [batch]
    if isinstance(batch, dict):
        return [leaf for value in batch.values() for leaf in _leaves(value)]
    if isinstance(batch, (list, tuple)):
        return [leaf for value in batch for leaf in _leaves(value)]
    return []


def batch_rows(batch: Any) -> int:
    """The batch size: the leading dimension of the first tensor/array (with ``ndim >= 1``)."""
    for leaf in _leaves(batch):
        if leaf.ndim >= 1:
            return int(leaf.shape[0])
    raise ValueError(
        "cannot find the batch dimension: the batch holds no tensor or array with a leading "
        "dimension (data-parallel training splits batches along dimension 0)"
    )


def _slice_rows(batch: Any, rows: int, start: int, stop: int) -> Any:
    if isinstance(batch, (torch.Tensor, np.ndarray)):
        return batch[start:stop] if batch.ndim >= 1 and batch.shape[0] == rows else batch
    if isinstance(batch, dict):
        return {key: _slice_rows(value, rows, start, stop) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_slice_rows(value, rows, start, stop) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_slice_rows(value, rows, start, stop) for value in batch)
    return batch


def shard_batch(batch: Any, part: int, parts: int) -> tuple[Any, int]:
    """Rank ``part``'s contiguous slice of a global batch, and how many real rows it holds.

    Every tensor/array whose leading dimension equals the batch size (:func:`batch_rows`) is
    sliced; everything else (scalars, shared tables such as sampled negatives with another
    leading size) is passed to every rank whole. A rank left without rows (a final batch
    smaller than the world) gets the first row as a stand-in and ``0`` real rows: it must still
    run forward/backward (the gradient all-reduce needs every rank), and a weight of 0 removes
    its contribution.
    """
    rows = batch_rows(batch)
    bounds = shard_bounds(rows, parts)
    start, stop = bounds[part], bounds[part + 1]
    if start == stop:
        return _slice_rows(batch, rows, 0, min(1, rows)), 0
    return _slice_rows(batch, rows, start, stop), stop - start


@dataclass(frozen=True)
class BatchShard:
    """Where this rank's rows sit in the global batch of the current training step."""

    start: int  # index of the rank's first row in the global batch
    rows: int  # real rows it holds (0: a stand-in row with weight 0)
    sizes: tuple[int, ...]  # real rows of every rank, in rank order (sum: the global batch)


_ACTIVE_SHARD: BatchShard | None = None  # set by the trainer for each data-parallel micro-batch


def set_active_shard(shard: BatchShard | None) -> None:
    """Record the shard the trainer is about to run (``None``: not data parallel)."""
    global _ACTIVE_SHARD
    _ACTIVE_SHARD = shard


def active_shard() -> BatchShard | None:
    """The shard of the training step being computed (``None`` outside data-parallel training)."""
    return _ACTIVE_SHARD


class _GatherRows(torch.autograd.Function):
    """All-gather of uneven row blocks; backward sums each row's gradient over the ranks (every
    rank's loss may use every row) and hands each rank the gradient of its own rows."""

    @staticmethod
    def forward(ctx: Any, local: torch.Tensor, sizes: tuple[int, ...], index: int) -> torch.Tensor:
        width = max(sizes)
        padded = local.new_zeros((width, *local.shape[1:]))
        padded[: sizes[index]] = local[: sizes[index]]
        gathered = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(gathered, padded.contiguous())
        ctx.sizes, ctx.index, ctx.local_rows = sizes, index, local.shape[0]
        return torch.cat([part[:n] for part, n in zip(gathered, sizes, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        total = grad.contiguous().clone()
        dist.all_reduce(total)  # Σ over ranks of d(loss_r)/d(row)
        start = sum(ctx.sizes[: ctx.index])
        own = total.new_zeros((ctx.local_rows, *total.shape[1:]))
        own[: ctx.sizes[ctx.index]] = total[start : start + ctx.sizes[ctx.index]]
        return own, None, None


def gather_batch_rows(local: torch.Tensor) -> torch.Tensor:
    """A per-row tensor of this rank's shard ``[rows, …]`` → the whole global batch's
    ``[B, …]`` (rank order = batch order), differentiable: gradients flow back to the rank that
    computed each row. Losses that couple rows (in-batch negatives) use it to see the same
    rows as one process. Outside data-parallel training it returns ``local`` unchanged.

    Every rank must call it at the same point of its loss (it is a collective).
    """
    shard = active_shard()
    if shard is None or not is_distributed():
        return local
    if not local.is_floating_point():  # ids and masks: no gradient to route back
        with torch.no_grad():
            return _GatherRows.apply(local, shard.sizes, rank())  # type: ignore[no-any-return]
    return _GatherRows.apply(local, shard.sizes, rank())  # type: ignore[no-any-return]


def batch_offset() -> int:
    """Index in :func:`gather_batch_rows`'s output of this rank's first row (0 outside
    data-parallel training, and for a stand-in row, which duplicates the batch's row 0)."""
    shard = active_shard()
    return 0 if shard is None or shard.rows == 0 else shard.start


def batch_fingerprint(batch: Any) -> tuple[Any, ...]:
    """A cheap summary (shapes + sums of a few strided values) to check that all ranks are
    iterating the same global batches; O(1) work per tensor."""
    parts: list[Any] = []
    for leaf in _leaves(batch):
        flat = torch.as_tensor(leaf).reshape(-1)
        step = max(1, flat.numel() // _FINGERPRINT_SAMPLES)
        sample = flat[::step][:_FINGERPRINT_SAMPLES].double()
        position = torch.arange(1, len(sample) + 1, dtype=torch.float64)  # order-sensitive
        parts.append((tuple(leaf.shape), round(float((sample * position).sum()), 6)))
    return tuple(parts)


# ------------------------------------------------------------------ sharded maps
def _my_positions(count: int, align: int, order: Sequence[int] | np.ndarray | None) -> np.ndarray:
    positions = np.arange(count) if order is None else np.asarray(order, dtype=np.int64)
    if order is not None and (
        positions.shape != (count,) or not np.array_equal(np.sort(positions), np.arange(count))
    ):
        raise ValueError(f"order must be a permutation of range({count})")
    bounds = shard_bounds(count, world_size(), align)
    return positions[bounds[rank()] : bounds[rank() + 1]]


def _all_positions(count: int, order: Sequence[int] | np.ndarray | None) -> np.ndarray:
    return np.arange(count) if order is None else np.asarray(order, dtype=np.int64)


def sharded_map(
    fn: Callable[[list[T]], Sequence[R]],
    items: Sequence[T],
    align: int = 1,
    order: Sequence[int] | np.ndarray | None = None,
) -> list[R]:
    """``fn`` over ``items`` split across ranks; every rank gets all results, in item order.

    ``fn(chunk) -> results`` (one result per item of the chunk) runs once per rank on a
    contiguous block of ``items`` taken in ``order`` (default: as given), cut at multiples of
    ``align``. Results travel as Python objects (``all_gather_object``); for large numeric
    results use :func:`sharded_rows`. Not distributed: ``fn`` runs once on everything.
    Every rank must call this (it is a collective); ``fn`` must not depend on the rank.
    """
    count = len(items)
    mine = _my_positions(count, align, order)
    local = list(fn([items[int(i)] for i in mine])) if len(mine) else []
    if len(local) != len(mine):
        raise ValueError(f"fn returned {len(local)} results for {len(mine)} items")
    flat = [result for part in all_gather_objects(local) for result in part]
    out: list[Any] = [None] * count
    for position, result in zip(_all_positions(count, order), flat, strict=True):
        out[int(position)] = result
    return out


def all_gather_rows(local: np.ndarray) -> np.ndarray:
    """Concatenate every rank's ``[n_r, ...]`` array along axis 0, in rank order (tensor
    all-gather, no pickling). Ranks may hold different ``n_r`` (including 0) but must agree on
    trailing shape and dtype. Identity when not distributed."""
    if not is_distributed():
        return local
    sizes = [int(n) for n in all_gather_objects(int(local.shape[0]))]
    device = _collective_device()
    width = max(sizes)
    padded = torch.zeros((width, *local.shape[1:]), dtype=torch.from_numpy(local[:0]).dtype)
    padded[: local.shape[0]] = torch.from_numpy(np.ascontiguousarray(local))
    padded = padded.to(device)
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded)
    return np.concatenate([g[:n].cpu().numpy() for g, n in zip(gathered, sizes, strict=True)])


def sharded_rows(
    fn: Callable[[list[T]], np.ndarray | tuple[np.ndarray, ...]],
    items: Sequence[T],
    align: int = 1,
    order: Sequence[int] | np.ndarray | None = None,
) -> Any:
    """Like :func:`sharded_map` for ``fn(chunk) -> array [len(chunk), ...]`` (or a tuple of
    such arrays): the rows are gathered with tensor collectives and put back in item order.

    Returns an array (or a tuple of arrays) with one row per item, as ``fn(items)`` would in a
    single process when the chunks are cut at the same batch boundaries.
    """
    count = len(items)
    mine = _my_positions(count, align, order)
    local = fn([items[int(i)] for i in mine]) if len(mine) else None
    arrays = None if local is None else (local if isinstance(local, tuple) else (local,))
    if arrays is not None and any(a.shape[0] != len(mine) for a in arrays):
        raise ValueError(f"fn returned {[a.shape for a in arrays]} rows for {len(mine)} items")
    # Ranks without items still need the trailing shapes/dtypes to join the all-gather.
    specs = all_gather_objects(
        None
        if arrays is None
        else (isinstance(local, tuple), [(a.shape[1:], a.dtype.str) for a in arrays])
    )
    spec = next((s for s in specs if s is not None), None)
    if spec is None:  # no items at all
        raise ValueError("sharded_rows needs at least one item")
    is_tuple, shapes = spec
    if arrays is None:
        arrays = tuple(np.zeros((0, *shape), dtype=np.dtype(dt)) for shape, dt in shapes)
    positions = _all_positions(count, order)
    outputs = []
    for array in arrays:
        flat = all_gather_rows(array)
        placed = np.empty_like(flat)
        placed[positions] = flat
        outputs.append(placed)
    return tuple(outputs) if is_tuple else outputs[0]


def _collective_device() -> torch.device:
    backend = str(dist.get_backend()).lower()
    if "gloo" in backend or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())
