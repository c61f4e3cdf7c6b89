"""``load_bundle``: read a service bundle once, into ready-to-serve objects.

Checks the manifest (format, version, every file's sha256 when ``verify_files``), then builds
the item catalogue, the user histories, the generator service (model + code table + trie
tensors on the device) and the CRM service — whichever the bundle holds.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file

import onerec
from onerec.data.prepared import sha256_file
from onerec.errors import CheckpointError
from onerec.io import read_json
from onerec.model import OneRecGenerator
from onerec.serve import layout
from onerec.serve.bundle import read_generator_config
from onerec.serve.catalog import ItemCatalog, UserHistories
from onerec.serve.config import ServeConfig
from onerec.serve.retrieval_service import ConditionedRetrieval
from onerec.serve.session_service import SessionRecommender
from onerec.tokenizer.trie import PrefixTrie
from onerec.training import load_state_into, resolve_device


@dataclass
class ServiceBundle:
    """Everything the HTTP app serves from, loaded once."""

    directory: Path
    manifest: dict[str, Any]
    items: ItemCatalog
    users: UserHistories
    device: torch.device
    generator: SessionRecommender | None = None
    retrieval: ConditionedRetrieval | None = None
    semantic_codes: np.ndarray | None = None  # [num_items, C], for GET /v1/items
    loaded_at: float = field(default_factory=time.time)
    load_seconds: float = 0.0

    def info(self) -> dict[str, Any]:
        """Model and version facts for ``GET /healthz``."""
        parts = self.manifest.get("parts", {})
        out: dict[str, Any] = {
            "bundle": {
                "directory": str(self.directory),
                "name": self.manifest.get("name"),
                "created_at": self.manifest.get("created_at"),
                "format_version": self.manifest.get("format_version"),
                "dataset": self.manifest.get("dataset"),
            },
            "versions": {
                "onerec": onerec.__version__,
                "bundle_onerec": self.manifest.get("onerec_version"),
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            "device": str(self.device),
            "num_items": len(self.items),
            "num_users": len(self.users),
            "load_seconds": round(self.load_seconds, 3),
            "uptime_seconds": round(time.time() - self.loaded_at, 1),
            "generator": None,
            "retrieval": None,
        }
        if self.generator is not None:
            params = self.generator.parameter_count
            out["generator"] = {**parts.get(layout.GENERATOR_DIR, {}), "parameters": params}
        if self.retrieval is not None:
            out["retrieval"] = parts.get(layout.RETRIEVAL_DIR, {})
        return out


def read_manifest(directory: Path) -> dict[str, Any]:
    """``bundle.json``, checked for format and version."""
    path = directory / layout.MANIFEST_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{directory} is not a service bundle (no {layout.MANIFEST_FILE}); assemble one with "
            "`onerec bundle` or onerec.serve.build_bundle(...)"
        )
    try:
        manifest: dict[str, Any] = read_json(path)
    except ValueError as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    if manifest.get("format") != layout.BUNDLE_FORMAT:
        raise CheckpointError(
            f"{path}: format is {manifest.get('format')!r}, not {layout.BUNDLE_FORMAT!r}"
        )
    if manifest.get("format_version") != layout.BUNDLE_VERSION:
        raise CheckpointError(
            f"{path}: bundle format version {manifest.get('format_version')!r}; this onerec reads "
            f"version {layout.BUNDLE_VERSION} — rebuild the bundle"
        )
    return manifest


def verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Every file listed in the manifest exists with its recorded sha256."""
    for relative, meta in manifest.get("files", {}).items():
        path = directory / relative
        if not path.is_file():
            raise CheckpointError(f"bundle file {path} is missing; rebuild the bundle")
        if sha256_file(path) != meta.get("sha256"):
            raise CheckpointError(
                f"bundle file {path} does not match its sha256 in {layout.MANIFEST_FILE} "
                "(changed or damaged); rebuild the bundle"
            )


def load_bundle(directory: str | Path, config: ServeConfig | None = None) -> ServiceBundle:
    """Load a bundle for serving (see :mod:`onerec.serve.layout`)."""
    started = time.perf_counter()
    config = config or ServeConfig()
    directory = Path(directory)
    device = resolve_device(config.device)
    manifest = read_manifest(directory)
    if config.verify_files:
        verify_files(directory, manifest)
    items = ItemCatalog.read(directory / layout.ITEMS_FILE)
    users = UserHistories.read(directory / layout.USER_HISTORIES_FILE)
    bundle = ServiceBundle(directory, manifest, items, users, device)
    generator_dir = directory / layout.GENERATOR_DIR
    if generator_dir.is_dir():
        bundle.generator, bundle.semantic_codes = _load_generator(generator_dir, device, len(items))
    retrieval_dir = directory / layout.RETRIEVAL_DIR
    if retrieval_dir.is_dir():
        bundle.retrieval = ConditionedRetrieval(retrieval_dir, device)
        if bundle.retrieval.num_items != len(items):
            raise CheckpointError(
                f"{retrieval_dir} scores {bundle.retrieval.num_items} items; the bundle has {len(items)}"
            )
    if bundle.generator is None and bundle.retrieval is None:
        raise CheckpointError(
            f"{directory} holds neither {layout.GENERATOR_DIR}/ nor {layout.RETRIEVAL_DIR}/"
        )
    bundle.load_seconds = time.perf_counter() - started
    return bundle


def _load_generator(
    directory: Path, device: torch.device, num_items: int
) -> tuple[SessionRecommender, np.ndarray]:
    config = read_generator_config(directory)
    model = OneRecGenerator(config)
    load_state_into(model, directory)
    ids_path = directory / layout.SEMANTIC_IDS_FILE
    if not ids_path.is_file():
        raise CheckpointError(f"{ids_path} is missing; rebuild the bundle")
    arrays = load_file(str(ids_path))
    codes = arrays.pop(layout.CODES_TENSOR)
    if codes.shape[0] != num_items:
        raise CheckpointError(
            f"{directory}: semantic IDs cover {codes.shape[0]} items, the bundle {num_items}"
        )
    trie = PrefixTrie.from_tensors(arrays)
    return SessionRecommender(model, codes, trie, device), codes
