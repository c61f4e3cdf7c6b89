"""Which recipe ``onerec train CONFIG`` runs: the config file's top-level ``task`` key.

Each entry maps a task name to a function; imports happen inside the functions so that
``onerec --help`` stays fast and one area's heavy imports never load for another's task.

Contract for a task:

* train: ``fn(config: dict, run_dir: Path) -> MetricsReport`` — ``config`` is the whole
  config file after ``key=value`` overrides (including ``task``); the function validates it
  into its own ``StrictModel``, writes ``run_dir/run_config.json`` (the resolved config, with
  ``task``), ``run_dir/model/`` (``config.json`` + ``model.safetensors``) and
  ``run_dir/metrics.json``, and returns the report that ``onerec train`` prints.
* evaluate: ``fn(run_dir: Path, resolved: dict, splits: list[str], ks: list[int]) ->
  MetricsReport`` — re-loads the saved model (safetensors + JSON only) and evaluates.

To add a task, add one function to each dict below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from onerec.errors import ConfigError

if TYPE_CHECKING:
    from onerec.eval import MetricsReport

TrainFn = Callable[[dict[str, Any], Path], "MetricsReport"]
EvaluateFn = Callable[[Path, dict[str, Any], Sequence[str], Sequence[int]], "MetricsReport"]


def _train_sasrec(config: dict[str, Any], run_dir: Path) -> MetricsReport:
    from onerec.baselines.sasrec_recipe import run_sasrec

    return run_sasrec(config, run_dir)


def _train_popular(config: dict[str, Any], run_dir: Path) -> MetricsReport:
    from onerec.baselines.popular import run_popular

    return run_popular(config, run_dir)


def _train_generator(config: dict[str, Any], run_dir: Path) -> MetricsReport:
    from onerec.model.recipe import run_generator_task

    return run_generator_task(config, run_dir)


def _evaluate_generator(
    run_dir: Path, resolved: dict[str, Any], splits: Sequence[str], ks: Sequence[int]
) -> MetricsReport:
    from onerec.model.recipe import evaluate_generator_run

    return evaluate_generator_run(run_dir, resolved, splits, ks)


def _evaluate_sasrec(
    run_dir: Path, resolved: dict[str, Any], splits: Sequence[str], ks: Sequence[int]
) -> MetricsReport:
    from onerec.baselines.sasrec_recipe import evaluate_sasrec

    return evaluate_sasrec(run_dir, resolved, splits, ks)


def _evaluate_popular(
    run_dir: Path, resolved: dict[str, Any], splits: Sequence[str], ks: Sequence[int]
) -> MetricsReport:
    from onerec.baselines.popular import evaluate_popular

    return evaluate_popular(run_dir, resolved, splits, ks)


TRAIN_TASKS: dict[str, TrainFn] = {
    "sasrec": _train_sasrec,
    "popular": _train_popular,
    "generator": _train_generator,
}

EVALUATE_TASKS: dict[str, EvaluateFn] = {
    "sasrec": _evaluate_sasrec,
    "popular": _evaluate_popular,
    "generator": _evaluate_generator,
}


def get_task(table: dict[str, Any], task: object, source: str) -> Any:
    """``table[task]``, or a :class:`ConfigError` listing the known tasks."""
    if not isinstance(task, str) or not task:
        raise ConfigError(
            f"{source}: missing top-level `task` key (one of: {', '.join(sorted(table))})"
        )
    if task not in table:
        raise ConfigError(
            f"{source}: unknown task {task!r}; known tasks: {', '.join(sorted(table))}"
        )
    return table[task]
