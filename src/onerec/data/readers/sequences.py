"""The one-line-per-user sequence format and the Amazon 2014 (P5/S3-Rec) layout.

``sequences.txt``: ``user item item …`` separated by spaces, one line per user, items in time
order. There are no timestamps: an item's position in its user's sequence is its timestamp
(``timestamp_unit="position"``). A user that appears on a second line continues counting.

Amazon directories (``amazon2014/<category>/``) add ``items.tsv.gz`` (``item_id, asin,
attribute_ids, attribute_names, idgenrec_textual_id``) and ``users.tsv.gz`` (``user_id,
reviewer_id``). The item ``text`` is the IDGenRec textual id followed by the attribute names
(brand, categories), joined with `` | ``; attribute names that are unknown in the source
(written ``<s3rec:ID>``) are left out of the text.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from onerec.data.raw import RawTables
from onerec.data.readers.text import decode_text, read_bytes, read_delimited_text
from onerec.data.schema import ITEM_ID, LINE_COLUMN, TEXT, TIMESTAMP, USER_ID
from onerec.errors import DataValidationError


def read_sequences(path: str | Path, encoding: str = "utf-8") -> RawTables:
    """Read a ``user item item …`` file into raw interactions (position = timestamp)."""
    path = Path(path)
    text = decode_text(read_bytes(path), path, encoding)
    users: list[str] = []
    items: list[str] = []
    positions: list[int] = []
    lines: list[int] = []
    next_position: dict[str, int] = {}
    users_without_items = 0
    for line_no, line in enumerate(text.split("\n"), start=1):
        for bad in (",", ";", "|"):
            if bad in line:
                raise DataValidationError(
                    f"line contains {bad!r}; the sequence format is 'user item item ...' separated by spaces",
                    path=str(path),
                    row=line_no,
                    hint="use --format csv/tsv for delimited files with a header",
                )
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) == 1:
            users_without_items += 1
            continue
        user, seq = tokens[0], tokens[1:]
        start = next_position.get(user, 0)
        next_position[user] = start + len(seq)
        users.extend([user] * len(seq))
        items.extend(seq)
        positions.extend(range(start, start + len(seq)))
        lines.extend([line_no] * len(seq))
    frame = pl.DataFrame(
        {
            USER_ID: pl.Series(users, dtype=pl.String),
            ITEM_ID: pl.Series(items, dtype=pl.String),
            TIMESTAMP: pl.Series(positions, dtype=pl.Int64),
            LINE_COLUMN: pl.Series(lines, dtype=pl.Int64),
        }
    )
    notes = [
        "no timestamps in the source: each item's position in its user's sequence is its timestamp"
    ]
    stats = {}
    if users_without_items:
        notes.append(f"{users_without_items} line(s) named a user with no items and were skipped")
        stats["users_without_items_skipped"] = users_without_items
    return RawTables(
        interactions=frame,
        name=path.stem,
        source={"format": "sequences", "files": [str(path)]},
        interactions_path=str(path),
        timestamp_unit="position",
        notes=notes,
        stats=stats,
    )


def amazon_item_text(items: pl.DataFrame) -> pl.Series:
    """``"<textual id> | <attr> | <attr> …"`` per item; null when nothing is known."""
    parts: list[str | None] = []
    textual = (
        items["idgenrec_textual_id"].to_list()
        if "idgenrec_textual_id" in items.columns
        else [None] * items.height
    )
    names = (
        items["attribute_names"].to_list()
        if "attribute_names" in items.columns
        else [None] * items.height
    )
    for title, attributes in zip(textual, names, strict=True):
        pieces = [title.strip()] if title and title.strip() else []
        for name in (attributes or "").split("|"):
            name = name.strip()
            if name and not name.startswith("<s3rec:"):
                pieces.append(name)
        parts.append(" | ".join(pieces) if pieces else None)
    return pl.Series(TEXT, parts, dtype=pl.String)


def read_amazon(directory: str | Path, name: str | None = None) -> RawTables:
    """Read an ``amazon2014/<category>/`` directory (sequences + item and user side tables)."""
    directory = Path(directory)
    raw = read_sequences(directory / "sequences.txt")
    items_path = directory / "items.tsv.gz"
    users_path = directory / "users.tsv.gz"
    items = read_delimited_text(decode_text(read_bytes(items_path), items_path), items_path, "\t")
    if ITEM_ID not in items.columns:
        raise DataValidationError(
            "missing column",
            path=str(items_path),
            field=ITEM_ID,
            hint="is this an amazon2014 items.tsv.gz?",
        )
    items = items.with_columns(amazon_item_text(items))
    users = read_delimited_text(decode_text(read_bytes(users_path), users_path), users_path, "\t")
    missing_title = items.filter(
        pl.col("idgenrec_textual_id").is_null()
        | (pl.col("idgenrec_textual_id").str.strip_chars() == "")
    )
    missing_text = items.filter(pl.col(TEXT).is_null())
    raw.items, raw.users = items, users
    raw.items_path, raw.users_path = str(items_path), str(users_path)
    raw.name = name or f"amazon-{directory.name}"
    raw.source = {
        "format": "amazon",
        "description": "Amazon Reviews 2014 5-core (P5/S3-Rec preprocessing), sequences in time order",
        "files": [str(directory / "sequences.txt"), str(items_path), str(users_path)],
        "terms": "Amazon review data (McAuley et al.); no licence file in the source repositories — do not redistribute",
    }
    raw.stats["items_without_textual_id"] = missing_title.height
    raw.stats["items_without_text"] = missing_text.height
    if missing_title.height:
        ids = ", ".join(missing_title[ITEM_ID].head(5).to_list())
        raw.notes.append(
            f"{missing_title.height} item(s) have no IDGenRec textual id (item_id {ids}); "
            "their text is built from the attribute names only"
        )
    raw.notes.append(
        "item text = IDGenRec textual id (model output, not the Amazon title) | brand | categories; "
        "attributes with unknown names (<s3rec:ID>) are left out"
    )
    return raw
