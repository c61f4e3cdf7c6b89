"""What every baseline recipe shares: the ``[data]``/``[eval]`` sections, the leave-one-out
split of a named or prepared data set, and the layout of a run directory.

Run directory (written by ``onerec train``)::

    run_config.json     the resolved config (task, data, model, train, eval) + data fingerprint
    model/              config.json + model.safetensors (what ``onerec evaluate`` loads)
    metrics.json        valid and test metrics of the final (best) model + run facts
    metrics.jsonl       training log (trained models only)
    checkpoints/        last/ and best/ training checkpoints (trained models only)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import Field

from onerec.config import StrictModel, build_config
from onerec.data import LeaveOneOutSplit, PreparedDataset, leave_one_out, load_dataset
from onerec.errors import CheckpointError
from onerec.io import atomic_write_json, read_json

RUN_CONFIG_FILE = "run_config.json"
MODEL_DIR = "model"
METRICS_FILE = "metrics.json"


class DataSection(StrictModel):
    """``[data]``: which data set and how to split it (leave-one-out)."""

    dataset: str = Field(..., description="named data set (e.g. amazon-beauty) or prepared dir")
    data_root: str | None = Field(default=None, description="folder of the named data sets")
    max_history: int = Field(
        default=20, ge=1, description="history length at evaluation (TIGER: 20)"
    )


class EvalSection(StrictModel):
    """``[eval]``: full-ranking evaluation settings."""

    ks: list[int] = Field(default_factory=lambda: [5, 10])
    batch_size: int = Field(default=1024, ge=1)
    exclude_history: bool = Field(
        default=False, description="drop history items from the ranking (TIGER protocol: False)"
    )


@dataclass
class LoadedData:
    """A leave-one-out split, the catalogue size, and the data set it came from (if any)."""

    split: LeaveOneOutSplit
    num_items: int
    dataset: PreparedDataset | None = None

    @property
    def name(self) -> str:
        return self.dataset.name if self.dataset is not None else "synthetic"


def load_split(data: DataSection) -> LoadedData:
    """Load ``data.dataset`` and split it leave-one-out with ``data.max_history``."""
    dataset = load_dataset(data.dataset, data_root=data.data_root)
    split = leave_one_out(dataset.sequences(), max_history=data.max_history)
    return LoadedData(split, dataset.num_items, dataset)


def data_fingerprint(dataset: PreparedDataset) -> dict[str, Any]:
    """Counts and a hash of (user_idx, item_idx) in order: detects evaluating on other data."""
    digest = hashlib.sha256()
    for column in ("user_idx", "item_idx"):
        digest.update(dataset.interactions[column].to_numpy().astype(np.int64).tobytes())
    return {
        "name": dataset.name,
        "num_users": dataset.num_users,
        "num_items": dataset.num_items,
        "num_interactions": dataset.interactions.height,
        "interactions_sha256": digest.hexdigest(),
    }


def check_fingerprint(run_dir: Path, saved: dict[str, Any], dataset: PreparedDataset) -> None:
    """Raise :class:`CheckpointError` when ``dataset`` is not the data the run trained on."""
    now = data_fingerprint(dataset)
    if saved and saved != now:
        differing = sorted(k for k in now if saved.get(k) != now[k])
        raise CheckpointError(
            f"{run_dir} was trained on different data than {dataset.name!r} loads now "
            f"(differs in: {', '.join(differing)}); evaluate against the original data set"
        )


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    """The ``run_config.json`` of a run directory (clear error when it is not one)."""
    path = Path(run_dir) / RUN_CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{run_dir} is not a run directory (no {RUN_CONFIG_FILE}); pass the folder that "
            "`onerec train` wrote (printed at the end of training)"
        )
    config: dict[str, Any] = read_json(path)
    return config


def write_run_config(run_dir: Path, resolved: dict[str, Any]) -> None:
    """Write ``run_config.json`` atomically."""
    atomic_write_json(run_dir / RUN_CONFIG_FILE, resolved)


def read_fingerprint(run_dir: Path) -> dict[str, Any]:
    """The data fingerprint saved in ``run_config.json`` (empty if none was saved)."""
    fingerprint: dict[str, Any] = read_run_config(run_dir).get("dataset_fingerprint", {})
    return fingerprint


RunConfigT = TypeVar("RunConfigT", bound=StrictModel)


def load_run_for_evaluation(
    run_dir: Path, resolved: dict[str, Any], config_cls: type[RunConfigT]
) -> tuple[RunConfigT, LoadedData]:
    """A run's validated config and its leave-one-out data, refusing data that changed.

    ``resolved`` is the run's ``run_config.json`` (its ``dataset_fingerprint`` is checked
    against the data loaded now, then left out of the config); ``config_cls`` must have a
    ``data: DataSection`` field.
    """
    settings = {k: v for k, v in resolved.items() if k != "dataset_fingerprint"}
    cfg = build_config(config_cls, settings, source=f"{run_dir}/run_config.json")
    data = load_split(cfg.data)  # type: ignore[attr-defined]
    if data.dataset is not None:
        check_fingerprint(run_dir, read_fingerprint(run_dir), data.dataset)
    return cfg, data
