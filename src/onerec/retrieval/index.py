"""Approximate nearest-neighbour index over item vectors (faiss, inner product).

Kinds: ``flat`` (exact ``IndexFlatIP``), ``hnsw`` (``IndexHNSWFlat`` with inner product) and
``ivf`` (``IndexIVFFlat`` with inner product). Row ``i`` of the index is ``item_idx`` ``i``.
Saved as ``item_index.faiss`` (faiss's own serialisation, not pickle) plus ``item_index.json``
(kind and parameters), written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, cast

import faiss
import numpy as np
from pydantic import Field

from onerec.config import StrictModel
from onerec.errors import CheckpointError
from onerec.io import atomic_write_bytes, atomic_write_json, read_json

INDEX_FILE = "item_index.faiss"
INDEX_META = "item_index.json"


class IndexConfig(StrictModel):
    """Which faiss index to build and its search-quality knobs."""

    kind: Literal["flat", "hnsw", "ivf"] = "hnsw"
    hnsw_m: int = Field(default=32, ge=4, description="graph degree")
    ef_construction: int = Field(default=200, ge=8)
    ef_search: int = Field(default=256, ge=1, description="candidate list at query time (≥ k)")
    ivf_nlist: int = Field(default=0, ge=0, description="IVF cells; 0 = 4·sqrt(num_items)")
    ivf_nprobe: int = Field(default=16, ge=1)


class ItemIndex:
    """Inner-product search over ``[num_items, d]`` float32 vectors."""

    def __init__(self, index: faiss.Index, config: IndexConfig) -> None:
        self.index = index
        self.config = config
        self._apply_search_params()

    @classmethod
    def build(cls, vectors: np.ndarray, config: IndexConfig | None = None) -> ItemIndex:
        """Build over ``vectors [num_items, d]``; row i is item i."""
        config = config or IndexConfig()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        index: faiss.Index
        if config.kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif config.kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = config.ef_construction
            index = hnsw
        else:
            nlist = config.ivf_nlist or max(1, min(n // 39, int(4 * np.sqrt(n))))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
        index.add(vectors)
        return cls(index, config)

    def _apply_search_params(self) -> None:
        if self.config.kind == "hnsw":
            _hnsw(self.index).efSearch = self.config.ef_search
        elif self.config.kind == "ivf":
            faiss.extract_index_ivf(self.index).nprobe = self.config.ivf_nprobe

    @property
    def num_items(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``queries [B, d]`` → ``(scores [B, k], item_idx [B, k])``; ``-1`` fills short rows."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = min(k, self.num_items)
        if self.config.kind == "hnsw" and self.config.ef_search < k:
            _hnsw(self.index).efSearch = k  # HNSW returns at most efSearch
        scores, items = self.index.search(queries, k)
        self._apply_search_params()
        return scores, items

    def search_excluding(
        self, query: np.ndarray, k: int, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` for one query, skipping ``exclude`` items (asks for ``k + |exclude|``)."""
        extra = 0 if exclude is None else len(exclude)
        scores, items = self.search(query.reshape(1, -1), k + extra)
        keep = items[0] >= 0
        if exclude is not None and extra:
            keep &= ~np.isin(items[0], exclude)
        return scores[0][keep][:k], items[0][keep][:k]

    def save(self, directory: str | Path) -> None:
        """Write ``item_index.faiss`` + ``item_index.json`` into ``directory`` atomically."""
        directory = Path(directory)
        blob = faiss.serialize_index(self.index)  # numpy uint8 array
        atomic_write_bytes(directory / INDEX_FILE, blob.tobytes())
        meta = {"config": self.config.model_dump(), "num_items": self.num_items, "dim": self.dim}
        atomic_write_json(directory / INDEX_META, meta)

    @classmethod
    def load(cls, directory: str | Path) -> ItemIndex:
        """Read what :meth:`save` wrote; raises :class:`CheckpointError` when absent/corrupt."""
        directory = Path(directory)
        path, meta_path = directory / INDEX_FILE, directory / INDEX_META
        if not path.is_file() or not meta_path.is_file():
            raise CheckpointError(
                f"{directory} has no item index ({INDEX_FILE} + {INDEX_META}); "
                "re-run onerec train-retrieval or build one with ItemIndex.build(...).save(dir)"
            )
        meta = read_json(meta_path)
        try:
            index = faiss.deserialize_index(np.frombuffer(path.read_bytes(), dtype=np.uint8))
        except RuntimeError as exc:
            raise CheckpointError(f"{path} is not a readable faiss index: {exc}") from None
        if int(index.ntotal) != int(meta["num_items"]) or int(index.d) != int(meta["dim"]):
            raise CheckpointError(f"{path} does not match {meta_path} (size or dimension differ)")
        return cls(index, IndexConfig.model_validate(meta["config"]))


def _hnsw(index: faiss.Index) -> Any:
    """The HNSW graph parameters of an ``IndexHNSWFlat`` (faiss's SWIG types are untyped)."""
    return cast(Any, faiss.downcast_index(index)).hnsw


def exact_topk(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Exact inner-product top-``k`` item indices ``[B, k]`` (faiss flat), the recall reference."""
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return flat.search(np.ascontiguousarray(queries, dtype=np.float32), k)[1]


def recall_vs_exact(
    index: ItemIndex, vectors: np.ndarray, queries: np.ndarray, k: int = 100
) -> float:
    """Mean fraction of the exact top-``k`` that the index returns in its own top-``k``."""
    truth = exact_topk(vectors, queries, k)
    found = index.search(queries, k)[1]
    hits = [len(np.intersect1d(t, f[f >= 0])) for t, f in zip(truth, found, strict=True)]
    return float(np.mean(hits) / k)
