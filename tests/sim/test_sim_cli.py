"""``onerec sim``: writing a simulated data set, and the KuaiRand comparison."""

from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from onerec.cli.app import app
from onerec.sim import UserSimulator
from onerec.sim.calibrate import KUAIRAND_1K_LOG


def test_sim_writes_a_data_set(tmp_path) -> None:
    out = tmp_path / "simdata"
    result = CliRunner().invoke(
        app,
        [
            "sim",
            "sim.num_users=20",
            "sim.num_items=50",
            "sim.logging.sessions_per_user=2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    logs = pl.read_parquet(out / "interactions.parquet")
    assert logs.height == 20 * 2 * 5
    assert UserSimulator.load(out / "world").num_items == 50


def test_sim_without_an_action_is_a_user_error() -> None:
    from onerec.errors import OnerecError

    result = CliRunner().invoke(app, ["sim"])
    assert result.exit_code != 0 and isinstance(result.exception, OnerecError)


@pytest.mark.shared_data
def test_sim_compare_kuairand_prints_and_saves_the_table(tmp_path, shared_data_dir) -> None:
    path = shared_data_dir / KUAIRAND_1K_LOG
    if not path.is_file():
        pytest.skip(f"{path} missing")
    report = tmp_path / "table.md"
    result = CliRunner().invoke(
        app, ["sim", "--compare-kuairand", "--kuairand", str(path), "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert "| click rate | 0.1741 |" in text and "watch ratio p50" in text
