"""``onerec prepare`` and ``onerec data-info`` through typer's CliRunner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onerec.cli import app
from onerec.cli.app import main
from onerec.data import PreparedDataset
from onerec.errors import DataValidationError

runner = CliRunner()


def test_prepare_kuairand_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "kuairand"
    result = runner.invoke(app, ["prepare", "--dataset", "kuairand-demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "43,027" in result.output and "7,388" in result.output and "1,000" in result.output
    assert "dropped duplicate rows" in result.output and "warning" in result.output
    assert str(out) in result.output.replace("\n", "")
    prepared = PreparedDataset.load(out)
    assert prepared.num_items == 7_388
    info = runner.invoke(app, ["data-info", str(out)])
    assert info.exit_code == 0, info.output
    assert "schema version" in info.output and "verified" in info.output and "ms" in info.output


def test_prepare_own_csv_with_column_options(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("uid;sku;ts;watch\na;x;1650000000;10\na;y;1650000005;20\nb;x;1650000009;30\n")
    out = tmp_path / "mine"
    args = [
        "prepare",
        "--interactions",
        str(log),
        "--out",
        str(out),
        "--user-col",
        "uid",
        "--item-col",
        "sku",
    ]
    args += [
        "--time-col",
        "ts",
        "--rename",
        "watch=play_time_ms",
        "--delimiter",
        ";",
        "--name",
        "mine",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    prepared = PreparedDataset.load(out)
    assert prepared.name == "mine" and prepared.feedback_columns == ["play_time_ms"]
    assert "play_time_ms" in result.output


def test_prepare_help_explains_options_with_examples() -> None:
    result = runner.invoke(app, ["prepare", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--dataset",
        "--interactions",
        "--items",
        "--users",
        "--format",
        "--out",
        "--data-root",
        "--user-col",
        "--item-col",
        "--time-col",
        "--rename",
    ):
        assert option in result.output
    assert result.output.count("Example") >= 10


def test_prepare_bad_input_raises_user_error_and_writes_nothing(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\nu,i,notatime\n")
    out = tmp_path / "out"
    result = runner.invoke(app, ["prepare", "--interactions", str(log), "--out", str(out)])
    assert isinstance(result.exception, DataValidationError)
    assert "row 2" in str(result.exception) and "timestamp" in str(result.exception)
    assert not out.exists()


def test_main_prints_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "onerec",
            "prepare",
            "--dataset",
            "amazon-beauty",
            "--data-root",
            str(tmp_path),
            "--out",
            str(out),
        ],
    )
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "sequences.txt" in err and "Traceback" not in err
    assert not out.exists()


def test_data_info_on_a_non_prepared_dir(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data-info", str(tmp_path)])
    assert isinstance(result.exception, DataValidationError)
    assert "no manifest.json" in str(result.exception)
