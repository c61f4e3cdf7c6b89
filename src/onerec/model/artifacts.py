"""Saved generator models, HF style: ``config.json`` + ``model.safetensors`` + ``tokenizer/``.

Layout of a model directory::

    config.json          {"kind": "onerec-generator", "model": GeneratorConfig fields}
    model.safetensors    weights
    tokenizer/           the SemanticTokenizer the model was trained on (codes, trie)
    item_ids.json        external item ids in item_idx order (for `onerec recommend`)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from onerec.config import build_config
from onerec.errors import CheckpointError
from onerec.io import atomic_dir, atomic_write_json, read_json
from onerec.model.config import GeneratorConfig
from onerec.model.generator import OneRecGenerator
from onerec.tokenizer import SemanticTokenizer
from onerec.training import load_state_into, read_model_config, unwrap_model
from onerec.training.checkpoint import MODEL_FILE, state_dict_to_safetensors
from onerec.training.model_dir import CONFIG_FILE

KIND = "onerec-generator"
TOKENIZER_DIR = "tokenizer"
ITEM_IDS_FILE = "item_ids.json"


@dataclass
class LoadedGenerator:
    """A generator ready to recommend: model (eval mode), its tokenizer and item ids."""

    model: OneRecGenerator
    tokenizer: SemanticTokenizer
    item_ids: list[str] | None


def save_generator(
    path: str | Path,
    model: OneRecGenerator,
    tokenizer: SemanticTokenizer,
    item_ids: list[str] | None = None,
) -> Path:
    """Write the whole model directory atomically (a failure leaves the old one intact)."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        bare = unwrap_model(model)
        (tmp / MODEL_FILE).write_bytes(state_dict_to_safetensors(bare.state_dict()))
        atomic_write_json(tmp / CONFIG_FILE, {"kind": KIND, "model": model.config.model_dump()})
        tokenizer.save(tmp / TOKENIZER_DIR)
        if item_ids is not None:
            atomic_write_json(tmp / ITEM_IDS_FILE, [str(i) for i in item_ids])
    return path


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> LoadedGenerator:
    """Load a directory written by :func:`save_generator` (checks kind and vocabulary)."""
    path = Path(path)
    raw = read_model_config(path)
    if raw.get("kind") != KIND or not isinstance(raw.get("model"), dict):
        raise CheckpointError(
            f"{path / 'config.json'} is not a OneRec generator (kind {raw.get('kind')!r}); "
            "pass the model directory that `onerec train` wrote for a generator config"
        )
    config = build_config(GeneratorConfig, raw["model"], source=str(path / "config.json"))
    model = OneRecGenerator(config)
    load_state_into(model, path)
    tokenizer = SemanticTokenizer.load(path / TOKENIZER_DIR)
    if list(tokenizer.codebook_sizes) != list(config.codebook_sizes):
        raise CheckpointError(
            f"{path}: tokenizer codebook sizes {tokenizer.codebook_sizes} do not match the "
            f"model's {config.codebook_sizes}"
        )
    ids_path = path / ITEM_IDS_FILE
    item_ids = [str(i) for i in read_json(ids_path)] if ids_path.is_file() else None
    return LoadedGenerator(model.to(device).eval(), tokenizer, item_ids)
