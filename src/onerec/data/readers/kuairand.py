"""The KuaiRand log layout (Gao et al., CIKM 2022) and its video features.

Log columns (``log_*.csv``): ``user_id, video_id, date, hourmin, time_ms, is_click, is_like,
is_follow, is_comment, is_forward, is_hate, long_view, play_time_ms, duration_ms, …``.
Mapping: ``time_ms`` → ``timestamp`` (ms), ``video_id`` → ``item_id``, ``is_click`` →
``click`` (likewise like/follow/comment/forward/hate), ``long_view``, ``play_time_ms``,
``duration_ms`` as they are; other columns are ignored (listed in the manifest).

Video features (``video_features_basic_*.csv``) give the item side table: ``author_id``,
``duration_ms`` (from ``video_duration``; missing for some videos), ``music_id``, ``tags``
(comma-separated category ids), ``video_type``, ``upload_type``, ``upload_dt`` and a short
``text`` such as ``"author 7349781 music 9155697141 tags 39 duration 87s"``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from onerec.data.columns import map_interaction_columns, map_side_columns
from onerec.data.raw import RawTables
from onerec.data.readers.text import decode_text, read_bytes, read_delimited_text
from onerec.data.schema import ITEM_ID, LINE_COLUMN, TEXT
from onerec.errors import DataValidationError

KUAIRAND_LICENSE = "CC BY-SA 4.0 (KuaiRand, Gao et al., CIKM 2022, https://kuairand.com)"
KUAIRAND_FEEDBACK = {
    "play_time_ms": "play_time_ms",
    "duration_ms": "duration_ms",
    "is_click": "click",
    "is_like": "like",
    "is_follow": "follow",
    "long_view": "long_view",
    "is_comment": "comment",
    "is_forward": "forward",
    "is_hate": "hate",
}


def _read_csv(path: Path) -> pl.DataFrame:
    return read_delimited_text(decode_text(read_bytes(path), path), path, ",")


def video_text(items: pl.DataFrame) -> pl.Series:
    """Short text per video from its features (parts that are missing are left out)."""
    texts: list[str] = []
    for author, music, tags, duration in zip(
        items["author_id"].to_list(),
        items["music_id"].to_list(),
        items["tags"].to_list(),
        items["duration_ms"].to_list(),
        strict=True,
    ):
        parts = []
        if author is not None:
            parts.append(f"author {author}")
        if music is not None:
            parts.append(f"music {music}")
        if tags:
            parts.append(f"tags {tags}")
        if duration is not None:
            parts.append(f"duration {round(duration / 1000)}s")
        texts.append(" ".join(parts))
    return pl.Series(TEXT, texts, dtype=pl.String)


def read_video_features(path: str | Path) -> pl.DataFrame:
    """KuaiRand ``video_features_basic`` → item side table keyed by ``item_id``."""
    path = Path(path)
    frame = map_side_columns(_read_csv(path), str(path), ITEM_ID, "video_id", ("video_id",))
    for column in ("author_id", "music_id", "tag", "video_duration"):
        if column not in frame.columns:
            raise DataValidationError(
                "column missing from the video features",
                path=str(path),
                field=column,
                hint="expected KuaiRand video_features_basic columns (video_id, author_id, video_duration, music_id, tag, ...)",
            )
    duration = frame["video_duration"].str.strip_chars().cast(pl.Float64, strict=False)
    bad = frame["video_duration"].is_not_null() & duration.is_null()
    if bad.any():
        index = int(bad.arg_true()[0])
        raise DataValidationError(
            f"not a number: {frame['video_duration'][index]!r}",
            path=str(path),
            row=int(frame[LINE_COLUMN][index]),
            field="video_duration",
            hint="video_duration must be milliseconds",
        )
    keep = [c for c in ("video_type", "upload_type", "upload_dt") if c in frame.columns]
    items = frame.select(
        pl.col(ITEM_ID),
        pl.col("author_id"),
        duration.round().cast(pl.Int64).alias("duration_ms"),
        pl.col("music_id"),
        pl.col("tag").alias("tags"),
        *keep,
        pl.col(LINE_COLUMN),
    )
    return items.with_columns(video_text(items))


def read_kuairand(
    log_path: str | Path,
    video_features: str | Path | None = None,
    name: str = "kuairand",
) -> RawTables:
    """Read a KuaiRand log (and optionally the video features) into :class:`RawTables`."""
    log_path = Path(log_path)
    frame = _read_csv(log_path)
    rename = {k: v for k, v in KUAIRAND_FEEDBACK.items() if k in frame.columns and k != v}
    frame, ignored, _ = map_interaction_columns(
        frame,
        str(log_path),
        user_col="user_id",
        item_col="video_id",
        time_col="time_ms",
        rename=rename,
    )
    raw = RawTables(
        interactions=frame,
        name=name,
        source={
            "format": "kuairand",
            "description": "KuaiRand log (Kuaishou short-video feedback)",
            "files": [str(log_path)],
            "license": KUAIRAND_LICENSE,
        },
        interactions_path=str(log_path),
        timestamp_unit="ms",
        ignored_columns=ignored,
        notes=[
            "timestamp = time_ms (unix milliseconds); flags renamed from is_* (is_click -> click, ...)"
        ],
    )
    if video_features is not None:
        features_path = Path(video_features)
        raw.items = read_video_features(features_path)
        raw.items_path = str(features_path)
        raw.source["files"].append(str(features_path))
    return raw
