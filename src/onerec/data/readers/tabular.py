"""Generic tables: Parquet and CSV/TSV (delimiter detected from the header line).

``read_table`` returns the file as a frame with a ``LINE_COLUMN`` (text: line number, header =
1; Parquet: 1-based row number). ``read_generic`` maps the interaction columns to canonical
names (``--user-col/--item-col/--time-col``, feedback renames) and reads optional item and
user side tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import polars as pl

from onerec.data.columns import (
    ITEM_ALIASES,
    USER_ALIASES,
    map_interaction_columns,
    map_side_columns,
)
from onerec.data.raw import RawTables
from onerec.data.readers.text import decode_text, read_bytes, read_delimited_text
from onerec.data.schema import ITEM_ID, LINE_COLUMN, TIMESTAMP, USER_ID
from onerec.errors import DataValidationError

TableFormat = Literal["auto", "parquet", "csv", "tsv"]
PARQUET_MAGIC = b"PAR1"


def table_format(path: Path, fmt: TableFormat = "auto") -> str:
    """``parquet``, ``csv`` or ``tsv`` from the requested format or the file name."""
    if fmt != "auto":
        return fmt
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    return "csv"


def read_parquet_checked(path: Path) -> pl.DataFrame:
    """Read a Parquet file; a truncated or corrupt file gives a clear error."""
    if not path.is_file():
        raise DataValidationError("file does not exist", path=str(path), hint="check the path")
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 4))
        tail = fh.read(4)
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        problem = "does not start with" if head != PARQUET_MAGIC else "does not end with"
        raise DataValidationError(
            f"is not a complete Parquet file (it {problem} the PAR1 marker; {size} bytes)",
            path=str(path),
            hint="the file is truncated or not Parquet; export it again (or use --format csv)",
        )
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars/pyarrow raise several types for damaged files
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataValidationError(
            f"could not be read as Parquet ({message})",
            path=str(path),
            hint="the file is corrupt; export it again",
        ) from None
    return frame.with_columns(pl.int_range(1, frame.height + 1, dtype=pl.Int64).alias(LINE_COLUMN))


def read_table(
    path: str | Path,
    fmt: TableFormat = "auto",
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> pl.DataFrame:
    """Read a Parquet/CSV/TSV file (gzip allowed for text) with a ``LINE_COLUMN``."""
    path = Path(path)
    kind = table_format(path, fmt)
    if kind == "parquet":
        return read_parquet_checked(path)
    if delimiter is None and kind == "tsv":
        delimiter = "\t"
    elif delimiter is None and fmt == "csv":
        delimiter = ","
    data = read_bytes(path)
    if data[:4] == PARQUET_MAGIC:
        raise DataValidationError(
            f"is a Parquet file, not {kind.upper()} text",
            path=str(path),
            hint="use --format parquet (or auto)",
        )
    return read_delimited_text(decode_text(data, path, encoding), path, delimiter)


def read_generic(
    interactions: str | Path,
    *,
    items: str | Path | None = None,
    users: str | Path | None = None,
    fmt: TableFormat = "auto",
    delimiter: str | None = None,
    encoding: str = "utf-8",
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    rename: Mapping[str, str] | None = None,
) -> RawTables:
    """Read a generic interaction table (and optional side tables) into :class:`RawTables`."""
    path = Path(interactions)
    frame = read_table(path, fmt, delimiter, encoding)
    frame, ignored, row_order = map_interaction_columns(
        frame, str(path), user_col=user_col, item_col=item_col, time_col=time_col, rename=rename
    )
    if row_order:
        frame = frame.with_columns(pl.int_range(0, frame.height, dtype=pl.Int64).alias(TIMESTAMP))
    kind = table_format(path, fmt)
    raw = RawTables(
        interactions=frame,
        name=path.name.split(".")[0],
        source={"format": kind, "files": [str(path)]},
        interactions_path=str(path),
        timestamp_unit="position" if row_order else "auto",
        ignored_columns=ignored,
    )
    if row_order:
        raw.notes.append("no time column: the row order of the file is used as time")
    attach_side_tables(raw, items, users, item_col=item_col, user_col=user_col, encoding=encoding)
    return raw


def attach_side_tables(
    raw: RawTables,
    items: str | Path | None,
    users: str | Path | None,
    *,
    item_col: str | None = None,
    user_col: str | None = None,
    encoding: str = "utf-8",
) -> RawTables:
    """Read optional item/user side tables (any table format) into ``raw`` (in place)."""
    if items is not None:
        items_path = Path(items)
        side = read_table(items_path, "auto", None, encoding)
        raw.items = map_side_columns(side, str(items_path), ITEM_ID, item_col, ITEM_ALIASES)
        raw.items_path = str(items_path)
        raw.source.setdefault("files", []).append(str(items_path))
    if users is not None:
        users_path = Path(users)
        side = read_table(users_path, "auto", None, encoding)
        raw.users = map_side_columns(side, str(users_path), USER_ID, user_col, USER_ALIASES)
        raw.users_path = str(users_path)
        raw.source.setdefault("files", []).append(str(users_path))
    return raw
