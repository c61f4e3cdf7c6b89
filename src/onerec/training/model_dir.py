"""Hugging-Face-style model directories: ``config.json`` + ``model.safetensors``.

A model directory is what a trained model ships as (the CLI's ``evaluate``, the server and the
other parts load it); a training checkpoint (``checkpoint.py``) also carries optimizer and RNG
state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from onerec.errors import CheckpointError
from onerec.io import atomic_dir, atomic_write_json, read_json
from onerec.training.checkpoint import MODEL_FILE, load_model_weights, state_dict_to_safetensors
from onerec.training.distributed import unwrap_model

CONFIG_FILE = "config.json"


def save_model_dir(path: str | Path, model: nn.Module, config_dict: dict[str, Any]) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``path`` atomically."""
    path = Path(path)
    bare = unwrap_model(model)
    with atomic_dir(path) as tmp:
        (tmp / MODEL_FILE).write_bytes(state_dict_to_safetensors(bare.state_dict()))
        atomic_write_json(tmp / CONFIG_FILE, config_dict)
    return path


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a model directory."""
    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(
            f"{path} is not a model directory (no {CONFIG_FILE}); pass the directory that "
            "`onerec train` wrote"
        )
    config: dict[str, Any] = read_json(config_path)
    return config


def load_state_into(model: nn.Module, path: str | Path) -> nn.Module:
    """Load ``path/model.safetensors`` (or ``path`` itself if it is the file) into ``model``."""
    path = Path(path)
    weights = path if path.suffix == ".safetensors" else path / MODEL_FILE
    load_model_weights(unwrap_model(model), weights)
    return model
