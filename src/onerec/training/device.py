"""Run-time device choice: CUDA when present, else CPU — never hard-coded in model code."""

from __future__ import annotations

from typing import Any

import torch

from onerec.errors import ConfigError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks ``cuda`` (the current CUDA device) when one is available, else ``cpu``.
    Asking for CUDA on a machine without it, or for a CUDA index that does not exist, raises
    :class:`onerec.errors.ConfigError` with what to do instead.
    """
    if isinstance(name, torch.device):
        name = str(name)
    text = name.strip().lower()
    if text == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} was requested but CUDA is not available on this machine; "
                "use device='auto' or device='cpu'"
            )
        if text == "cuda":
            return torch.device("cuda")
        index_text = text.split(":", 1)[1]
        if not index_text.isdigit():
            raise ConfigError(f"device {name!r}: the CUDA index must be a number, e.g. 'cuda:0'")
        index = int(index_text)
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(
                f"device {name!r}: only {count} CUDA device(s) present (indices 0..{count - 1})"
            )
        return torch.device("cuda", index)
    raise ConfigError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def to_device(batch: object, device: torch.device) -> object:
    """Move every tensor inside ``batch`` (nested dict/list/tuple/dataclass-free) to ``device``.

    Non-tensor leaves (ints, numpy arrays, strings) are returned unchanged, so a batch may carry
    metadata alongside its tensors.
    """
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        moved: list[Any] = [to_device(value, device) for value in batch]
        return type(batch)(*moved)
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch
