"""Write a config mapping as TOML (``onerec demo --print-config``; the stdlib only reads TOML).

Scalars and arrays of scalars become ``key = value`` lines, mappings become ``[tables]``, lists
of mappings ``[[arrays of tables]]``. ``None`` has no TOML spelling: such keys are left out,
which reads back as the field's default — :func:`config_toml` therefore reads its output back
and refuses to return text that would load as a different config.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import tomllib
from pydantic import BaseModel

from onerec.errors import ConfigError


def _scalar(value: Any, key: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{key}: TOML config values must be finite, got {value}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v, key) for v in value) + "]"
    raise ConfigError(f"{key}: cannot write a {type(value).__name__} to TOML")


def _is_table_list(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(v, Mapping) for v in value)
    )


def _emit(data: Mapping[str, Any], path: list[str], lines: list[str], array: bool = False) -> None:
    plain = {k: v for k, v in data.items() if not isinstance(v, Mapping) and not _is_table_list(v)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    table_lists = {k: v for k, v in data.items() if _is_table_list(v)}
    if path and (plain or array or not (tables or table_lists)):
        lines.append("")
        name = ".".join(_key(p) for p in path)
        lines.append(f"[[{name}]]" if array else f"[{name}]")
    for key, value in plain.items():
        if value is None:
            continue
        lines.append(f"{_key(key)} = {_scalar(value, '.'.join([*path, key]))}")
    for key, value in tables.items():
        _emit(value, [*path, key], lines)
    for key, value in table_lists.items():
        for entry in value:
            _emit(entry, [*path, key], lines, array=True)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def dump_toml(data: Mapping[str, Any], header: str = "") -> str:
    """TOML text for ``data`` (``header`` lines become ``#`` comments at the top)."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _emit(data, [], lines)
    return "\n".join(lines).strip("\n") + "\n"


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        keys = sorted(set(a) | set(b))
        return [
            d for k in keys for d in _differences(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        ]
    return [] if a == b else [path or "(top level)"]


def config_toml(config: BaseModel, header: str = "") -> str:
    """TOML for a pydantic config that loads back to an equal config (else ConfigError)."""
    text = dump_toml(config.model_dump(mode="json"), header)
    reloaded = type(config).model_validate(tomllib.loads(text)).model_dump(mode="json")
    differing = _differences(config.model_dump(mode="json"), reloaded)
    if differing:
        raise ConfigError(
            "this config cannot be written as TOML without changing it (None where the default "
            f"is not None?): {', '.join(differing[:5])}"
        )
    return text
