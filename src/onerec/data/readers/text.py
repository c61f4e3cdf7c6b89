"""Reading raw text files safely: gzip, encodings and delimiters, with errors that name lines.

Everything here turns low-level failures (a truncated gzip stream, bytes that are not UTF-8, a
CSV whose delimiter is not the one given) into :class:`~onerec.errors.DataValidationError`
that names the file, the line and what to do, instead of a traceback from gzip or polars.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path

import polars as pl

from onerec.data.schema import LINE_COLUMN
from onerec.errors import DataValidationError

# Delimiters we try, in order of preference when counts tie.
CANDIDATE_DELIMITERS = (",", "\t", ";", "|")
DELIMITER_NAMES = {",": "','", "\t": "tab", ";": "';'", "|": "'|'", " ": "space"}


def read_bytes(path: str | Path) -> bytes:
    """Read a file, transparently un-gzipping ``.gz`` (or gzip-magic) files.

    Raises :class:`DataValidationError` for a missing file, a directory, a truncated or corrupt
    gzip stream.
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError(
            "file does not exist",
            path=str(path),
            hint="check the path (relative paths are from the current directory)",
        )
    if path.is_dir():
        raise DataValidationError("is a directory, expected a file", path=str(path))
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataValidationError(
            "gzip stream is truncated (the file ends before the end-of-stream marker)",
            path=str(path),
            hint="the download or copy was cut short; fetch the file again",
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise DataValidationError(
            f"gzip stream is corrupt ({exc})",
            path=str(path),
            hint="fetch the file again or decompress it with gunzip to see what is wrong",
        ) from None


def line_of_offset(data: bytes, offset: int) -> int:
    """1-based line number of byte ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def decode_text(data: bytes, path: str | Path, encoding: str = "utf-8") -> str:
    """Decode ``data``; a byte that is not valid ``encoding`` gives its offset and line."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = line_of_offset(data, exc.start)
        bad = data[exc.start : exc.start + 4]
        raise DataValidationError(
            f"byte offset {exc.start} (line {line}) is not valid {encoding} (bytes {bad!r})",
            path=str(path),
            row=line,
            hint="re-save the file as UTF-8, or give its encoding (e.g. --encoding latin-1)",
        ) from None
    except LookupError:
        raise DataValidationError(
            f"unknown text encoding {encoding!r}", path=str(path), hint="use e.g. utf-8 or latin-1"
        ) from None
    return text.removeprefix("\ufeff")  # a UTF-8 byte-order mark is not part of the header


def peek_first_line(path: str | Path, size: int = 4096) -> str:
    """The first line of a (possibly gzipped) file, or '' when it cannot be read.

    Used only to guess a format; the real reader reports any problem properly.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:
            data = fh.read(size)
    except (OSError, EOFError, zlib.error):
        return ""
    return first_line(data.decode("utf-8", errors="replace"))


def first_line(text: str) -> str:
    """The first line of ``text`` without its line ending."""
    return text.split("\n", 1)[0].rstrip("\r")


def sniff_delimiter(header: str) -> str | None:
    """The candidate delimiter that occurs most often in ``header`` (None if none occurs)."""
    counts = {d: header.count(d) for d in CANDIDATE_DELIMITERS}
    best = max(CANDIDATE_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else None


def read_delimited_text(
    text: str,
    path: str | Path,
    delimiter: str | None = None,
    *,
    min_columns: int = 2,
) -> pl.DataFrame:
    """Parse delimited ``text`` with a header into an all-string frame plus a line column.

    ``delimiter=None`` detects it from the header. If the header splits into fewer than
    ``min_columns`` columns the delimiter is wrong and the error says which one to use.
    ``LINE_COLUMN`` holds each row's 1-based line number in the file (header = line 1).
    Blank lines are dropped (their numbers are skipped, so later rows keep their true line).
    """
    if not text.strip():
        raise DataValidationError(
            "file is empty (no header, no rows)",
            path=str(path),
            hint="check that the export wrote any data",
        )
    if delimiter is not None and len(delimiter) != 1:
        raise DataValidationError(
            f"delimiter {delimiter!r} must be a single character",
            path=str(path),
            field="delimiter",
            hint="e.g. --delimiter ',' or --delimiter '\\t' (tab)",
        )
    header = first_line(text)
    detected = sniff_delimiter(header)
    sep = delimiter if delimiter is not None else (detected or ",")
    columns = header.split(sep)
    if len(columns) < min_columns:
        named = DELIMITER_NAMES.get(sep, repr(sep))
        if detected and detected != sep:
            how = "--format tsv" if detected == "\t" else f"--delimiter {detected!r}"
            hint = f"the header looks {DELIMITER_NAMES[detected]}-separated; pass {how}"
        else:
            hint = "check the file's delimiter and header line"
        raise DataValidationError(
            f"only one column found — is the delimiter {named}? header line: {header[:80]!r}",
            path=str(path),
            row=1,
            hint=hint,
        )
    try:
        frame = pl.read_csv(
            io.StringIO(text),
            separator=sep,
            infer_schema=False,
            has_header=True,
            quote_char='"',
        )
    except pl.exceptions.PolarsError as exc:
        raise _ragged_line_error(text, path, sep, len(columns)) or DataValidationError(
            f"could not be parsed as delimited text ({str(exc).splitlines()[0]})",
            path=str(path),
            hint="check quoting and the delimiter",
        ) from None
    frame = frame.with_columns(pl.int_range(2, frame.height + 2, dtype=pl.Int64).alias(LINE_COLUMN))
    # Blank lines come through as all-null rows; drop them (their line numbers are skipped).
    data_cols = [c for c in frame.columns if c != LINE_COLUMN]
    if data_cols:
        frame = frame.filter(~pl.all_horizontal(pl.col(data_cols).is_null()))
    return frame


def _ragged_line_error(
    text: str, path: str | Path, sep: str, n_columns: int
) -> DataValidationError | None:
    """Find the first line with more fields than the header (only called on a parse error)."""
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    for line_no, fields in enumerate(reader, start=1):
        if len(fields) > n_columns:
            return DataValidationError(
                f"line has {len(fields)} fields but the header has {n_columns}",
                path=str(path),
                row=reader.line_num if reader.line_num else line_no,
                hint=f"remove the extra {DELIMITER_NAMES.get(sep, repr(sep))} delimiters or quote the field",
            )
    return None
