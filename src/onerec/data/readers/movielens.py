"""MovieLens-1M as stored in ``shared/data/movielens/ml-1m``.

Only the latest 20% of ratings by time (``ratings_last20pct_by_time.csv.gz``: ``user_id,
movie_id, rating, timestamp, split``) carry ratings and timestamps; ``movies.dat``
(``MovieID::Title::Genres``) and ``users.dat`` (``UserID::Gender::Age::Occupation::Zip-code``)
are latin-1 with ``::`` separators. Item ``text`` is ``"Title (year) | Genre, Genre"``.
MovieLens may not be redistributed: it is read from the data root, never copied.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from onerec.data.columns import map_interaction_columns
from onerec.data.raw import RawTables
from onerec.data.readers.text import decode_text, read_bytes, read_delimited_text
from onerec.data.schema import ITEM_ID, LINE_COLUMN, TEXT, USER_ID
from onerec.errors import DataValidationError

MOVIES_COLUMNS = (ITEM_ID, "title", "genres")
USERS_COLUMNS = (USER_ID, "gender", "age", "occupation", "zip_code")


def read_dat(path: str | Path, columns: tuple[str, ...], encoding: str = "latin-1") -> pl.DataFrame:
    """Read a ``::``-separated MovieLens ``.dat`` file with the given column names."""
    path = Path(path)
    text = decode_text(read_bytes(path), path, encoding)
    rows: list[list[str]] = []
    lines: list[int] = []
    for line_no, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("::")
        if len(fields) != len(columns):
            raise DataValidationError(
                f"line has {len(fields)} '::'-separated fields, expected {len(columns)} ({', '.join(columns)})",
                path=str(path),
                row=line_no,
                hint="is this a MovieLens-1M .dat file?",
            )
        rows.append(fields)
        lines.append(line_no)
    frame = pl.DataFrame(rows, schema=list(columns), orient="row")
    return frame.with_columns(pl.Series(LINE_COLUMN, lines, dtype=pl.Int64))


def movie_text(movies: pl.DataFrame) -> pl.Series:
    """``"Title (year) | Genre, Genre"``."""
    genres = movies["genres"].str.replace_all("|", ", ", literal=True)
    return (movies["title"] + " | " + genres).alias(TEXT)


def read_movielens_1m(directory: str | Path, name: str = "ml-1m") -> RawTables:
    """Read the ml-1m directory (ratings subset + movies + users)."""
    directory = Path(directory)
    ratings_path = directory / "ratings_last20pct_by_time.csv.gz"
    ratings = read_delimited_text(
        decode_text(read_bytes(ratings_path), ratings_path), ratings_path, ","
    )
    frame, ignored, _ = map_interaction_columns(
        ratings, str(ratings_path), user_col="user_id", item_col="movie_id", time_col="timestamp"
    )
    movies_path, users_path = directory / "movies.dat", directory / "users.dat"
    movies = read_dat(movies_path, MOVIES_COLUMNS)
    users = read_dat(users_path, USERS_COLUMNS)
    return RawTables(
        interactions=frame,
        items=movies.with_columns(movie_text(movies)),
        users=users,
        name=name,
        source={
            "format": "movielens-1m",
            "description": "MovieLens-1M, latest 20% of ratings by time (the full ratings.dat was not available)",
            "files": [str(ratings_path), str(movies_path), str(users_path)],
            "terms": "GroupLens: research use only, no redistribution without permission",
        },
        interactions_path=str(ratings_path),
        items_path=str(movies_path),
        users_path=str(users_path),
        timestamp_unit="s",
        ignored_columns=ignored,
        notes=[
            "only the latest 20% of MovieLens-1M ratings by time (val+test of a time split) are present"
        ],
    )
