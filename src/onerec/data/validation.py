"""Type and sanity checks on :class:`RawTables`, with errors that name file, row and field.

``validate_raw`` turns canonically named but untyped tables into typed ones:

- ids: present and non-empty (strings; integral numbers are written without ``.0``);
- timestamps: numbers (or dates), finite, non-negative; epoch values must fall between 1990
  and 2100, and the unit (seconds or milliseconds) is detected from their magnitude; values
  below 1e8 are taken as ordinal positions (only their order matters);
- feedback: numbers, finite, no missing values; flags 0/1; durations 0 … one week in ms;
- exact duplicate rows: dropped with a warning and counted (``duplicates="drop"``, the default —
  the real KuaiRand-1K log has one genuine duplicate), or an error (``"error"``), or kept;
- side tables: unique ids; every interaction's item (user) must be in a given item (user) table;
- empty input is an error.

Row numbers in messages are 1-based line numbers of the source text file (header = line 1), or
1-based row numbers for Parquet.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from onerec.data.raw import RawTables
from onerec.data.schema import (
    BINARY_FEEDBACK,
    DURATION_FEEDBACK,
    EPOCH_1990_S,
    EPOCH_2100_S,
    FEEDBACK_COLUMNS,
    FEEDBACK_DTYPES,
    ITEM_ID,
    LINE_COLUMN,
    MAX_DURATION_MS,
    TIMESTAMP,
    USER_ID,
)
from onerec.errors import DataValidationError

DuplicatePolicy = Literal["drop", "error", "keep"]
ORDINAL_LIMIT = 100_000_000  # timestamps all below this are positions/ordinals, not epoch times


class DuplicateRowsWarning(UserWarning):
    """Exact duplicate interaction rows were dropped."""


@dataclass
class ValidationReport:
    """What validation found and changed; copied into the manifest."""

    timestamp_unit: str = "auto"
    dropped_duplicate_rows: int = 0
    duplicate_lines: list[int] = field(default_factory=list)
    side_items_without_interactions: int = 0
    side_users_without_interactions: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "timestamp_unit": self.timestamp_unit,
            "dropped_duplicate_rows": self.dropped_duplicate_rows,
            "duplicate_lines_first_10": self.duplicate_lines[:10],
            "side_items_without_interactions": self.side_items_without_interactions,
            "side_users_without_interactions": self.side_users_without_interactions,
            "warnings": self.warnings,
        }


def _first(frame: pl.DataFrame, mask: pl.Series, column: str) -> tuple[int | None, Any]:
    """(line, value) of the first row where ``mask`` is true."""
    index = int(mask.arg_true()[0])
    line = int(frame[LINE_COLUMN][index]) if LINE_COLUMN in frame.columns else index + 1
    return line, frame[column][index]


def _fail(
    frame: pl.DataFrame, mask: pl.Series, column: str, path: str, what: str, hint: str
) -> None:
    if mask.any():
        count = int(mask.sum())
        line, value = _first(frame, mask, column)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # show 5000000000, not 5000000000.0
        more = f" ({count} rows in all)" if count > 1 else ""
        raise DataValidationError(
            f"{what}: {value!r}{more}", path=path, row=line, field=column, hint=hint
        )


def _to_float(frame: pl.DataFrame, column: str, path: str, hint: str) -> pl.Series:
    """``column`` as Float64; raises on missing or non-numeric values and on NaN/inf."""
    series = frame[column]
    _fail(frame, series.is_null(), column, path, "missing value", hint)
    if series.dtype == pl.String:
        numbers = series.str.strip_chars().cast(pl.Float64, strict=False)
        _fail(frame, numbers.is_null(), column, path, "not a number", hint)
    elif series.dtype.is_numeric() or series.dtype == pl.Boolean:
        numbers = series.cast(pl.Float64)
    else:
        raise DataValidationError(
            f"has type {series.dtype}, expected numbers", path=path, field=column, hint=hint
        )
    _fail(
        frame.with_columns(numbers.alias(column)),
        numbers.is_nan(),
        column,
        path,
        "NaN is not allowed",
        hint,
    )
    _fail(
        frame.with_columns(numbers.alias(column)),
        numbers.is_infinite(),
        column,
        path,
        "infinite value is not allowed",
        hint,
    )
    return numbers


def coerce_ids(frame: pl.DataFrame, column: str, path: str) -> pl.Series:
    """Ids as strings: missing or empty ids are an error; integral floats lose their ``.0``."""
    series = frame[column]
    hint = "every row needs an id; remove the row or fill in the id"
    if not (
        series.dtype.is_integer()
        or series.dtype.is_float()
        or series.dtype in (pl.String, pl.Categorical)
    ):
        raise DataValidationError(
            f"ids have type {series.dtype}; expected strings or integers",
            path=path,
            field=column,
            hint="store ids as plain strings or integers",
        )
    _fail(frame, series.is_null(), column, path, "missing id", hint)
    if series.dtype.is_float():
        _fail(
            frame,
            ~series.is_finite() | (series != series.floor()),
            column,
            path,
            "id is not an integer",
            hint,
        )
        series = series.cast(pl.Int64)
    series = series.cast(pl.String)
    if frame[column].dtype == pl.String:
        series = series.str.strip_chars()
    _fail(frame.with_columns(series.alias(column)), series == "", column, path, "empty id", hint)
    return series


def detect_timestamp_unit(values: np.ndarray) -> str:
    """``"s"``, ``"ms"``, ``"ordinal"`` or ``"unknown"`` from the magnitude of the median value."""
    median = float(np.median(values))
    if np.max(values) < ORDINAL_LIMIT:
        return "ordinal"
    if EPOCH_1990_S <= median <= EPOCH_2100_S:
        return "s"
    if EPOCH_1990_S * 1000 <= median <= EPOCH_2100_S * 1000:
        return "ms"
    if EPOCH_1990_S * 1_000_000 <= median <= EPOCH_2100_S * 1_000_000:
        return "us"
    return "unknown"


def coerce_timestamps(frame: pl.DataFrame, path: str, unit: str) -> tuple[pl.Series, str]:
    """Timestamps as Int64 plus their unit; see the module docstring for the rules."""
    series = frame[TIMESTAMP]
    hint = "timestamps must be unix seconds or milliseconds (or ISO dates)"
    if series.dtype in (pl.Date, pl.Datetime) or isinstance(series.dtype, pl.Datetime):
        _fail(frame, series.is_null(), TIMESTAMP, path, "missing value", hint)
        series = series.cast(pl.Datetime("ms")).dt.epoch("ms")
        unit = "ms"
    elif (
        series.dtype == pl.String
        and series.str.strip_chars().cast(pl.Float64, strict=False).is_null().any()
    ):
        _fail(frame, series.is_null(), TIMESTAMP, path, "missing value", hint)
        try:
            parsed = series.str.strip_chars().str.to_datetime(strict=False, time_unit="ms")
        except pl.exceptions.PolarsError:  # no date format fits the first values
            numeric = series.str.strip_chars().cast(pl.Float64, strict=False)
            parsed = pl.Series(TIMESTAMP, [None] * len(series), dtype=pl.Datetime("ms"))
            _fail(frame, numeric.is_null(), TIMESTAMP, path, "neither a number nor a date", hint)
        _fail(frame, parsed.is_null(), TIMESTAMP, path, "neither a number nor a date", hint)
        series = parsed.dt.epoch("ms")
        unit = "ms"
    numbers = _to_float(frame.with_columns(series.alias(TIMESTAMP)), TIMESTAMP, path, hint)
    shown = frame.with_columns(numbers.alias(TIMESTAMP))
    _fail(shown, numbers < 0, TIMESTAMP, path, "negative timestamp", hint)
    if unit == "auto":
        values = numbers.to_numpy()
        median = float(np.median(values))
        unit = detect_timestamp_unit(values)
        if unit == "us":
            raise DataValidationError(
                f"timestamps look like microseconds (median {median:.0f})",
                path=path,
                field=TIMESTAMP,
                hint="divide them by 1000 (milliseconds) before preparing",
            )
        if unit == "unknown":
            unit = "s" if median < EPOCH_2100_S * 10 else "ms"
    if unit in ("s", "ms"):
        scale = 1000 if unit == "ms" else 1
        absurd = (numbers < EPOCH_1990_S * scale) | (numbers > EPOCH_2100_S * scale)
        _fail(
            shown,
            absurd,
            TIMESTAMP,
            path,
            f"timestamp outside 1990-2100 when read as {'milliseconds' if unit == 'ms' else 'seconds'}",
            "fix the value or convert the column to one unit (unix seconds or milliseconds)",
        )
        fractional = numbers != numbers.floor()
        if unit == "s" and fractional.any():
            return (numbers * 1000).round().cast(pl.Int64), "ms"
    return numbers.round().cast(pl.Int64), unit


def coerce_feedback(frame: pl.DataFrame, column: str, path: str) -> pl.Series:
    """One feedback column in its canonical dtype, range-checked."""
    hint = f"fix the value or drop the {column!r} column"
    numbers = _to_float(frame, column, path, hint)
    shown = frame.with_columns(numbers.alias(column))
    if column in BINARY_FEEDBACK:
        _fail(shown, ~numbers.is_in([0.0, 1.0]), column, path, "flag must be 0 or 1", hint)
    elif column in DURATION_FEEDBACK:
        _fail(shown, numbers < 0, column, path, "negative duration", hint)
        _fail(
            shown,
            numbers > MAX_DURATION_MS,
            column,
            path,
            "duration over one week in milliseconds (is the unit microseconds?)",
            "durations are milliseconds; convert the column",
        )
        _fail(
            shown,
            numbers != numbers.floor(),
            column,
            path,
            "duration must be whole milliseconds",
            hint,
        )
    return numbers.cast(FEEDBACK_DTYPES[column])


def _check_side(frame: pl.DataFrame, id_col: str, path: str) -> pl.DataFrame:
    ids = coerce_ids(frame, id_col, path)
    frame = frame.with_columns(ids.alias(id_col))
    duplicated = ~frame[id_col].is_first_distinct()
    _fail(
        frame, duplicated, id_col, path, "id appears twice in the side table", "keep one row per id"
    )
    return frame


def _check_known(
    interactions: pl.DataFrame, side: pl.DataFrame, id_col: str, path: str, side_path: str
) -> None:
    unknown = ~interactions[id_col].is_in(side[id_col].implode())
    _fail(
        interactions,
        unknown,
        id_col,
        path,
        f"id is not in the side table {side_path}",
        f"add the missing ids to {side_path} or remove those interactions",
    )


def validate_raw(
    raw: RawTables, duplicates: DuplicatePolicy = "drop"
) -> tuple[RawTables, ValidationReport]:
    """Type and check ``raw``; return typed tables (same shape of object) and a report.

    Raises :class:`DataValidationError` at the first problem found.
    """
    path = raw.interactions_path
    frame = raw.interactions
    if frame.height == 0:
        raise DataValidationError(
            "no interaction rows (the file has a header but no data)",
            path=path,
            hint="check the export; prepare needs at least one interaction",
        )
    report = ValidationReport()
    columns = {
        USER_ID: coerce_ids(frame, USER_ID, path),
        ITEM_ID: coerce_ids(frame, ITEM_ID, path),
    }
    timestamps, report.timestamp_unit = coerce_timestamps(frame, path, raw.timestamp_unit)
    columns[TIMESTAMP] = timestamps
    for column in FEEDBACK_COLUMNS:
        if column in frame.columns:
            columns[column] = coerce_feedback(frame, column, path)
    typed = pl.DataFrame(columns)
    if LINE_COLUMN in frame.columns:
        typed = typed.with_columns(frame[LINE_COLUMN])
    else:
        typed = typed.with_columns(
            pl.int_range(1, typed.height + 1, dtype=pl.Int64).alias(LINE_COLUMN)
        )
    typed = _handle_duplicates(typed, path, duplicates, report)

    items, users = raw.items, raw.users
    if items is not None:
        items = _check_side(items, ITEM_ID, raw.items_path or "<items>")
        _check_known(typed, items, ITEM_ID, path, raw.items_path or "<items>")
        used = items[ITEM_ID].is_in(typed[ITEM_ID].unique().implode())
        report.side_items_without_interactions = int((~used).sum())
        items = items.filter(used)
    if users is not None:
        users = _check_side(users, USER_ID, raw.users_path or "<users>")
        _check_known(typed, users, USER_ID, path, raw.users_path or "<users>")
        used = users[USER_ID].is_in(typed[USER_ID].unique().implode())
        report.side_users_without_interactions = int((~used).sum())
        users = users.filter(used)
    checked = RawTables(**{**raw.__dict__, "interactions": typed, "items": items, "users": users})
    checked.timestamp_unit = report.timestamp_unit
    return checked, report


def _handle_duplicates(
    typed: pl.DataFrame, path: str, policy: DuplicatePolicy, report: ValidationReport
) -> pl.DataFrame:
    data_cols = [c for c in typed.columns if c != LINE_COLUMN]
    repeat = ~typed.select(pl.struct(data_cols).is_first_distinct()).to_series()
    count = int(repeat.sum())
    if count == 0 or policy == "keep":
        return typed
    lines = typed[LINE_COLUMN].filter(repeat).to_list()
    if policy == "error":
        raise DataValidationError(
            f"exact duplicate row ({count} duplicate rows in all)",
            path=path,
            row=int(lines[0]),
            hint="remove the duplicates, or prepare with duplicates='drop' (the default) to drop them",
        )
    report.dropped_duplicate_rows = count
    report.duplicate_lines = [int(x) for x in lines]
    message = (
        f"{path}: dropped {count} exact duplicate interaction row(s) (first at line {lines[0]})"
    )
    report.warnings.append(message)
    warnings.warn(message, DuplicateRowsWarning, stacklevel=3)
    return typed.filter(~repeat)
