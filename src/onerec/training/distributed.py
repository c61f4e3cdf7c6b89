"""Process-group set-up under ``torchrun`` and the few collective helpers onerec needs.

Single-process runs get the trivial answers everywhere (rank 0, world size 1, no-op barriers),
so code written against this module runs unchanged with or without ``torchrun``.

Everything that writes files or prints goes through :func:`is_main_process`, and every access
to the underlying model goes through :func:`unwrap_model`.

``torchrun`` (``python -m torch.distributed.run``) starts one process per device and tells each
one who it is through environment variables: ``RANK`` (global index), ``WORLD_SIZE`` (number of
processes), ``LOCAL_RANK`` (index on this machine, i.e. which GPU) and ``MASTER_ADDR`` /
``MASTER_PORT`` (the rendezvous store). :func:`init_distributed` reads them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import distributed as dist
from torch import nn

from onerec.errors import ConfigError

_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_OWNED_GROUP = False  # True when init_distributed created the default group (so we destroy it)


@dataclass(frozen=True)
class DistributedInfo:
    """Who this process is: global ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int
    world_size: int
    local_rank: int
    backend: str | None  # None when no process group is running (single process)


def is_distributed() -> bool:
    """True when a torch.distributed process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """Global rank of this process (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """Index of this process on its machine (``LOCAL_RANK``; 0 when not set)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on rank 0: the only process that writes checkpoints, logs and progress bars."""
    return rank() == 0


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def launched_by_torchrun() -> bool:
    """True when the torchrun environment variables describe more than one process."""
    if not all(key in os.environ for key in _ENV_KEYS):
        return False
    return int(os.environ["WORLD_SIZE"]) > 1


def resolve_backend(backend: str = "auto") -> str:
    """``"auto"`` → ``"cpu:gloo,cuda:nccl"`` when CUDA is present (NCCL for GPU tensors, gloo for
    CPU ones such as :func:`all_gather_objects`), else ``"gloo"``. Anything else is passed on."""
    if backend != "auto":
        return backend
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def init_distributed(backend: str = "auto") -> DistributedInfo:
    """Start the default process group from torchrun's environment variables.

    Idempotent: when a group already runs it is reused. Without the torchrun variables, or with
    ``WORLD_SIZE=1``, nothing is started and the single-process answer is returned. On a CUDA
    machine the process's current device becomes ``cuda:LOCAL_RANK``, so ``"cuda"`` and
    ``"auto"`` devices resolve to this process's own GPU.

    The group is destroyed at interpreter exit (or earlier with :func:`teardown_distributed`).
    """
    global _OWNED_GROUP
    if is_distributed():
        return DistributedInfo(rank(), world_size(), local_rank(), str(dist.get_backend()))
    if not launched_by_torchrun():
        return DistributedInfo(0, 1, 0, None)
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; run without torchrun")
    chosen = resolve_backend(backend)
    if "nccl" in chosen and not torch.cuda.is_available():
        raise ConfigError(f"backend {chosen!r} needs CUDA, which is absent; use 'gloo' on CPU")
    index = local_rank()
    if torch.cuda.is_available():
        if index >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={index} but only {torch.cuda.device_count()} CUDA device(s) are "
                "visible; lower torchrun --nproc-per-node to the number of GPUs"
            )
        torch.cuda.set_device(index)
    dist.init_process_group(backend=chosen)
    _OWNED_GROUP = True
    atexit.register(teardown_distributed)
    return DistributedInfo(rank(), world_size(), index, chosen)


def teardown_distributed() -> None:
    """Destroy the process group started by :func:`init_distributed` (no-op otherwise)."""
    global _OWNED_GROUP
    if _OWNED_GROUP and is_distributed():
        dist.destroy_process_group()
    _OWNED_GROUP = False


def device_for_rank(device: torch.device) -> torch.device:
    """The device this process should use: ``cuda:LOCAL_RANK`` for CUDA under torchrun.

    An explicit ``cuda:N`` under a multi-process run would put every rank on the same GPU, so
    the index is replaced by ``LOCAL_RANK``; CPU stays CPU.
    """
    if device.type == "cuda" and is_distributed():
        return torch.device("cuda", local_rank())
    return device


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every rank (identity when not distributed)."""
    if not is_distributed():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` when not distributed).

    Objects travel pickled in memory (never written to disk); keep them small — use
    :func:`onerec.training.sharding.all_gather_rows` for large numeric arrays.
    """
    if not is_distributed():
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the other ranks (e.g. create a run directory,
    download or prepare data once). A no-op wrapper when not distributed."""
    if not is_main_process():
        barrier()
    try:
        yield
    finally:
        if is_main_process():
            barrier()


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare model inside a DDP / ``torch.compile`` wrapper (identity otherwise)."""
    inner = model
    while True:
        if hasattr(inner, "module") and isinstance(inner.module, nn.Module):  # DDP, DataParallel
            inner = inner.module
        elif hasattr(inner, "_orig_mod") and isinstance(inner._orig_mod, nn.Module):  # compile
            inner = inner._orig_mod
        else:
            return inner
