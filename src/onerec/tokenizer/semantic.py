"""``SemanticTokenizer``: items ↔ unique semantic-ID tuples, with a prefix trie.

Codes are ``[N, L+1]``: L residual k-means levels plus one **disambiguation level**. Items that
share an L-tuple are numbered ``0, 1, …`` within their group in ascending ``item_idx`` order; the
disambiguation codebook size is the largest group (1 when no tuple is shared). Every item gets a
code there — also items alone in their group (code 0) — so all IDs have the same length and
the decoder always emits L+1 tokens.

Catalogue items keep the codes of the fit (that is where the balance comes from). New items go
through :meth:`SemanticTokenizer.encode_new` (nearest centroid per level) and
:meth:`SemanticTokenizer.add_items`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

import onerec
from onerec.errors import CheckpointError, DataValidationError, OnerecError
from onerec.io import atomic_dir, atomic_write_json, read_json
from onerec.tokenizer.config import TokenizerConfig
from onerec.tokenizer.diagnostics import compute_diagnostics
from onerec.tokenizer.kmeans import ResidualKMeans, encode_residual, fit_residual_kmeans
from onerec.tokenizer.trie import PrefixTrie

FORMAT_NAME = "onerec.semantic_tokenizer"
FORMAT_VERSION = 1
META_FILE = "tokenizer.json"
TENSORS_FILE = "tokenizer.safetensors"


def disambiguate(level_codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Append the disambiguation level: the rank of each item (by row) within its L-tuple group.

    Returns ``(codes [N, L+1], disambiguation_size)``. Rows of a group keep their relative
    order, so appending rows never changes the codes of the rows already there.
    """
    if len(level_codes) == 0:
        return np.zeros((0, level_codes.shape[1] + 1), dtype=np.int64), 1
    _, inverse = np.unique(level_codes, axis=0, return_inverse=True)
    group = inverse.reshape(-1)
    order = np.argsort(group, kind="stable")  # groups together, rows ascending inside
    sorted_group = group[order]
    rank_sorted = np.arange(len(order)) - np.searchsorted(sorted_group, sorted_group, "left")
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    codes = np.concatenate([level_codes.astype(np.int64), rank[:, None]], axis=1)
    return codes, int(rank.max()) + 1


def _check_embeddings(embeddings: np.ndarray, what: str = "embeddings") -> np.ndarray:
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[0] == 0 or emb.shape[1] == 0:
        raise DataValidationError(
            f"{what} must be a non-empty 2-D array [items, dim], got {emb.shape}"
        )
    if not np.issubdtype(emb.dtype, np.number):
        raise DataValidationError(f"{what} must be numeric, got dtype {emb.dtype}")
    bad = np.flatnonzero(~np.isfinite(emb).all(1))
    if len(bad):
        raise DataValidationError(
            f"{what} has {len(bad)} rows with NaN/inf values (first rows: {bad[:5].tolist()})",
            hint="fix or drop those items' embeddings before tokenizing",
        )
    return np.ascontiguousarray(emb, dtype=np.float32)


@dataclass
class SemanticTokenizer:
    """Unique semantic IDs for a catalogue. Build with :meth:`fit`, or :meth:`load` a saved one."""

    config: TokenizerConfig
    codes: np.ndarray  # [N, L+1] int64, row = item_idx
    centroids: np.ndarray  # [L, K, d] float32
    trie: PrefixTrie
    diagnostics_: dict[str, Any] = field(default_factory=dict)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        embeddings: np.ndarray,
        item_idx: Sequence[int] | np.ndarray | None = None,
        config: TokenizerConfig | None = None,
        show_progress: bool = False,
    ) -> SemanticTokenizer:
        """Fit on ``embeddings [N, d]``; row ``r`` belongs to item ``item_idx[r]``.

        ``item_idx`` must be a permutation of ``0..N-1`` (default: row order).
        """
        config = config or TokenizerConfig()
        emb = _check_embeddings(embeddings)
        n = len(emb)
        if item_idx is not None:
            idx = np.asarray(item_idx, dtype=np.int64)
            if idx.shape != (n,) or not np.array_equal(np.sort(idx), np.arange(n)):
                raise DataValidationError(
                    f"item_idx must be a permutation of 0..{n - 1} (one per embedding row)"
                )
            ordered = np.empty_like(emb)
            ordered[idx] = emb
            emb = ordered
        if n < config.codebook_size:
            raise OnerecError(
                f"codebook size {config.codebook_size} exceeds the number of items {n}; "
                "use a smaller codebook size"
            )
        start = time.perf_counter()
        fitted = _fit_with_progress(emb, config, show_progress)
        codes, disamb_size = disambiguate(fitted.codes)
        trie = PrefixTrie.from_codes(codes, [config.codebook_size] * config.levels + [disamb_size])
        fit_seconds = time.perf_counter() - start
        diagnostics = compute_diagnostics(emb, fitted.codes, fitted.centroids, codes)
        diagnostics.update(method=config.method, fit_seconds=fit_seconds)
        return cls(
            config=config,
            codes=codes,
            centroids=fitted.centroids,
            trie=trie,
            diagnostics_=diagnostics,
        )

    # -- shape ------------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        return len(self.codes)

    @property
    def num_levels(self) -> int:
        """L, the k-means levels (without the disambiguation level)."""
        return self.centroids.shape[0]

    @property
    def num_code_levels(self) -> int:
        """L + 1: tokens per item ID."""
        return self.codes.shape[1]

    @property
    def codebook_sizes(self) -> list[int]:
        """Codes per level; the last entry is the disambiguation size."""
        return list(self.trie.codebook_sizes)

    @property
    def embedding_dim(self) -> int:
        return self.centroids.shape[2]

    # -- lookups ----------------------------------------------------------------------------
    def item_to_codes(self, item_idx: int) -> tuple[int, ...]:
        """The unique ID tuple of ``item_idx``."""
        if not 0 <= int(item_idx) < self.num_items:
            raise IndexError(f"item_idx {item_idx} outside 0..{self.num_items - 1}")
        return tuple(int(c) for c in self.codes[int(item_idx)])

    def codes_to_item(self, codes: Sequence[int]) -> int | None:
        """The item a full ID names, or ``None`` when no item has it."""
        return self.trie.lookup([int(c) for c in codes])

    def diagnostics(self) -> dict[str, Any]:
        """Diagnostics of the fit (see :mod:`onerec.tokenizer.diagnostics`)."""
        return self.diagnostics_

    # -- new items --------------------------------------------------------------------------
    def encode_new(self, embeddings: np.ndarray) -> np.ndarray:
        """Semantic codes ``[M, L]`` for items that were not in the fit: nearest centroid per level.

        This path is not balanced (re-encoding the catalogue this way gives clusters ~2× the
        mean); catalogue items keep their fitted codes. No disambiguation code is assigned here
        — use :meth:`add_items` to give new items full IDs.
        """
        emb = _check_embeddings(embeddings, "new-item embeddings")
        if emb.shape[1] != self.embedding_dim:
            raise DataValidationError(
                f"new-item embeddings have dimension {emb.shape[1]}, the tokenizer expects "
                f"{self.embedding_dim}"
            )
        return encode_residual(emb, self.centroids)

    def add_items(self, embeddings: np.ndarray, allow_grow: bool = False) -> SemanticTokenizer:
        """A new tokenizer with ``M`` items appended as ``item_idx N..N+M-1``.

        Their L-tuples come from :meth:`encode_new`; each takes the next free disambiguation
        code of its group. Existing IDs never change. When a group would need a code beyond the
        disambiguation size the call fails unless ``allow_grow`` (downstream models sized to
        the old vocabulary must then be resized).
        """
        new_level = self.encode_new(embeddings)
        level_codes = np.concatenate([self.codes[:, : self.num_levels], new_level])
        codes, needed = disambiguate(level_codes)
        if not np.array_equal(codes[: self.num_items], self.codes):
            raise OnerecError("existing IDs are not in canonical disambiguation order")
        size = self.codebook_sizes[-1]
        if needed > size and not allow_grow:
            raise OnerecError(
                f"adding these items needs {needed} disambiguation codes but the tokenizer has "
                f"{size}; pass allow_grow=True (and resize models built on this vocabulary)"
            )
        sizes = self.codebook_sizes[:-1] + [max(size, needed)]
        diagnostics = dict(self.diagnostics_, added_items=int(len(new_level)))
        return SemanticTokenizer(
            self.config, codes, self.centroids, PrefixTrie.from_codes(codes, sizes), diagnostics
        )

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``tokenizer.json`` + ``tokenizer.safetensors`` into directory ``path`` atomically."""
        path = Path(path)
        meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "onerec_version": onerec.__version__,
            "config": self.config.model_dump(),
            "num_items": self.num_items,
            "codebook_sizes": self.codebook_sizes,
            "embedding_dim": self.embedding_dim,
            "diagnostics": self.diagnostics_,
        }
        tensors = {"codes": self.codes, "centroids": self.centroids, **self.trie.tensors()}
        with atomic_dir(path) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp / TENSORS_FILE)
            atomic_write_json(tmp / META_FILE, meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SemanticTokenizer:
        """Read a directory written by :meth:`save`; checks format, version and consistency."""
        path = Path(path)
        meta_path, tensor_path = path / META_FILE, path / TENSORS_FILE
        for needed in (meta_path, tensor_path):
            if not needed.is_file():
                raise CheckpointError(
                    f"{path} is not a saved tokenizer ({needed.name} is missing); "
                    "create one with `onerec tokenize --out DIR`"
                )
        meta = read_json(meta_path)
        if meta.get("format") != FORMAT_NAME:
            raise CheckpointError(
                f"{meta_path}: format {meta.get('format')!r} is not {FORMAT_NAME!r}"
            )
        if meta.get("version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{meta_path}: tokenizer format version {meta.get('version')} cannot be read by "
                f"this onerec (reads version {FORMAT_VERSION}); re-create it with `onerec tokenize`"
            )
        arrays = load_file(tensor_path)
        trie = PrefixTrie.from_tensors(arrays)
        codes = arrays["codes"].astype(np.int64)
        try:
            rebuilt = PrefixTrie.from_codes(codes, trie.codebook_sizes)
        except ValueError as exc:
            raise CheckpointError(f"{tensor_path}: stored codes are invalid ({exc})") from None
        if not rebuilt.equals(trie) or meta.get("num_items") != len(codes):
            raise CheckpointError(f"{tensor_path}: codes, trie and {META_FILE} disagree (corrupt?)")
        return cls(
            config=TokenizerConfig.model_validate(meta["config"]),
            codes=codes,
            centroids=arrays["centroids"].astype(np.float32),
            trie=trie,
            diagnostics_=meta.get("diagnostics", {}),
        )


def _fit_with_progress(emb: np.ndarray, config: TokenizerConfig, show: bool) -> ResidualKMeans:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not show,
        transient=True,
    ) as progress:
        task = progress.add_task(f"{config.method} residual k-means", total=config.levels)
        return fit_residual_kmeans(emb, config, on_step=lambda _: progress.advance(task))
