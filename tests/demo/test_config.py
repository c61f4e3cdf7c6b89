"""Demo configs: the shipped TOML files are the code's defaults, and bad values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from onerec.config import load_config
from onerec.demo import DemoConfig
from onerec.demo.toml_out import config_toml, dump_toml
from onerec.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize(
    ("name", "expected"), [("demo.toml", DemoConfig()), ("demo_fast.toml", DemoConfig.fast())]
)
def test_shipped_configs_equal_the_code(name: str, expected: DemoConfig) -> None:
    path = CONFIGS / name
    loaded = load_config(DemoConfig, path)
    assert loaded.model_dump() == expected.model_dump()
    header = path.read_text(encoding="utf-8").splitlines()[:12]
    assert any("onerec demo" in line for line in header), "the header names the command"
    assert any("Result" in line or "result" in line for line in header), (
        "and the result it produced"
    )


def test_config_toml_round_trips() -> None:
    for config in (DemoConfig(), DemoConfig.fast()):
        text = config_toml(config, header="a\nb")
        assert text.startswith("# a\n# b\n")
        assert DemoConfig.model_validate(tomllib.loads(text)).model_dump() == config.model_dump()


def test_dump_toml_writes_tables_arrays_of_tables_and_quoted_strings() -> None:
    text = dump_toml(
        {
            "a": 1,
            "s": 'say "hi"',
            "t": {"x": [1.5, 2.0], "u": {"flag": True}},
            "rows": [{"name": "n1"}, {"name": "n2"}],
            "skip": None,
        }
    )
    assert tomllib.loads(text) == {
        "a": 1,
        "s": 'say "hi"',
        "t": {"x": [1.5, 2.0], "u": {"flag": True}},
        "rows": [{"name": "n1"}, {"name": "n2"}],
    }


def test_config_toml_refuses_a_none_that_would_read_back_differently() -> None:
    config = DemoConfig()
    config.generator.eval.valid_users = None  # GeneratorEvalSection's own default is 2000
    with pytest.raises(ConfigError, match="generator.eval.valid_users"):
        config_toml(config)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"budgets": {"training": 10}}, "unknown stages"),
        ({"budgets": {"crm": -1}}, "must be positive"),
        ({"eval": {"ks": [5, 50]}}, "beam_width 20 must be at least max"),
        ({"data": {"dataset": "kuairand-demo", "interactions": "x.csv"}}, "exactly one of"),
        ({"threads": 0}, "threads"),
        ({"generatr": {}}, "generatr"),
    ],
)
def test_bad_values_are_refused(data: dict, message: str) -> None:
    from onerec.config import build_config

    with pytest.raises(ConfigError, match=message):
        build_config(DemoConfig, data)
