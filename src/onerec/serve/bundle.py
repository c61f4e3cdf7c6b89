"""``build_bundle``: assemble a service bundle (see :mod:`onerec.serve.layout`) from trained parts.

Inputs are what the other parts save: a prepared data set (its item and user tables), a
generator model directory (``config.json`` + ``model.safetensors``, HF style, from
:func:`onerec.training.save_model_dir`) with the semantic IDs it was trained on, and/or a CRM
model directory (:func:`onerec.retrieval.artifact.save_retrieval_model`). Every part is
checked before anything is written — the weights load into their model, the semantic IDs form
a valid trie over exactly the data set's items, the CRM's id lists equal the data set's — and
the bundle is written atomically, so a failed build leaves no half bundle behind.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl
from pydantic import ValidationError
from safetensors.numpy import save_file

import onerec
from onerec.data.prepared import PreparedDataset, sha256_file
from onerec.errors import CheckpointError
from onerec.io import atomic_dir, atomic_write_json, read_json
from onerec.model import GeneratorConfig, OneRecGenerator
from onerec.serve import layout
from onerec.tokenizer.trie import PrefixTrie
from onerec.training import load_state_into, read_model_config

# Where a generator run directory may keep its tokenizer (checked in this order).
TOKENIZER_SUBDIRS = ("tokenizer", "semantic_ids")
# onerec.model.artifacts.save_generator writes the item ids the generator was trained on here.
GENERATOR_ITEM_IDS = "item_ids.json"


class HasSemanticIds(Protocol):
    """Anything with ``codes [num_items, C]`` and ``codebook_sizes`` (e.g. the tokenizer)."""

    @property
    def codes(self) -> Any: ...

    @property
    def codebook_sizes(self) -> Any: ...


@dataclass
class SemanticIds:
    """Every item's code tuple (row ``i`` is ``item_idx`` ``i``) and the codebook sizes."""

    codes: np.ndarray  # [num_items, C] int64
    codebook_sizes: list[int]

    @classmethod
    def of(cls, source: HasSemanticIds) -> SemanticIds:
        """From a fitted tokenizer (or any object with ``codes`` and ``codebook_sizes``)."""
        return cls(
            np.asarray(source.codes, dtype=np.int64), [int(s) for s in source.codebook_sizes]
        )

    @classmethod
    def load_tokenizer(cls, directory: str | Path) -> SemanticIds:
        """From a saved ``SemanticTokenizer`` directory (``onerec.tokenizer``)."""
        try:
            from onerec.tokenizer import SemanticTokenizer
        except ImportError:
            raise CheckpointError(
                "this onerec has no onerec.tokenizer.SemanticTokenizer to read "
                f"{directory}; pass semantic_ids=SemanticIds(codes, codebook_sizes) instead"
            ) from None
        return cls.of(SemanticTokenizer.load(directory))

    def trie(self) -> PrefixTrie:
        """The prefix trie of valid code tuples (raises on duplicate tuples)."""
        try:
            return PrefixTrie.from_codes(self.codes, self.codebook_sizes)
        except ValueError as exc:
            raise CheckpointError(f"semantic IDs cannot be served: {exc}") from None

    def tensors(self) -> dict[str, np.ndarray]:
        """What ``generator/semantic_ids.safetensors`` stores: codes plus the trie tables."""
        return {layout.CODES_TENSOR: np.ascontiguousarray(self.codes), **self.trie().tensors()}


def read_generator_config(directory: str | Path) -> GeneratorConfig:
    """The :class:`GeneratorConfig` in a model directory's ``config.json``.

    Accepts the config at the top level or nested under ``"model"`` / ``"generator"`` (run
    directories may store extra run settings beside it).
    """
    raw = read_model_config(directory)
    candidates = [raw] + [
        raw[key] for key in ("model", "generator") if isinstance(raw.get(key), dict)
    ]
    first_error: ValidationError | None = None
    for candidate in candidates:
        try:
            return GeneratorConfig.model_validate(candidate)
        except ValidationError as exc:
            first_error = first_error or exc
    raise CheckpointError(
        f"{Path(directory) / 'config.json'} holds no valid GeneratorConfig: "
        f"{str(first_error).splitlines()[0] if first_error else 'empty'}"
    )


def build_bundle(
    out_dir: str | Path,
    dataset: PreparedDataset,
    *,
    generator_dir: str | Path | None = None,
    semantic_ids: SemanticIds | HasSemanticIds | None = None,
    retrieval_dir: str | Path | None = None,
    user_histories: Sequence[np.ndarray] | None = None,
    name: str | None = None,
    overwrite: bool = True,
) -> Path:
    """Write a service bundle to ``out_dir`` (atomically) and return its path.

    ``semantic_ids`` defaults to the tokenizer directory inside ``generator_dir``;
    ``user_histories`` (per ``user_idx``, item_idx oldest first) defaults to
    ``dataset.sequences()`` — pass the positive-only sequences the generator was trained on
    when the data set logs negative feedback too.
    """
    if generator_dir is None and retrieval_dir is None:
        raise CheckpointError("a bundle needs a generator_dir, a retrieval_dir, or both")
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise CheckpointError(f"{out_dir} exists; pass overwrite=True to replace it")
    items = dataset.items.sort("item_idx")
    histories = list(dataset.sequences() if user_histories is None else user_histories)
    if len(histories) != dataset.num_users:
        raise CheckpointError(
            f"user_histories has {len(histories)} rows; the data set has {dataset.num_users} users"
        )
    for user_idx, history in enumerate(histories):
        history = np.asarray(history)
        if len(history) and (history.min() < 0 or history.max() >= dataset.num_items):
            raise CheckpointError(
                f"user_histories[{user_idx}] holds an item_idx outside 0..{dataset.num_items - 1}"
            )
    parts: dict[str, Any] = {}
    generator: tuple[GeneratorConfig, SemanticIds] | None = None
    if generator_dir is not None:
        generator = _check_generator(Path(generator_dir), semantic_ids, dataset)
        parts[layout.GENERATOR_DIR] = _generator_summary(generator[0])
    if retrieval_dir is not None:
        parts[layout.RETRIEVAL_DIR] = _check_retrieval(Path(retrieval_dir), dataset)

    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        items.write_parquet(tmp / layout.ITEMS_FILE, compression="zstd")
        _user_table(dataset, histories).write_parquet(
            tmp / layout.USER_HISTORIES_FILE, compression="zstd"
        )
        if generator is not None and generator_dir is not None:
            target = tmp / layout.GENERATOR_DIR
            target.mkdir()
            config, ids = generator
            atomic_write_json(target / layout.GENERATOR_CONFIG, config.model_dump())
            shutil.copyfile(
                Path(generator_dir) / layout.GENERATOR_WEIGHTS, target / layout.GENERATOR_WEIGHTS
            )
            save_file(ids.tensors(), str(target / layout.SEMANTIC_IDS_FILE))
        if retrieval_dir is not None:
            shutil.copytree(Path(retrieval_dir), tmp / layout.RETRIEVAL_DIR)
        manifest = {
            "format": layout.BUNDLE_FORMAT,
            "format_version": layout.BUNDLE_VERSION,
            "name": name or f"{dataset.name}-bundle",
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "onerec_version": onerec.__version__,
            "dataset": {
                "name": dataset.name,
                "num_items": dataset.num_items,
                "num_users": dataset.num_users,
            },
            "parts": parts,
            "files": _file_hashes(tmp),
        }
        atomic_write_json(tmp / layout.MANIFEST_FILE, manifest)
    return out_dir


def _check_generator(
    directory: Path, semantic_ids: SemanticIds | HasSemanticIds | None, dataset: PreparedDataset
) -> tuple[GeneratorConfig, SemanticIds]:
    num_items = dataset.num_items
    config = read_generator_config(directory)
    ids_path = directory / GENERATOR_ITEM_IDS
    if ids_path.is_file():  # save_generator records the item ids it was trained on
        trained_on = [str(i) for i in read_json(ids_path)]
        if trained_on != [str(i) for i in dataset.items.sort("item_idx")["item_id"].to_list()]:
            raise CheckpointError(
                f"{directory} was trained on another item list than data set {dataset.name!r} "
                f"({ids_path.name} differs); build the bundle from the data set it was trained on"
            )
    if semantic_ids is None:
        found = [directory / sub for sub in TOKENIZER_SUBDIRS if (directory / sub).is_dir()]
        if not found:
            raise CheckpointError(
                f"{directory} has no tokenizer directory ({' or '.join(TOKENIZER_SUBDIRS)}); "
                "pass semantic_ids= explicitly"
            )
        ids = SemanticIds.load_tokenizer(found[0])
    else:
        ids = (
            semantic_ids if isinstance(semantic_ids, SemanticIds) else SemanticIds.of(semantic_ids)
        )
    if ids.codes.shape[0] != num_items:
        raise CheckpointError(
            f"semantic IDs cover {ids.codes.shape[0]} items; the data set has {num_items} — "
            "tokenize this data set's items"
        )
    if list(ids.codebook_sizes) != list(config.codebook_sizes):
        raise CheckpointError(
            f"semantic IDs have codebook sizes {ids.codebook_sizes}; the generator in "
            f"{directory} was built for {config.codebook_sizes}"
        )
    ids.trie()  # fails on duplicate or out-of-range tuples
    load_state_into(OneRecGenerator(config), directory)  # fails on missing/mismatched weights
    return config, ids


def _generator_summary(config: GeneratorConfig) -> dict[str, Any]:
    return {
        "codebook_sizes": list(config.codebook_sizes),
        "d_model": config.d_model,
        "ffn": config.ffn,
        "num_experts": config.num_experts,
        "max_history": config.max_history,
        "max_session_items": config.max_session_items,
    }


def _check_retrieval(directory: Path, dataset: PreparedDataset) -> dict[str, Any]:
    from onerec.retrieval.artifact import KIND, Retriever

    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{directory} is not a CRM model directory (no config.json)")
    config = read_json(config_path)
    if config.get("kind") != KIND:
        raise CheckpointError(f"{directory} holds a {config.get('kind')!r} model, not a CRM")
    ids_path = directory / "ids.json"
    if not ids_path.is_file():
        raise CheckpointError(f"{directory} has no ids.json (external user/item ids)")
    ids = read_json(ids_path)
    item_ids = [str(i) for i in dataset.items.sort("item_idx")["item_id"].to_list()]
    user_ids = [str(u) for u in dataset.users.sort("user_idx")["user_id"].to_list()]
    if ids.get("item_id") != item_ids:
        raise CheckpointError(
            f"{directory} was trained on another item list than data set {dataset.name!r}; "
            "build the bundle from the data set the CRM was trained on"
        )
    if ids.get("user_id") != user_ids:
        raise CheckpointError(
            f"{directory} was trained on another user list than data set {dataset.name!r}"
        )
    retriever = Retriever(directory, device="cpu")  # loads weights, index and user state
    model = retriever.config
    return {
        "condition": model.condition,
        "history_encoder": model.history_encoder,
        "condition_target": retriever.condition_target,
        "index": retriever.index.config.kind,
        "embed_dim": model.embed_dim,
    }


def _user_table(dataset: PreparedDataset, histories: list[np.ndarray]) -> pl.DataFrame:
    users = dataset.users.sort("user_idx")
    return pl.DataFrame(
        {
            "user_idx": users["user_idx"].cast(pl.Int32),
            "user_id": users["user_id"].cast(pl.Utf8),
            "history": pl.Series(
                "history",
                [np.asarray(h, dtype=np.int64).tolist() for h in histories],
                dtype=pl.List(pl.Int32),
            ),
        }
    )


def _file_hashes(root: Path) -> dict[str, dict[str, Any]]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {
        p.relative_to(root).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in files
    }
