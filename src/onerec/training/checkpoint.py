"""Training checkpoints as safetensors + JSON (no pickle, no ``torch.save``).

A checkpoint directory holds

* ``model.safetensors`` — the model's state dict (tied tensors stored once, see
  :func:`state_dict_to_safetensors`);
* ``optimizer.safetensors`` — every tensor of the optimizer state under ``state/<param>/<name>``,
  with the structure (param groups, non-tensor state values) as JSON in the file's metadata;
* ``trainer_state.json`` — step, epoch, best metric, early-stopping counters, RNG states.

The directory is written with :func:`onerec.io.atomic_dir`: a crash leaves the previous
checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import load_file as st_load_file
from safetensors.torch import save as st_save
from torch import nn

from onerec.errors import CheckpointError
from onerec.io import atomic_dir, atomic_write_json, read_json

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer_state.json"
_ALIAS_KEY = "onerec_aliases"
_OPTIM_KEY = "onerec_optimizer"


def state_dict_to_safetensors(state: dict[str, torch.Tensor]) -> bytes:
    """Serialise a state dict; tensors sharing storage (tied weights) are stored once.

    The aliases (``name -> stored name``) go in the safetensors metadata as JSON.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    by_storage: dict[tuple[int, ...], str] = {}
    for name, tensor in state.items():
        if tensor.numel() > 0:
            key = (
                tensor.untyped_storage().data_ptr(),
                int(tensor.storage_offset()),
                *tensor.shape,
                -1,  # separates shape from stride
                *tensor.stride(),
            )
            if key in by_storage:
                aliases[name] = by_storage[key]
                continue
            by_storage[key] = name
        tensors[name] = tensor.detach().to("cpu").contiguous()
    return st_save(tensors, metadata={_ALIAS_KEY: json.dumps(aliases)})


def safetensors_to_state_dict(data: bytes, source: str) -> dict[str, torch.Tensor]:
    """Inverse of :func:`state_dict_to_safetensors` (aliases re-expanded)."""
    try:
        tensors = st_load(data)
        metadata = _read_metadata(data)
    except (SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{source} is not a readable safetensors file: {exc}") from None
    for name, target in json.loads(metadata.get(_ALIAS_KEY, "{}")).items():
        tensors[name] = tensors[target]
    return tensors


def load_model_weights(model: nn.Module, path: str | Path) -> None:
    """Load a ``model.safetensors`` into ``model`` (strict: missing/unexpected keys are errors)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist; was the model saved to this directory?")
    state = safetensors_to_state_dict(path.read_bytes(), str(path))
    target_device = next((p.device for p in model.parameters()), torch.device("cpu"))
    state = {k: v.to(target_device) for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not match this model (was it saved with another config?): {exc}"
        ) from None


def optimizer_to_safetensors(optimizer: torch.optim.Optimizer) -> bytes:
    """Flatten ``optimizer.state_dict()``: tensors to safetensors, structure to JSON metadata."""
    full = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in full["state"].items():
        for name, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{param_id}/{name}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(param_id), {})[name] = value
    structure = {"param_groups": full["param_groups"], "scalars": scalars}
    return st_save(tensors, metadata={_OPTIM_KEY: json.dumps(structure)})


def load_optimizer_state(optimizer: torch.optim.Optimizer, path: str | Path) -> None:
    """Rebuild the optimizer state dict written by :func:`optimizer_to_safetensors`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist (incomplete checkpoint?)")
    data = path.read_bytes()
    try:
        tensors = st_load(data)
        structure = json.loads(_read_metadata(data)[_OPTIM_KEY])
    except (SafetensorError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} is not an onerec optimizer checkpoint: {exc}") from None
    state: dict[int, dict[str, Any]] = {}
    for key, tensor in tensors.items():
        _, param_id, name = key.split("/", 2)
        state.setdefault(int(param_id), {})[name] = tensor
    for param_id, values in structure["scalars"].items():
        state.setdefault(int(param_id), {}).update(values)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": structure["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{path} does not match this optimizer: {exc}") from None


def save_checkpoint(
    directory: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    trainer_state: dict[str, Any],
) -> Path:
    """Write a complete checkpoint directory atomically; returns its path."""
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        (tmp / MODEL_FILE).write_bytes(state_dict_to_safetensors(model.state_dict()))
        if optimizer is not None:
            (tmp / OPTIMIZER_FILE).write_bytes(optimizer_to_safetensors(optimizer))
        atomic_write_json(tmp / STATE_FILE, trainer_state)
    return directory


def load_checkpoint(
    directory: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Load model (and optimizer) state from ``directory``; returns the trainer state dict."""
    directory = Path(directory)
    if not (directory / STATE_FILE).is_file():
        raise CheckpointError(
            f"no checkpoint at {directory} (missing {STATE_FILE}); "
            "start without resume=True or point out_dir at the earlier run"
        )
    load_model_weights(model, directory / MODEL_FILE)
    if optimizer is not None:
        load_optimizer_state(optimizer, directory / OPTIMIZER_FILE)
    state: dict[str, Any] = read_json(directory / STATE_FILE)
    return state


def load_state_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a plain safetensors file (no alias handling) — for inspection and tests."""
    return st_load_file(str(path))


def _read_metadata(data: bytes) -> dict[str, str]:
    # safetensors layout: 8-byte little-endian header length, then a JSON header whose
    # "__metadata__" entry holds the string->string metadata.
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    metadata: dict[str, str] = header.get("__metadata__", {}) or {}
    return metadata
