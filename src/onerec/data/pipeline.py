"""From a source description to a :class:`PreparedDataset`: read → validate → index → save.

``prepare_dataset(source, out_dir)`` writes a prepared directory atomically (nothing is left
behind when any step fails). ``load_dataset(name_or_path)`` returns a PreparedDataset for a
prepared directory, a named data set (prepared in memory) or a single interaction file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

import onerec
from onerec.config import StrictModel
from onerec.data.datasets import read_named
from onerec.data.indexing import index_tables
from onerec.data.prepared import PreparedDataset
from onerec.data.raw import RawTables
from onerec.data.readers.kuairand import read_kuairand
from onerec.data.readers.recbole import read_recbole
from onerec.data.readers.sequences import read_sequences
from onerec.data.readers.tabular import attach_side_tables, read_generic
from onerec.data.readers.text import peek_first_line
from onerec.data.schema import FEEDBACK_COLUMNS, MANIFEST_FILE, SCHEMA_VERSION, USER_IDX
from onerec.data.validation import DuplicatePolicy, validate_raw
from onerec.errors import DataValidationError

SourceFormat = Literal["auto", "parquet", "csv", "tsv", "recbole", "sequences", "kuairand"]


class DataSource(StrictModel):
    """Where the data comes from: a named data set, or files plus how to read them.

    Exactly one of ``dataset`` and ``interactions`` must be set.
    """

    dataset: str | None = None
    interactions: Path | None = None
    items: Path | None = None
    users: Path | None = None
    format: SourceFormat = "auto"
    delimiter: str | None = None
    encoding: str = "utf-8"
    user_col: str | None = None
    item_col: str | None = None
    time_col: str | None = None
    rename: dict[str, str] = {}
    duplicates: DuplicatePolicy = "drop"
    data_root: Path | None = None
    name: str | None = None


def detect_format(path: Path) -> str:
    """Guess the source format of an interaction file from its name and first line."""
    lower = path.name.lower().removesuffix(".gz")
    if lower.endswith(".inter"):
        return "recbole"
    if lower.endswith((".parquet", ".pq")):
        return "parquet"
    head = peek_first_line(path)
    tokens = head.split()
    if lower.endswith(".txt") and len(tokens) >= 2 and all(t.isdigit() for t in tokens):
        return "sequences"
    if {"user_id", "video_id", "time_ms"} <= {c.strip() for c in head.split(",")}:
        return "kuairand"
    return "tsv" if lower.endswith((".tsv", ".tab")) else "csv"


def read_source(source: DataSource) -> RawTables:
    """Read ``source`` into :class:`RawTables` (no validation yet)."""
    if (source.dataset is None) == (source.interactions is None):
        raise DataValidationError(
            "give either a named data set or an interactions file (not both, not neither)",
            hint="e.g. --dataset kuairand-demo, or --interactions log.csv",
        )
    if source.dataset is not None:
        return read_named(source.dataset, source.data_root)
    path = Path(source.interactions)  # type: ignore[arg-type]
    fmt = detect_format(path) if source.format == "auto" else source.format
    if fmt == "sequences":
        raw = read_sequences(path, source.encoding)
    elif fmt == "recbole":
        raw = read_recbole(path, source.items, source.users, source.encoding)
    elif fmt == "kuairand":
        raw = read_kuairand(path, source.items, name=path.name.split(".")[0])
    else:
        raw = read_generic(
            path,
            items=source.items,
            users=source.users,
            fmt=source.format if source.format in ("parquet", "csv", "tsv") else "auto",  # type: ignore[arg-type]
            delimiter=source.delimiter,
            encoding=source.encoding,
            user_col=source.user_col,
            item_col=source.item_col,
            time_col=source.time_col,
            rename=source.rename,
        )
    if fmt == "sequences":
        attach_side_tables(raw, source.items, source.users, encoding=source.encoding)
    return raw


def build_dataset(
    raw: RawTables, duplicates: DuplicatePolicy = "drop", name: str | None = None
) -> PreparedDataset:
    """Validate and index ``raw`` into an in-memory :class:`PreparedDataset`."""
    checked, report = validate_raw(raw, duplicates)
    interactions, items, users, id_notes = index_tables(
        checked.interactions, checked.items, checked.users
    )
    lengths = np.bincount(interactions[USER_IDX].to_numpy(), minlength=users.height)
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "onerec_version": onerec.__version__,
        "name": name or raw.name,
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "source": raw.source,
        "counts": {
            "users": users.height,
            "items": items.height,
            "interactions": interactions.height,
        },
        "feedback_columns": [c for c in FEEDBACK_COLUMNS if c in interactions.columns],
        "item_columns": items.columns,
        "user_columns": users.columns,
        "timestamp_unit": report.timestamp_unit,
        "id_maps": id_notes,
        "validation": report.to_dict(),
        "sequence_lengths": {
            "min": int(lengths.min()),
            "median": float(np.median(lengths)),
            "max": int(lengths.max()),
            "users_with_one_interaction": int((lengths == 1).sum()),
            "users_with_fewer_than_3_interactions": int((lengths < 3).sum()),
        },
        "side_table_nulls": {
            "items": _null_counts(items),
            "users": _null_counts(users),
        },
        "stats": raw.stats,
        "ignored_columns": raw.ignored_columns,
        "notes": raw.notes,
    }
    return PreparedDataset(interactions, items, users, manifest, str(manifest["name"]))


def _null_counts(frame: pl.DataFrame) -> dict[str, int]:
    counts = frame.null_count().row(0, named=True)
    return {k: int(v) for k, v in counts.items() if v}


def _as_source(source: DataSource | str | Path, data_root: str | Path | None) -> DataSource:
    if isinstance(source, DataSource):
        if data_root is not None and source.data_root is None:
            return source.model_copy(update={"data_root": Path(data_root)})
        return source
    from onerec.data.datasets import NAMED_DATASETS

    text = str(source)
    if text in NAMED_DATASETS:
        return DataSource(dataset=text, data_root=Path(data_root) if data_root else None)
    return DataSource(interactions=Path(text), data_root=Path(data_root) if data_root else None)


def prepare_dataset(
    source: DataSource | str | Path,
    out_dir: str | Path | None = None,
    *,
    data_root: str | Path | None = None,
    overwrite: bool = True,
) -> PreparedDataset:
    """Read, validate and index ``source``; write it to ``out_dir`` atomically when given.

    ``source`` is a :class:`DataSource`, a named data set (``"amazon-beauty"``) or a path to an
    interaction file. Returns the :class:`PreparedDataset` (with ``path`` set when written).
    """
    spec = _as_source(source, data_root)
    dataset = build_dataset(read_source(spec), spec.duplicates, spec.name)
    if out_dir is not None:
        dataset.save(out_dir, overwrite=overwrite)
    return dataset


def load_dataset(name_or_path: str | Path, data_root: str | Path | None = None) -> PreparedDataset:
    """A :class:`PreparedDataset` from a prepared directory, a named data set or a file.

    Named data sets and files are prepared in memory (nothing is written).
    """
    path = Path(name_or_path)
    if path.is_dir():
        if (path / MANIFEST_FILE).is_file():
            return PreparedDataset.load(path)
        raise DataValidationError(
            "directory is not a prepared data set (no manifest.json)",
            path=str(path),
            hint="prepare it first with `onerec prepare --out DIR ...`, or give a named data set",
        )
    return prepare_dataset(name_or_path, None, data_root=data_root)
