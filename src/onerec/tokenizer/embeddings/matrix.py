"""User-given item-embedding matrices: ``.npy``, ``.safetensors`` or Parquet.

- ``.npy``: a 2-D array, row ``i`` = ``item_idx`` ``i``.
- ``.safetensors``: the same, from the tensor ``tensor_name`` (or the only 2-D tensor) — e.g. a
  trained model's item-embedding table. A table with exactly one extra row is taken to end with
  onerec's padding row (``item_idx == num_items``), which is dropped.
- ``.parquet``: an ``item_id`` column plus either one list/array column holding the vector or
  several numeric columns (one per dimension). Rows are matched to the catalogue **by item
  id**; ids in the file but not in the catalogue are ignored.

Every check fails with a :class:`DataValidationError` naming the file and what is wrong:
missing item ids (the first five), duplicate ids, wrong row count or dimension, NaN/inf rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from safetensors.numpy import load_file

from onerec.errors import DataValidationError

SUFFIXES = (".npy", ".safetensors", ".parquet")


def read_embedding_file(
    path: str | Path, tensor_name: str | None = None, id_column: str = "item_id"
) -> tuple[list[str] | None, np.ndarray]:
    """``(item ids or None, matrix [rows, d] float32)`` as stored; ids only for Parquet."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError("embedding file does not exist", path=str(path))
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            matrix = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataValidationError(
                f"not a plain numeric .npy array ({exc})", path=str(path)
            ) from None
        return None, _as_matrix(matrix, path)
    if suffix == ".safetensors":
        arrays = load_file(path)
        if tensor_name is None:
            two_d = [k for k, v in arrays.items() if v.ndim == 2]
            if len(two_d) != 1:
                raise DataValidationError(
                    f"holds {len(two_d)} 2-D tensors {sorted(two_d)}; name one with tensor_name",
                    path=str(path),
                )
            tensor_name = two_d[0]
        if tensor_name not in arrays:
            raise DataValidationError(
                f"has no tensor {tensor_name!r} (it has {sorted(arrays)})", path=str(path)
            )
        return None, _as_matrix(arrays[tensor_name], path)
    if suffix == ".parquet":
        return _read_parquet(path, id_column)
    raise DataValidationError(
        f"unknown embedding file type {suffix!r}; use one of {', '.join(SUFFIXES)}", path=str(path)
    )


def load_embedding_matrix(
    path: str | Path,
    item_ids: Sequence[str] | None = None,
    *,
    expected_dim: int | None = None,
    tensor_name: str | None = None,
    id_column: str = "item_id",
) -> np.ndarray:
    """Embeddings ``[N, d]`` float32 in catalogue order (row = item_idx), validated.

    ``item_ids`` are the catalogue's ids in ``item_idx`` order (``None``: take the file as is).
    """
    path = Path(path)
    ids, matrix = read_embedding_file(path, tensor_name, id_column)
    if item_ids is not None:
        wanted = [str(i) for i in item_ids]
        if ids is None:
            if path.suffix.lower() == ".safetensors" and len(matrix) == len(wanted) + 1:
                matrix = matrix[:-1]  # trailing padding row of an onerec embedding table
            if len(matrix) != len(wanted):
                raise DataValidationError(
                    f"has {len(matrix)} rows but the catalogue has {len(wanted)} items "
                    "(row i must be item_idx i)",
                    path=str(path),
                )
        else:
            matrix = _align_by_id(ids, matrix, wanted, path)
    if expected_dim is not None and matrix.shape[1] != expected_dim:
        raise DataValidationError(
            f"vectors have dimension {matrix.shape[1]}, expected {expected_dim}", path=str(path)
        )
    bad = np.flatnonzero(~np.isfinite(matrix).all(1))
    if len(bad):
        names = [str(item_ids[i]) if item_ids is not None else str(i) for i in bad[:5]]
        raise DataValidationError(
            f"{len(bad)} rows hold NaN/inf values (first item ids: {', '.join(names)})",
            path=str(path),
            hint="fix or drop those embeddings",
        )
    return matrix


def _as_matrix(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise DataValidationError(
            f"must hold a non-empty 2-D matrix, got shape {array.shape}", path=str(path)
        )
    if not np.issubdtype(array.dtype, np.number):
        raise DataValidationError(f"must be numeric, got dtype {array.dtype}", path=str(path))
    return np.ascontiguousarray(array, dtype=np.float32)


def _read_parquet(path: Path, id_column: str) -> tuple[list[str], np.ndarray]:
    frame = pl.read_parquet(path)
    if id_column not in frame.columns:
        raise DataValidationError(
            f"has no {id_column!r} column (columns: {frame.columns})",
            path=str(path),
            field=id_column,
        )
    if frame.height == 0:
        raise DataValidationError("holds no rows", path=str(path))
    ids = frame[id_column].cast(pl.Utf8).to_list()
    value_cols = [c for c in frame.columns if c != id_column]
    if not value_cols:
        raise DataValidationError("has no vector column next to the id column", path=str(path))
    first = frame[value_cols[0]]
    if len(value_cols) == 1 and isinstance(first.dtype, (pl.List, pl.Array)):
        first = first.cast(pl.List(pl.Float32))
        lengths = first.list.len()
        if first.null_count():
            row = int(first.is_null().arg_true()[0])
            raise DataValidationError(
                "vector is null",
                path=str(path),
                row=row,
                field=value_cols[0],
                hint=f"item id {ids[row]}",
            )
        if lengths.n_unique() > 1:
            mode = int(lengths.mode()[0])
            row = int((lengths != mode).arg_true()[0])
            raise DataValidationError(
                f"vectors have different lengths ({lengths[row]} here, mostly {mode})",
                path=str(path),
                row=row,
                field=value_cols[0],
                hint=f"item id {ids[row]}",
            )
        if int(lengths[0]) == 0:
            raise DataValidationError(
                "holds no vectors (empty table or empty lists)", path=str(path)
            )
        # nulls inside a vector become NaN and are reported by the NaN check
        matrix = first.explode().to_numpy().astype(np.float32).reshape(len(ids), -1)
    else:
        non_numeric = [c for c in value_cols if not frame[c].dtype.is_numeric()]
        if non_numeric:
            raise DataValidationError(
                f"columns {non_numeric} are not numeric; give one list column or numeric "
                "columns (one per dimension)",
                path=str(path),
                field=non_numeric[0],
            )
        matrix = frame.select(value_cols).cast(pl.Float32).to_numpy()  # nulls become NaN
    return ids, _as_matrix(matrix, path)


def _align_by_id(ids: list[str], matrix: np.ndarray, wanted: list[str], path: Path) -> np.ndarray:
    position: dict[str, int] = {}
    duplicates = []
    for row, item_id in enumerate(ids):
        if item_id in position:
            duplicates.append(item_id)
        position[item_id] = row
    if duplicates:
        raise DataValidationError(
            f"{len(duplicates)} duplicate item ids (first: {', '.join(duplicates[:5])})",
            path=str(path),
            field="item_id",
        )
    missing = [i for i in wanted if i not in position]
    if missing:
        raise DataValidationError(
            f"no embedding for {len(missing)} of {len(wanted)} catalogue items "
            f"(first item ids: {', '.join(missing[:5])})",
            path=str(path),
            field="item_id",
            hint="every catalogue item needs a vector",
        )
    return matrix[np.asarray([position[i] for i in wanted], dtype=np.int64)]
