"""The bad-input matrix: data files, CLI arguments and config values through the real ``onerec``
CLI, each refused with exit status 2, a clear message (no traceback) and no partial output.

API payloads are in ``test_bad_payloads.py``. Every case names what is wrong in its ``expect``
fragments; ``leftovers`` lists paths the command was asked to write, which must not exist
afterwards (and no ``.tmp-*`` directory may be left anywhere under the working directory).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from .conftest import CliResult

GOOD_LOG = "user_id,item_id,timestamp\nu1,i1,1650000000\nu1,i2,1650000100\nu2,i1,1650000200\n"
SASREC = 'task = "sasrec"\n[data]\ndataset = "{data}"\n'


@dataclass
class Case:
    """One bad input: files to create, the ``onerec`` arguments, what the message must say."""

    id: str
    args: list[str]
    expect: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=lambda: ["out"])
    setup: Callable[[Path], None] | None = None


def truncated_parquet(root: Path) -> None:
    path = root / "log.parquet"
    pl.DataFrame(
        {"user_id": ["u1", "u2"], "item_id": ["i1", "i2"], "timestamp": [1, 2]}
    ).write_parquet(path)
    path.write_bytes(path.read_bytes()[:60])


def prepared(root: Path) -> None:
    """A valid prepared data set at ROOT/data (for the config and evaluate cases)."""
    from onerec.data import prepare_dataset

    (root / "ok.csv").write_text(GOOD_LOG)
    prepare_dataset(root / "ok.csv", root / "data")


DATA_CASES = [
    Case(
        "missing-item-column",
        ["prepare", "--interactions", "log.csv", "--out", "out"],
        ["log.csv", "item"],
        {"log.csv": "user_id,timestamp\nu1,1650000000\n"},
    ),
    Case(
        "time-not-a-number",
        ["prepare", "--interactions", "log.csv", "--out", "out"],
        ["log.csv", "row 3", "timestamp"],
        {"log.csv": "user_id,item_id,timestamp\nu1,i1,1650000000\nu1,i2,yesterday\n"},
    ),
    Case(
        "negative-time",
        ["prepare", "--interactions", "log.csv", "--out", "out"],
        ["log.csv", "timestamp", "negative"],
        {"log.csv": "user_id,item_id,timestamp\nu1,i1,-5\nu1,i2,7\n"},
    ),
    Case(
        "nan-feedback",
        ["prepare", "--interactions", "log.csv", "--out", "out"],
        ["log.csv", "row 3", "play_time_ms"],
        {
            "log.csv": "user_id,item_id,timestamp,play_time_ms\nu1,i1,1650000000,100\nu1,i2,1650000100,nan\n"
        },
    ),
    Case(
        "flag-not-binary",
        ["prepare", "--interactions", "log.csv", "--out", "out"],
        ["log.csv", "click"],
        {"log.csv": "user_id,item_id,timestamp,click\nu1,i1,1650000000,1\nu1,i2,1650000100,7\n"},
    ),
    Case(
        "empty-file",
        ["prepare", "--interactions", "log.csv", "--out", "out"],
        ["log.csv", "empty"],
        {"log.csv": ""},
    ),
    Case(
        "header-only",
        ["prepare", "--interactions", "log.csv", "--out", "out"],
        ["log.csv"],
        {"log.csv": "user_id,item_id,timestamp\n"},
    ),
    Case(
        "wrong-delimiter",
        ["prepare", "--interactions", "log.csv", "--out", "out", "--delimiter", ","],
        ["log.csv", "delimiter"],
        {"log.csv": "user_id;item_id;timestamp\nu1;i1;1650000000\n"},
    ),
    Case(
        "truncated-parquet",
        ["prepare", "--interactions", "log.parquet", "--out", "out"],
        ["log.parquet"],
        setup=truncated_parquet,
    ),
    Case(
        "not-utf8",
        ["prepare", "--interactions", "log.csv", "--out", "out"],
        ["log.csv", "utf-8"],
        {"log.csv": b"user_id,item_id,timestamp\nu\xff\xfe1,i1,1650000000\n"},
    ),
    Case(
        "corrupt-gzip",
        ["prepare", "--interactions", "log.csv.gz", "--out", "out"],
        ["log.csv.gz"],
        {"log.csv.gz": gzip.compress(GOOD_LOG.encode())[:25]},
    ),
    Case(
        "item-missing-from-side-table",
        ["prepare", "--interactions", "log.csv", "--items", "items.csv", "--out", "out"],
        ["items.csv", "i2"],
        {"log.csv": GOOD_LOG, "items.csv": "item_id,text\ni1,first\n"},
    ),
    Case(
        "duplicate-rows-refused",
        ["prepare", "--interactions", "log.csv", "--out", "out", "--duplicates", "error"],
        ["log.csv", "duplicate"],
        {"log.csv": GOOD_LOG + "u1,i1,1650000000\n"},
    ),
    Case(
        "missing-input-file",
        ["prepare", "--interactions", "nope.csv", "--out", "out"],
        ["nope.csv"],
    ),
]

CLI_CASES = [
    Case(
        "prepare-without-out",
        ["prepare", "--dataset", "kuairand-demo"],
        ["missing option", "--out"],
        leftovers=[],
    ),
    Case(
        "prepare-unknown-format",
        ["prepare", "--interactions", "log.csv", "--format", "xml", "--out", "out"],
        ["format", "xml"],
        {"log.csv": GOOD_LOG},
    ),
    Case(
        "prepare-unknown-dataset",
        ["prepare", "--dataset", "nope", "--out", "out"],
        ["unknown data set", "nope"],
    ),
    Case(
        "prepare-bad-rename",
        ["prepare", "--interactions", "log.csv", "--rename", "watch", "--out", "out"],
        ["rename", "SOURCE=TARGET"],
        {"log.csv": GOOD_LOG},
    ),
    Case(
        "train-missing-config",
        ["train", "nope.toml", "--out", "out"],
        ["nope.toml", "does not exist"],
    ),
    Case("evaluate-not-a-run", ["evaluate", "."], ["not a run directory"], leftovers=[]),
    Case(
        "evaluate-bad-split",
        ["evaluate", ".", "--split", "sideways"],
        ["--split", "sideways"],
        leftovers=[],
    ),
    Case("evaluate-bad-ks", ["evaluate", ".", "--ks", "five"], ["--ks", "five"], leftovers=[]),
    Case(
        "demo-unknown-stage",
        ["demo", "--out", "out", "--stop-after", "trianing"],
        ["not a stage", "trianing"],
    ),
    Case(
        "demo-fast-and-config",
        ["demo", "--out", "out", "--fast", "--config", "x.toml"],
        ["--fast", "--config"],
    ),
    Case("demo-report-without-run", ["demo", "--out", "out", "--report-only"], ["no summary.json"]),
    Case("serve-missing-bundle", ["serve", "no_bundle"], ["no_bundle"], leftovers=[]),
    Case("unknown-command", ["trian", "x.toml"], ["no such command", "trian"], leftovers=[]),
]

CONFIG_CASES = [
    Case(
        "config-syntax-error",
        ["train", "bad.toml", "--out", "out"],
        ["bad.toml", "could not be parsed"],
        {"bad.toml": 'task = "sasrec"\n[data\n'},
    ),
    Case(
        "config-not-a-table",
        ["train", "bad.yaml", "--out", "out"],
        ["bad.yaml", "mapping"],
        {"bad.yaml": "- 1\n- 2\n"},
    ),
    Case(
        "config-missing-task",
        ["train", "c.toml", "--out", "out"],
        ["missing top-level `task`"],
        {"c.toml": "[data]\ndataset = 'x'\n"},
    ),
    Case(
        "config-unknown-task",
        ["train", "c.toml", "--out", "out"],
        ["unknown task", "sasrek"],
        {"c.toml": 'task = "sasrek"\n'},
    ),
    Case(
        "config-override-without-equals",
        ["train", "c.toml", "train.lr", "--out", "out"],
        ["key=value"],
        {"c.toml": 'task = "sasrec"\n'},
    ),
    Case(
        "demo-unknown-key",
        ["demo", "--out", "out", "generator.train.learning_rate=0.1"],
        ["generator.train.learning_rate", "extra inputs"],
    ),
    Case(
        "demo-wrong-type",
        ["demo", "--out", "out", "generator.train.epochs=many"],
        ["generator.train.epochs", "integer"],
    ),
    Case(
        "demo-negative-lr",
        ["demo", "--out", "out", "generator.train.lr=-0.001"],
        ["generator.train.lr", "greater than 0"],
    ),
    Case("demo-zero-history", ["demo", "--out", "out", "data.max_history=0"], ["data.max_history"]),
    Case(
        "demo-unknown-budget-stage",
        ["demo", "--out", "out", "budgets.training=5"],
        ["unknown stages", "training"],
    ),
    Case(
        "demo-config-file-unknown-section",
        ["demo", "--out", "out", "--config", "d.toml"],
        ["d.toml", "modle"],
        {"d.toml": "[modle]\nsize = 'tiny'\n"},
    ),
]

# `onerec train` validates the recipe's config only after creating RUN_DIR and copying the
# source config into it: these cases get the right message, but leave RUN_DIR behind.
TRAIN_VALUE_CASES = [
    Case(
        "train-unknown-key",
        ["train", "c.toml", "--out", "out", "train.lr_rate=0.1"],
        ["train.lr_rate", "extra inputs"],
    ),
    Case(
        "train-wrong-type",
        ["train", "c.toml", "--out", "out", "train.epochs=many"],
        ["train.epochs", "integer"],
    ),
    Case(
        "train-negative-lr",
        ["train", "c.toml", "--out", "out", "train.lr=-1"],
        ["train.lr", "greater than 0"],
    ),
    Case(
        "train-unknown-dataset", ["train", "c.toml", "--out", "out", "data.dataset=nope"], ["nope"]
    ),
]

ALL_CASES = DATA_CASES + CLI_CASES + CONFIG_CASES


def run_case(case: Case, cli: Callable[..., CliResult], root: Path) -> CliResult:
    for name, content in case.files.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    if case.setup is not None:
        case.setup(root)
    return cli(*case.args)


def assert_clear_refusal(case: Case, result: CliResult) -> None:
    output = result.output
    assert not result.escaped, f"exception escaped the CLI:\n{result.escaped}"
    assert "Traceback" not in output, output
    assert result.code == 2, f"exit {result.code}:\n{output}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "a refusal must say why on stderr"
    assert len(lines) <= 8, f"the message should be short:\n{result.stderr}"
    lowered = output.lower()
    for fragment in case.expect:
        assert fragment.lower() in lowered, f"{fragment!r} not in:\n{output}"


def assert_no_partial_output(case: Case, root: Path) -> None:
    for leftover in case.leftovers:
        assert not (root / leftover).exists(), f"{leftover} was left behind"
    stale = [p.relative_to(root) for p in root.rglob(".tmp-*")]
    assert not stale, f"temporary files left behind: {stale}"


def test_matrix_has_at_least_30_cases_across_categories() -> None:
    from .test_bad_payloads import PAYLOAD_CASES

    assert (
        len(DATA_CASES) >= 8
        and len(CLI_CASES) >= 8
        and len(CONFIG_CASES) + len(TRAIN_VALUE_CASES) >= 8
    )
    assert len(PAYLOAD_CASES) >= 8
    assert len(ALL_CASES) + len(TRAIN_VALUE_CASES) + len(PAYLOAD_CASES) >= 30
    assert len({c.id for c in ALL_CASES + TRAIN_VALUE_CASES}) == len(ALL_CASES) + len(
        TRAIN_VALUE_CASES
    )


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_cleanly(
    case: Case, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = run_case(case, cli, tmp_path)
    assert_clear_refusal(case, result)
    assert_no_partial_output(case, tmp_path)


@pytest.mark.parametrize("case", TRAIN_VALUE_CASES, ids=lambda c: c.id)
def test_bad_train_config_values_get_a_clear_message(
    case: Case, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    prepared(tmp_path)
    (tmp_path / "c.toml").write_text(SASREC.format(data=tmp_path / "data"))
    result = run_case(case, cli, tmp_path)
    assert_clear_refusal(case, result)


@pytest.mark.parametrize("case", TRAIN_VALUE_CASES[:1], ids=lambda c: c.id)
def test_bad_train_config_values_leave_no_run_directory(
    case: Case, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    prepared(tmp_path)
    (tmp_path / "c.toml").write_text(SASREC.format(data=tmp_path / "data"))
    run_case(case, cli, tmp_path)
    assert_no_partial_output(case, tmp_path)


def test_a_real_process_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """The same contract outside pytest's process: what a shell user sees."""
    from .conftest import run_cli_process

    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu1,i1,1650000000\nu1,i2,soon\n")
    result = run_cli_process(["prepare", "--interactions", "log.csv", "--out", "out"], tmp_path)
    assert result.code == 2 and "Traceback" not in result.output
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith("error: ") and "row 3" in result.stderr
    assert not (tmp_path / "out").exists()
