"""RecBole atomic files (``.inter``, ``.item``, ``.user``): tab-separated, ``name:type`` headers.

Types are ``token``, ``token_seq``, ``float`` and ``float_seq``; the ``:type`` suffix is
stripped and values are typed by validation. Side files with the same stem next to the
``.inter`` file (``ml-100k.item`` beside ``ml-100k.inter``) are picked up automatically.
Items get a ``text`` from a title/name column, a year and a genre/class column when present
(``"Toy Story (1995) | Animation Children's Comedy"``).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from onerec.data.columns import (
    ITEM_ALIASES,
    USER_ALIASES,
    map_interaction_columns,
    map_side_columns,
)
from onerec.data.raw import RawTables
from onerec.data.readers.text import decode_text, read_bytes, read_delimited_text
from onerec.data.schema import ITEM_ID, TEXT, USER_ID
from onerec.errors import DataValidationError

RECBOLE_TYPES = ("token", "token_seq", "float", "float_seq")
TITLE_COLUMNS = ("movie_title", "title", "name", "item_name")
YEAR_COLUMNS = ("release_year", "year")
GENRE_COLUMNS = ("class", "genre", "genres", "categories", "category")


def read_atomic(path: str | Path, encoding: str = "utf-8") -> pl.DataFrame:
    """Read one atomic file; columns are renamed from ``name:type`` to ``name``."""
    path = Path(path)
    frame = read_delimited_text(decode_text(read_bytes(path), path, encoding), path, "\t")
    renames = {}
    for column in frame.columns:
        if ":" in column:
            name, kind = column.rsplit(":", 1)
            if kind not in RECBOLE_TYPES:
                raise DataValidationError(
                    f"unknown RecBole type {kind!r} in header column {column!r}",
                    path=str(path),
                    row=1,
                    field=column,
                    hint=f"types are {', '.join(RECBOLE_TYPES)}",
                )
            renames[column] = name
    return frame.rename(renames)


def _first_present(frame: pl.DataFrame, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in frame.columns), None)


def compose_item_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``text`` (title (year) | genres) when the frame has a title column."""
    title = _first_present(frame, TITLE_COLUMNS)
    if title is None or TEXT in frame.columns:
        return frame
    year = _first_present(frame, YEAR_COLUMNS)
    genre = _first_present(frame, GENRE_COLUMNS)
    head = pl.col(title).fill_null("")
    if year is not None:
        head = (
            pl.when(pl.col(year).is_not_null() & (pl.col(year) != ""))
            .then(pl.concat_str([head, pl.lit(" ("), pl.col(year), pl.lit(")")]))
            .otherwise(head)
        )
    text = head
    if genre is not None:
        text = (
            pl.when(pl.col(genre).is_not_null() & (pl.col(genre) != ""))
            .then(pl.concat_str([head, pl.lit(" | "), pl.col(genre)]))
            .otherwise(head)
        )
    return frame.with_columns(text.alias(TEXT))


def read_recbole(
    inter_path: str | Path,
    item_path: str | Path | None = None,
    user_path: str | Path | None = None,
    encoding: str = "utf-8",
    name: str | None = None,
) -> RawTables:
    """Read RecBole atomic files into :class:`RawTables`."""
    inter_path = Path(inter_path)
    frame, ignored, _ = map_interaction_columns(read_atomic(inter_path, encoding), str(inter_path))
    raw = RawTables(
        interactions=frame,
        name=name or inter_path.stem,
        source={"format": "recbole", "files": [str(inter_path)]},
        interactions_path=str(inter_path),
        ignored_columns=ignored,
    )
    item_path = Path(item_path) if item_path else inter_path.with_suffix(".item")
    user_path = Path(user_path) if user_path else inter_path.with_suffix(".user")
    if item_path.is_file():
        items = map_side_columns(
            read_atomic(item_path, encoding), str(item_path), ITEM_ID, None, ITEM_ALIASES
        )
        raw.items, raw.items_path = compose_item_text(items), str(item_path)
        raw.source["files"].append(str(item_path))
    if user_path.is_file():
        users = map_side_columns(
            read_atomic(user_path, encoding), str(user_path), USER_ID, None, USER_ALIASES
        )
        raw.users, raw.users_path = users, str(user_path)
        raw.source["files"].append(str(user_path))
    return raw
