"""Mapping source column names onto the canonical ones, with suggestions for typos.

A generic file may call its columns ``userId``/``movie_id``/``time_ms``; we recognise common
aliases, accept explicit ``--user-col/--item-col/--time-col`` and feedback renames
(``is_click=click``), and when a named column is missing suggest the closest existing names
(difflib) instead of failing with a KeyError.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

import polars as pl

from onerec.data.schema import FEEDBACK_COLUMNS, ITEM_ID, LINE_COLUMN, TIMESTAMP, USER_ID
from onerec.errors import DataValidationError

USER_ALIASES = ("user_id", "userid", "user", "uid", "reviewer_id", "visitor_id", "customer_id")
ITEM_ALIASES = (
    "item_id",
    "itemid",
    "item",
    "iid",
    "movie_id",
    "movieid",
    "video_id",
    "product_id",
    "asin",
)
# ``date`` is deliberately absent: KuaiRand's yyyymmdd ``date`` is not a timestamp.
TIME_ALIASES = ("timestamp", "time_ms", "ts", "time", "unix_time", "unixreviewtime", "datetime")
FEEDBACK_ALIASES = {
    "is_click": "click",
    "is_like": "like",
    "is_follow": "follow",
    "is_comment": "comment",
    "is_forward": "forward",
    "is_hate": "hate",
    "video_duration": "duration_ms",
    "watch_time_ms": "play_time_ms",
}
# ``--time-col -`` means: no time column, use the order of rows in the file.
ROW_ORDER = "-"


def suggest(name: str, options: Sequence[str]) -> str:
    """A "did you mean …?" phrase for ``name`` among ``options`` ('' when nothing is close)."""
    lowered = {o.lower(): o for o in options}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(lowered[c]) for c in close) + "?"


def _find(columns: Sequence[str], aliases: Sequence[str]) -> str | None:
    lowered = {c.lower(): c for c in columns}
    for alias in aliases:
        if alias in lowered:
            return lowered[alias]
    return None


def _require(name: str, columns: Sequence[str], path: str, option: str) -> str:
    if name in columns:
        return name
    hint = suggest(name, columns)
    raise DataValidationError(
        f"column {name!r} not found (columns: {', '.join(columns)})",
        path=path,
        field=name,
        hint=(hint + " " if hint else "") + f"pass the right name with {option}",
    )


def map_interaction_columns(
    frame: pl.DataFrame,
    path: str,
    *,
    user_col: str | None = None,
    item_col: str | None = None,
    time_col: str | None = None,
    rename: Mapping[str, str] | None = None,
) -> tuple[pl.DataFrame, list[str], bool]:
    """Rename ``frame``'s columns to the canonical names.

    Returns the frame restricted to canonical columns (plus ``LINE_COLUMN``), the list of
    ignored source columns, and whether timestamps come from row order (``time_col='-'``).
    """
    columns = [c for c in frame.columns if c != LINE_COLUMN]
    mapping: dict[str, str] = {}
    for canonical, given, aliases, option in (
        (USER_ID, user_col, USER_ALIASES, "--user-col"),
        (ITEM_ID, item_col, ITEM_ALIASES, "--item-col"),
    ):
        source = _require(given, columns, path, option) if given else _find(columns, aliases)
        if source is None:
            hint = suggest(canonical, columns)
            raise DataValidationError(
                f"no {canonical.split('_')[0]} column found (looked for {', '.join(aliases)}; columns: {', '.join(columns)})",
                path=path,
                field=canonical,
                hint=(hint + " " if hint else "") + f"name it with {option} NAME",
            )
        mapping[source] = canonical
    row_order = time_col == ROW_ORDER
    if not row_order:
        source = (
            _require(time_col, columns, path, "--time-col")
            if time_col
            else _find(columns, TIME_ALIASES)
        )
        if source is None:
            hint = suggest(TIMESTAMP, columns)
            raise DataValidationError(
                f"no timestamp column found (looked for {', '.join(TIME_ALIASES)}; columns: {', '.join(columns)})",
                path=path,
                field=TIMESTAMP,
                hint=(hint + " " if hint else "")
                + "name it with --time-col NAME, or pass --time-col - to use the row order as time",
            )
        mapping[source] = TIMESTAMP
    for source, target in (rename or {}).items():
        if target not in FEEDBACK_COLUMNS:
            raise DataValidationError(
                f"cannot rename {source!r} to {target!r}: not a feedback column",
                path=path,
                field=source,
                hint=f"feedback columns are {', '.join(FEEDBACK_COLUMNS)}",
            )
        mapping[_require(source, columns, path, "the rename option (SOURCE=TARGET)")] = target
    taken = set(mapping.values())
    for column in columns:
        if column in mapping:
            continue
        lowered = column.lower()
        feedback = lowered if lowered in FEEDBACK_COLUMNS else FEEDBACK_ALIASES.get(lowered)
        if feedback is not None and feedback not in taken:
            mapping[column] = feedback
            taken.add(feedback)
    ignored = [c for c in columns if c not in mapping]
    keep = [*mapping, LINE_COLUMN] if LINE_COLUMN in frame.columns else list(mapping)
    return frame.select(keep).rename(mapping), ignored, row_order


def map_side_columns(
    frame: pl.DataFrame, path: str, id_name: str, given: str | None, aliases: Sequence[str]
) -> pl.DataFrame:
    """Rename the id column of an item/user side table to ``id_name``; keep the others."""
    columns = [c for c in frame.columns if c != LINE_COLUMN]
    source = None
    if given and given in columns:
        source = given
    if source is None:
        source = _find(columns, (id_name, *aliases))
    if source is None:
        hint = suggest(id_name, columns)
        raise DataValidationError(
            f"no {id_name} column found in side table (columns: {', '.join(columns)})",
            path=path,
            field=id_name,
            hint=(hint + " " if hint else "") + f"rename its id column to {id_name}",
        )
    if source != id_name and id_name in columns:
        frame = frame.drop(id_name)
    return frame.rename({source: id_name})
