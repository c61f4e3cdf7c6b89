"""Readers on tiny files written here: each format, column mapping, id order, stable sort."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from onerec.data import DataSource, PreparedDataset, prepare_dataset
from onerec.data.pipeline import detect_format


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_sequences_format_positions_as_time_and_side_tables(tmp_path: Path) -> None:
    seq = write(tmp_path / "sequences.txt", "1 3 1 2\n2 2 3\n\n1 4\n")
    items = write(tmp_path / "items.tsv", "item_id\ttext\n1\tone\n2\ttwo\n3\tthree\n4\tfour\n")
    assert detect_format(seq) == "sequences"
    prepared = prepare_dataset(DataSource(interactions=seq, items=items))
    # integer ids → item_idx follows integer order: item k → k-1; user 1 continues on line 4
    assert [s.tolist() for s in prepared.sequences()] == [[2, 0, 1, 3], [1, 2]]
    assert prepared.interactions.filter(pl.col("user_idx") == 0)["timestamp"].to_list() == [
        0,
        1,
        2,
        3,
    ]
    assert prepared.items["text"].to_list() == ["one", "two", "three", "four"]
    assert prepared.manifest["timestamp_unit"] == "position"


def test_recbole_atomic_files(tmp_path: Path) -> None:
    inter = write(
        tmp_path / "toy.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n7\t20\t4\t881250949\n7\t10\t5\t881250950\n8\t10\t3\t881250951\n",
    )
    write(
        tmp_path / "toy.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n10\tToy Story\t1995\tAnimation Comedy\n20\tHeat\t1995\tAction\n",
    )
    write(tmp_path / "toy.user", "user_id:token\tage:token\n7\t24\n8\t53\n")
    prepared = prepare_dataset(DataSource(interactions=inter))
    assert prepared.feedback_columns == ["rating"]
    assert prepared.items["text"].to_list() == [
        "Toy Story (1995) | Animation Comedy",
        "Heat (1995) | Action",
    ]
    assert prepared.users["age"].to_list() == ["24", "53"]
    assert [s.tolist() for s in prepared.sequences()] == [[1, 0], [0]]
    assert prepared.manifest["timestamp_unit"] == "s"


def test_kuairand_log_layout_renames_flags(tmp_path: Path) -> None:
    log = write(
        tmp_path / "log_tiny.csv",
        "user_id,video_id,date,hourmin,time_ms,is_click,is_like,is_follow,is_comment,is_forward,is_hate,long_view,play_time_ms,duration_ms,tab\n"
        "5,3,20220430,1800,1651314030792,1,0,0,0,0,0,1,20000,30066,1\n"
        "5,1,20220430,1800,1651314030999,0,1,0,0,0,0,0,500,1000,1\n",
    )
    videos = write(
        tmp_path / "videos.csv",
        "video_id,author_id,video_type,upload_dt,upload_type,visible_status,video_duration,server_width,server_height,music_id,music_type,tag\n"
        '1,77,NORMAL,2022-04-10,Kmovie,0.0,1000.0,720.0,1280.0,45,9.0,"7,12"\n'
        "3,78,NORMAL,2022-04-10,Kmovie,0.0,,720.0,1280.0,46,9.0,39\n",
    )
    assert detect_format(log) == "kuairand"
    prepared = prepare_dataset(DataSource(interactions=log, items=videos))
    assert prepared.feedback_columns == [
        "play_time_ms",
        "duration_ms",
        "click",
        "like",
        "follow",
        "long_view",
        "comment",
        "forward",
        "hate",
    ]
    assert prepared.interactions["click"].to_list() == [1, 0]
    assert prepared.interactions["item_idx"].to_list() == [1, 0]
    assert prepared.items["text"].to_list() == [
        "author 77 music 45 tags 7,12 duration 1s",
        "author 78 music 46 tags 39",
    ]
    assert "tab" in prepared.manifest["ignored_columns"]
    assert prepared.manifest["timestamp_unit"] == "ms"


def test_parquet_with_column_mapping_and_rename(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pl.DataFrame(
        {
            "uid": ["b", "a", "b"],
            "sku": ["x", "y", "x"],
            "ts": [1650000002, 1650000001, 1650000000],
            "watch": [5, 6, 7],
            "extra": [0, 0, 0],
        }
    ).write_parquet(path)
    source = DataSource(
        interactions=path,
        user_col="uid",
        item_col="sku",
        time_col="ts",
        rename={"watch": "play_time_ms"},
    )
    prepared = prepare_dataset(source)
    # string ids → first-appearance order: b → 0, a → 1; x → 0, y → 1; sorted by time per user
    assert prepared.users["user_id"].to_list() == ["b", "a"]
    assert prepared.interactions["play_time_ms"].to_list() == [7, 5, 6]
    assert prepared.manifest["ignored_columns"] == ["extra"]


def test_iso_dates_and_row_order_time(tmp_path: Path) -> None:
    dated = write(
        tmp_path / "dated.csv", "user,item,time\nu,a,2022-01-02 10:00:00\nu,b,2022-01-01 10:00:00\n"
    )
    prepared = prepare_dataset(DataSource(interactions=dated))
    assert prepared.interactions["timestamp"].to_list() == [1641031200000, 1641117600000]
    assert prepared.sequences()[0].tolist() == [1, 0]
    plain = write(tmp_path / "plain.csv", "user,item\nu,a\nu,b\n")
    prepared = prepare_dataset(DataSource(interactions=plain, time_col="-"))
    assert prepared.interactions["timestamp"].to_list() == [0, 1]


def test_ties_keep_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ties.csv",
        "user_id,item_id,timestamp\nu,c,1650000000\nu,a,1650000000\nu,b,1650000000\n",
    )
    prepared = prepare_dataset(DataSource(interactions=path))
    assert prepared.items["item_id"].to_list() == ["c", "a", "b"]
    assert prepared.sequences()[0].tolist() == [0, 1, 2]


def test_gzip_csv_and_save_load_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "log.csv.gz"
    path.write_bytes(
        gzip.compress(
            b"user_id,item_id,timestamp,rating\n1,5,1650000000,4.5\n1,6,1650000001,3\n2,5,1650000002,1\n"
        )
    )
    out = tmp_path / "prepared"
    written = prepare_dataset(DataSource(interactions=path), out)
    loaded = PreparedDataset.load(out)
    assert loaded.interactions.equals(written.interactions)
    assert loaded.items.equals(written.items) and loaded.users.equals(written.users)
    assert (
        loaded.interactions.schema["user_idx"] == pl.Int32
        and loaded.interactions.schema["timestamp"] == pl.Int64
    )
    assert loaded.manifest["counts"] == {"users": 2, "items": 2, "interactions": 3}
    assert set(loaded.manifest["files"]) == {
        "interactions.parquet",
        "items.parquet",
        "users.parquet",
    }
    assert all(len(f["sha256"]) == 64 for f in loaded.manifest["files"].values())
    assert loaded.summary()["density"] == pytest.approx(3 / 4)


def test_load_dataset_accepts_prepared_dir_file_or_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from onerec.data import load_dataset, resolve_data_root
    from onerec.errors import DataValidationError

    log = write(tmp_path / "log.csv", "user_id,item_id,timestamp\n1,5,1650000000\n1,6,1650000001\n")
    assert load_dataset(log).interactions.height == 2
    prepare_dataset(DataSource(interactions=log), tmp_path / "prepared")
    assert load_dataset(tmp_path / "prepared").path == tmp_path / "prepared"
    with pytest.raises(DataValidationError, match="not a prepared data set"):
        load_dataset(tmp_path)
    monkeypatch.setenv("ONEREC_DATA_ROOT", str(tmp_path / "root"))
    assert resolve_data_root() == (tmp_path / "root").resolve()
    assert resolve_data_root(tmp_path) == tmp_path.resolve()
    monkeypatch.delenv("ONEREC_DATA_ROOT")
    monkeypatch.chdir(tmp_path)
    assert resolve_data_root() == (tmp_path / ".." / "shared" / "data").resolve()


def test_sequences_of_unsorted_hand_built_frame() -> None:
    frame = pl.DataFrame(
        {"user_idx": [1, 0, 0, 1], "item_idx": [7, 5, 4, 6], "timestamp": [2, 9, 3, 1]}
    ).cast({"user_idx": pl.Int32, "item_idx": pl.Int32})
    users = pl.DataFrame({"user_idx": [0, 1], "user_id": ["a", "b"]})
    items = pl.DataFrame({"item_idx": list(range(8)), "item_id": [str(k) for k in range(8)]})
    data = PreparedDataset(frame, items, users, {}, "hand")
    assert [s.tolist() for s in data.sequences()] == [[4, 5], [6, 7]]
