"""One test per bad-input case: the error names file/row/field and what to do, and the output
directory is never created (no partial output, no temp dirs left behind)."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from onerec.data import DataSource, PreparedDataset, leave_one_out, prepare_dataset
from onerec.data.validation import DuplicateRowsWarning
from onerec.errors import DataValidationError

HEADER = "user_id,item_id,timestamp"
GOOD_ROWS = ["u1,i1,1650000000", "u1,i2,1650000001", "u1,i3,1650000002", "u2,i1,1650000003"]


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fails(tmp_path: Path, source: DataSource, *fragments: str) -> DataValidationError:
    """Prepare must fail with all ``fragments`` in the message and leave nothing behind."""
    out = tmp_path / "out"
    with pytest.raises(DataValidationError) as info:
        prepare_dataset(source, out)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert not out.exists()
    assert not list(tmp_path.glob(".tmp-out-*"))
    assert "\n" not in message
    return info.value


def test_missing_user_column_suggests_close_name(tmp_path: Path) -> None:
    path = write(tmp_path, "usr_id,item_id,timestamp\nu1,i1,1650000000\n")
    err = fails(
        tmp_path,
        DataSource(interactions=path),
        "log.csv",
        "user_id",
        "did you mean 'usr_id'?",
        "--user-col",
    )
    assert err.field == "user_id"


def test_misnamed_explicit_column_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,time_stamp\nu1,i1,1650000000\n")
    fails(
        tmp_path,
        DataSource(interactions=path, time_col="timestamp"),
        "'timestamp' not found",
        "'time_stamp'",
        "--time-col",
    )


def test_wrong_type_names_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "user_id,item_id,timestamp,play_time_ms\nu1,i1,1650000000,100\nu1,i2,1650000001,12s\n",
    )
    err = fails(
        tmp_path, DataSource(interactions=path), "row 3", "play_time_ms", "not a number", "'12s'"
    )
    assert err.row == 3


def test_missing_value(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp\nu1,i1,1650000000\nu1,,1650000001\n")
    fails(tmp_path, DataSource(interactions=path), "row 3", "item_id", "missing id")


def test_nan_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path, "user_id,item_id,timestamp,rating\nu1,i1,1650000000,4\nu1,i2,1650000001,nan\n"
    )
    fails(tmp_path, DataSource(interactions=path), "row 3", "rating", "NaN")


def test_inf_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp,play_time_ms\nu1,i1,1650000000,inf\n")
    fails(tmp_path, DataSource(interactions=path), "row 2", "play_time_ms", "infinite")


def test_negative_timestamp(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\nu1,i1,1650000000\nu1,i2,-5\n")
    fails(tmp_path, DataSource(interactions=path), "row 3", "timestamp", "negative")


def test_absurd_timestamp_in_seconds(tmp_path: Path) -> None:
    rows = "\n".join(GOOD_ROWS + ["u2,i2,5000000000"])  # year 2128 in seconds
    path = write(tmp_path, f"{HEADER}\n{rows}\n")
    fails(tmp_path, DataSource(interactions=path), "row 6", "outside 1990-2100", "seconds")


def test_absurd_timestamp_in_milliseconds(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"{HEADER}\nu1,i1,1650000000000\nu1,i2,1650000000001\nu1,i3,300000000000\n"
    )
    fails(tmp_path, DataSource(interactions=path), "row 4", "outside 1990-2100", "milliseconds")


def test_microsecond_timestamps(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\nu1,i1,1650000000000000\nu1,i2,1650000000000001\n")
    fails(tmp_path, DataSource(interactions=path), "microseconds", "divide them by 1000")


def test_negative_duration(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp,duration_ms\nu1,i1,1650000000,-3\n")
    fails(tmp_path, DataSource(interactions=path), "row 2", "duration_ms", "negative duration")


def test_absurd_duration(tmp_path: Path) -> None:
    path = write(
        tmp_path, "user_id,item_id,timestamp,play_time_ms\nu1,i1,1650000000,900000000000\n"
    )
    fails(tmp_path, DataSource(interactions=path), "play_time_ms", "over one week", "microseconds")


def test_flag_not_binary(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id,item_id,timestamp,is_click\nu1,i1,1650000000,2\n")
    fails(tmp_path, DataSource(interactions=path), "row 2", "click", "0 or 1")


def test_duplicate_rows_error_when_asked(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\nu1,i1,1650000000\nu1,i1,1650000000\n")
    fails(
        tmp_path,
        DataSource(interactions=path, duplicates="error"),
        "row 3",
        "duplicate",
        "duplicates='drop'",
    )


def test_duplicate_rows_dropped_with_warning_by_default(tmp_path: Path) -> None:
    rows = "\n".join(GOOD_ROWS + [GOOD_ROWS[1]])
    path = write(tmp_path, f"{HEADER}\n{rows}\n")
    with pytest.warns(DuplicateRowsWarning, match="line 6"):
        prepared = prepare_dataset(DataSource(interactions=path), tmp_path / "out")
    assert prepared.interactions.height == 4
    assert prepared.manifest["validation"]["dropped_duplicate_rows"] == 1
    assert prepared.manifest["validation"]["duplicate_lines_first_10"] == [6]


def test_unknown_item_in_side_table(tmp_path: Path) -> None:
    log = write(tmp_path, f"{HEADER}\nu1,i1,1650000000\nu1,i9,1650000001\n")
    items = write(tmp_path, "item_id,text\ni1,first\ni2,second\n", "items.csv")
    fails(
        tmp_path,
        DataSource(interactions=log, items=items),
        "log.csv",
        "row 3",
        "item_id",
        "'i9'",
        "items.csv",
    )


def test_duplicate_id_in_side_table(tmp_path: Path) -> None:
    log = write(tmp_path, f"{HEADER}\nu1,i1,1650000000\n")
    items = write(tmp_path, "item_id,text\ni1,first\ni1,again\n", "items.csv")
    fails(
        tmp_path, DataSource(interactions=log, items=items), "items.csv", "row 3", "appears twice"
    )


def test_header_only_is_empty_input(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n")
    fails(tmp_path, DataSource(interactions=path), "log.csv", "no interaction rows")


def test_zero_byte_file_is_empty_input(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    fails(tmp_path, DataSource(interactions=path), "log.csv", "empty")


def test_user_with_one_interaction_kept_and_counted_but_split_can_refuse(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n" + "\n".join(GOOD_ROWS) + "\n")
    prepared = prepare_dataset(DataSource(interactions=path), tmp_path / "ok")
    assert prepared.manifest["sequence_lengths"]["users_with_one_interaction"] == 1
    split = leave_one_out(prepared.sequences())
    assert split.num_short_users == 1 and list(split.test.user_idx) == [0]
    with pytest.raises(DataValidationError, match="user_idx 1 has 1 interaction"):
        leave_one_out(prepared.sequences(), short_users="error")


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id;item_id;timestamp\nu1;i1;1650000000\n")
    fails(
        tmp_path,
        DataSource(interactions=path, delimiter=","),
        "only one column found",
        "is the delimiter ','?",
        "';'",
    )


def test_delimiter_detected_when_not_given(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id;item_id;timestamp\nu1;i1;1650000000\n")
    assert prepare_dataset(DataSource(interactions=path)).interactions.height == 1


def test_tab_file_read_as_csv(tmp_path: Path) -> None:
    path = write(tmp_path, "user_id\titem_id\ttimestamp\nu1\ti1\t1650000000\n", "log.tsv")
    fails(
        tmp_path,
        DataSource(interactions=path, format="csv"),
        "only one column found",
        "tab-separated",
    )


def test_line_with_extra_fields(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\nu1,i1,1650000000\nu1,i2,1650000001,7\n")
    fails(tmp_path, DataSource(interactions=path), "row 3", "4 fields", "header has 3")


def test_truncated_parquet(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pl.DataFrame(
        {
            "user_id": ["u1"] * 50,
            "item_id": [f"i{k}" for k in range(50)],
            "timestamp": range(1650000000, 1650000050),
        }
    ).write_parquet(path)
    path.write_bytes(path.read_bytes()[:-40])
    fails(
        tmp_path,
        DataSource(interactions=path),
        "log.parquet",
        "not a complete Parquet file",
        "truncated",
    )


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pl.DataFrame(
        {
            "user_id": ["u1"] * 50,
            "item_id": [f"i{k}" for k in range(50)],
            "timestamp": range(1650000000, 1650000050),
        }
    ).write_parquet(path)
    data = bytearray(path.read_bytes())
    data[8:-8] = bytes(len(data) - 16)  # zero everything between the magic markers
    path.write_bytes(bytes(data))
    fails(
        tmp_path,
        DataSource(interactions=path),
        "log.parquet",
        "could not be read as Parquet",
        "corrupt",
    )


def test_truncated_gzip(tmp_path: Path) -> None:
    payload = gzip.compress(("\n".join([HEADER, *GOOD_ROWS * 200]) + "\n").encode())
    path = tmp_path / "log.csv.gz"
    path.write_bytes(payload[: len(payload) // 2])
    fails(
        tmp_path,
        DataSource(interactions=path),
        "log.csv.gz",
        "gzip stream is truncated",
        "fetch the file again",
    )


def test_non_utf8_text_names_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(f"{HEADER}\nu1,i1,1650000000\n".encode() + b"u\xe9,i2,1650000001\n")
    err = fails(
        tmp_path,
        DataSource(interactions=path),
        "byte offset 44",
        "line 3",
        "not valid utf-8",
        "--encoding",
    )
    assert err.row == 3


def test_missing_file(tmp_path: Path) -> None:
    fails(tmp_path, DataSource(interactions=tmp_path / "nope.csv"), "nope.csv", "does not exist")


def test_unknown_named_dataset(tmp_path: Path) -> None:
    fails(
        tmp_path,
        DataSource(dataset="amazon-beuty"),
        "unknown data set",
        "did you mean 'amazon-beauty'",
    )


def test_named_dataset_missing_under_data_root(tmp_path: Path) -> None:
    fails(
        tmp_path,
        DataSource(dataset="amazon-beauty", data_root=tmp_path / "empty"),
        "sequences.txt",
        "--data-root",
        "ONEREC_DATA_ROOT",
    )


def test_failure_keeps_previous_output(tmp_path: Path) -> None:
    good = write(tmp_path, f"{HEADER}\n" + "\n".join(GOOD_ROWS) + "\n")
    out = tmp_path / "out"
    prepare_dataset(DataSource(interactions=good), out)
    bad = write(tmp_path, f"{HEADER}\nu1,i1,abc\n", "bad.csv")
    with pytest.raises(DataValidationError):
        prepare_dataset(DataSource(interactions=bad), out)
    assert PreparedDataset.load(out).interactions.height == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "log.csv", "out"]


def test_load_detects_changed_file(tmp_path: Path) -> None:
    good = write(tmp_path, f"{HEADER}\n" + "\n".join(GOOD_ROWS) + "\n")
    out = tmp_path / "prepared"
    prepare_dataset(DataSource(interactions=good), out)
    pl.DataFrame({"user_idx": [0], "item_idx": [0], "timestamp": [1]}).write_parquet(
        out / "interactions.parquet"
    )
    with pytest.raises(DataValidationError, match="hash does not match the manifest"):
        PreparedDataset.load(out)


def test_load_detects_schema_version_mismatch(tmp_path: Path) -> None:
    import json

    good = write(tmp_path, f"{HEADER}\n" + "\n".join(GOOD_ROWS) + "\n")
    out = tmp_path / "prepared"
    prepare_dataset(DataSource(interactions=good), out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = 999
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataValidationError, match="schema version 999 does not match"):
        PreparedDataset.load(out)


def test_no_warning_without_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path, f"{HEADER}\n" + "\n".join(GOOD_ROWS) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepared = prepare_dataset(DataSource(interactions=path))
    assert np.array_equal(prepared.sequences()[0], [0, 1, 2])


def test_id_column_of_wrong_type_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pl.DataFrame(
        {"user_id": [[1], [2]], "item_id": ["a", "b"], "timestamp": [1650000000, 1650000001]}
    ).write_parquet(path)
    fails(
        tmp_path,
        DataSource(interactions=path),
        "log.parquet",
        "user_id",
        "List(Int64)",
        "strings or integers",
    )


def test_parquet_read_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "log.data"
    pl.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": [1650000000]}).write_parquet(
        path
    )
    fails(
        tmp_path,
        DataSource(interactions=path, format="csv"),
        "is a Parquet file",
        "--format parquet",
    )
