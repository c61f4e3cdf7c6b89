"""``PreparedDataset``: the validated, densely indexed tables every model reads.

On disk a prepared directory holds ``interactions.parquet``, ``items.parquet``,
``users.parquet`` and ``manifest.json`` (schema version, source, row counts, per-file sha256,
feedback columns, id-map notes, validation report, build time). It is written with
:func:`onerec.io.atomic_dir`, so a failure leaves nothing behind, and :meth:`PreparedDataset.load`
checks the schema version and every hash before trusting the files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from onerec.data.schema import (
    FEEDBACK_COLUMNS,
    INTERACTION_DTYPES,
    INTERACTION_FILE,
    ITEM_ID,
    ITEM_IDX,
    ITEMS_FILE,
    MANIFEST_FILE,
    PREPARED_FILES,
    SCHEMA_VERSION,
    TIMESTAMP,
    USER_ID,
    USER_IDX,
    USERS_FILE,
)
from onerec.errors import DataValidationError
from onerec.io import atomic_dir, atomic_write_json, read_json


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class PreparedDataset:
    """Validated interaction, item and user tables with dense indices.

    Attributes:
        interactions: ``user_idx:i32, item_idx:i32, timestamp:i64`` + feedback columns, sorted
            by (user_idx, timestamp), ties in file order.
        items: ``item_idx:i32, item_id:str`` + side columns, one row per item_idx, in order.
        users: ``user_idx:i32, user_id:str`` + side columns, one row per user_idx, in order.
        manifest: the manifest dict (see the module docstring).
        name: data set name.
        path: the prepared directory, or None for a data set prepared in memory.
    """

    interactions: pl.DataFrame
    items: pl.DataFrame
    users: pl.DataFrame
    manifest: dict[str, Any]
    name: str
    path: Path | None = None
    _sequences: list[np.ndarray] | None = field(default=None, repr=False)

    @property
    def num_users(self) -> int:
        """Number of users (``user_idx`` runs over ``0..num_users-1``)."""
        return self.users.height

    @property
    def num_items(self) -> int:
        """Number of items (``item_idx`` runs over ``0..num_items-1``)."""
        return self.items.height

    @property
    def feedback_columns(self) -> list[str]:
        """Feedback columns present in ``interactions``, in canonical order."""
        return [c for c in FEEDBACK_COLUMNS if c in self.interactions.columns]

    def sequences(self) -> list[np.ndarray]:
        """Per ``user_idx``, the int64 ``item_idx`` history in time order (cached)."""
        if self._sequences is None:
            users = self.interactions[USER_IDX].to_numpy()
            # Prepared tables are already sorted; a stable (user, time) sort also makes frames
            # built by hand (simulators, tests) safe. np.lexsort is stable: ties keep row order.
            order = np.lexsort((self.interactions[TIMESTAMP].to_numpy(), users))
            users = users[order]
            items = self.interactions[ITEM_IDX].to_numpy().astype(np.int64)[order]
            counts = np.bincount(users, minlength=self.num_users)
            self._sequences = np.split(items, np.cumsum(counts)[:-1])
        return self._sequences

    def summary(self) -> dict[str, Any]:
        """Counts for display: users, items, interactions, density, feedback columns."""
        n_inter = self.interactions.height
        return {
            "name": self.name,
            "users": self.num_users,
            "items": self.num_items,
            "interactions": n_inter,
            "density": n_inter / max(1, self.num_users * self.num_items),
            "feedback_columns": self.feedback_columns,
            "dropped_duplicate_rows": self.manifest.get("validation", {}).get(
                "dropped_duplicate_rows", 0
            ),
        }

    def save(self, out_dir: str | Path, overwrite: bool = True) -> Path:
        """Write the prepared directory atomically; fills ``manifest['files']`` and ``path``."""
        out_dir = Path(out_dir)
        if out_dir.exists() and not overwrite:
            raise DataValidationError(
                "output directory exists",
                path=str(out_dir),
                hint="choose another --out or allow overwriting",
            )
        with atomic_dir(out_dir) as tmp:
            tables = {
                INTERACTION_FILE: self.interactions,
                ITEMS_FILE: self.items,
                USERS_FILE: self.users,
            }
            files: dict[str, Any] = {}
            for file_name, table in tables.items():
                table.write_parquet(tmp / file_name, compression="zstd", statistics=True)
                files[file_name] = {
                    "sha256": sha256_file(tmp / file_name),
                    "rows": table.height,
                    "bytes": (tmp / file_name).stat().st_size,
                }
            manifest = {**self.manifest, "files": files}
            atomic_write_json(tmp / MANIFEST_FILE, manifest)
        self.manifest = manifest
        self.path = out_dir
        return out_dir

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> PreparedDataset:
        """Read a prepared directory, checking schema version and (``verify``) file hashes."""
        path = Path(path)
        manifest_path = path / MANIFEST_FILE
        if not manifest_path.is_file():
            raise DataValidationError(
                "not a prepared data set (no manifest.json)",
                path=str(path),
                hint="create one with `onerec prepare --out DIR ...`",
            )
        try:
            manifest = read_json(manifest_path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataValidationError(
                f"manifest is not valid JSON ({exc})",
                path=str(manifest_path),
                hint="re-run onerec prepare",
            ) from None
        version = manifest.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DataValidationError(
                f"schema version {version!r} does not match this onerec's {SCHEMA_VERSION}",
                path=str(manifest_path),
                field="schema_version",
                hint="re-run `onerec prepare` with this version of onerec",
            )
        files = manifest.get("files", {})
        for file_name in PREPARED_FILES:
            file_path = path / file_name
            if not file_path.is_file():
                raise DataValidationError(
                    "file is missing", path=str(file_path), hint="re-run onerec prepare"
                )
            expected = files.get(file_name, {}).get("sha256")
            if verify and sha256_file(file_path) != expected:
                raise DataValidationError(
                    "content hash does not match the manifest (the file was changed or damaged)",
                    path=str(file_path),
                    field="sha256",
                    hint="re-run onerec prepare instead of editing prepared files",
                )
        interactions, items, users = (_read_parquet(path / f) for f in PREPARED_FILES)
        _check_columns(interactions, path / INTERACTION_FILE, [USER_IDX, ITEM_IDX, TIMESTAMP])
        _check_columns(items, path / ITEMS_FILE, [ITEM_IDX, ITEM_ID])
        _check_columns(users, path / USERS_FILE, [USER_IDX, USER_ID])
        casts = {c: d for c, d in INTERACTION_DTYPES.items() if c in interactions.columns}
        interactions = interactions.cast(casts)  # type: ignore[arg-type]
        return cls(
            interactions=interactions,
            items=items,
            users=users,
            manifest=manifest,
            name=str(manifest.get("name", path.name)),
            path=path,
        )


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars/pyarrow raise several types for damaged files
        raise DataValidationError(
            f"could not be read as Parquet ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
            path=str(path),
            hint="the file is truncated or corrupt; re-run onerec prepare",
        ) from None


def _check_columns(frame: pl.DataFrame, path: Path, required: list[str]) -> None:
    for column in required:
        if column not in frame.columns:
            raise DataValidationError(
                "required column is missing",
                path=str(path),
                field=column,
                hint="re-run onerec prepare",
            )
