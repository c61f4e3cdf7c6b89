"""Typed configuration: pydantic models loaded from TOML/YAML with ``key=value`` overrides.

Each component keeps its own config model beside its code (e.g. ``onerec.training.TrainConfig``);
this module only knows how to read a file into one of them.

Overrides use dotted paths into the nested mapping, and values are parsed as YAML scalars, so
``train.lr=3e-4``, ``model.moe=true`` and ``data.ks=[5,10]`` all do what they say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import tomllib
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from onerec.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config: unknown keys are an error (typos must not pass silently)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.toml``, ``.yaml``/``.yml`` or ``.json`` file into a plain dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml", ".json"}:
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(
                f"config file {path}: unknown extension {path.suffix!r}; use .toml or .yaml"
            )
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} could not be parsed: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``dotted.key=value`` override applied."""
    result: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. train.lr=1e-3)")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return result


def build_config(cls: type[ModelT], data: Mapping[str, Any], source: str = "config") -> ModelT:
    """Validate ``data`` into ``cls``, turning pydantic's errors into one readable message."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {loc}: {err['msg']}")
        raise ConfigError(f"{source} is invalid:\n" + "\n".join(lines)) from None


def load_config(
    cls: type[ModelT], path: str | Path | None = None, overrides: Iterable[str] = ()
) -> ModelT:
    """Load ``cls`` from an optional file plus overrides; defaults fill everything else."""
    data = read_config_file(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    return build_config(cls, data, source=str(path) if path else "config")


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}
