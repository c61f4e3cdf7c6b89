"""``onerec train CONFIG`` and ``onerec evaluate RUN_DIR``."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from onerec.errors import ConfigError, OnerecError

TRAIN_HELP = """Train a model described by a config file (TOML or YAML), then evaluate it on validation and test.

The file's top-level `task` key picks the recipe: `sasrec` (SASRec with full-softmax cross-entropy), `popular` (most-popular) or `generator` (the OneRec encoder–decoder; see docs/generator.md).

\\[data]: dataset = a named data set (amazon-beauty, amazon-sports, kuairand-demo, ...) or a prepared directory; data_root = folder of the named data sets; max_history = history length at evaluation (leave-one-out, default 20).

\\[model]: model sizes, e.g. d_model, num_layers, num_heads, dropout, max_len for sasrec.

\\[train]: the training loop: epochs, max_steps, batch_size, lr, weight_decay, warmup_steps, min_lr_ratio, grad_clip, eval_every_epochs / eval_every_steps, early_stopping_patience, monitor (ndcg@10), seed, device (auto | cpu | cuda | cuda:N), resume.

\\[eval]: ks (cut-offs, default \\[5, 10]), batch_size, exclude_history (false in the TIGER protocol).

Override any key after the file: train.lr=3e-4 model.dropout=0.5 data.dataset=amazon-sports

The run directory (--out, default runs/<task>-<dataset>-<timestamp>) receives run_config.json (resolved config), source_config.* (the file as given), model/ (config.json + model.safetensors), metrics.json (validation and test metrics of the best model), metrics.jsonl (training log) and checkpoints/ (last and best). Running again with train.resume=true --out RUN_DIR continues an interrupted run exactly.

Several processes: torchrun --standalone --nproc-per-node 2 --no-python onerec train CONFIG --out RUN (train.batch_size stays the global batch; rank 0 names and writes the run directory; see docs/distributed.md).

Example: onerec train configs/sasrec_beauty.toml
"""

# Tasks whose recipe trains data-parallel under torchrun (every rank runs it; rank 0 writes).
# Any other task runs on rank 0 alone while the other ranks wait (e.g. `popular`: no training).
DATA_PARALLEL_TASKS = frozenset({"sasrec", "generator"})

EVALUATE_HELP = """Evaluate a trained run directory with full ranking over the whole catalogue.

Re-loads RUN_DIR/model (config.json + model.safetensors only), re-creates the leave-one-out split from the data set recorded in RUN_DIR/run_config.json (refusing data that differs from the training data), and prints Recall (R), NDCG (N), HR and MRR at each cut-off as a table, then the same figures as one JSON object on the last line.

Under torchrun (e.g. torchrun --standalone --nproc-per-node 2 --no-python onerec evaluate RUN_DIR) the users are split across the processes, with identical figures; rank 0 prints.

Evaluation settings saved with the run can be changed with eval.key=value overrides after the run directory, e.g. eval.beam_width=50 (generator) or eval.exclude_history=true; the model and data cannot.

Example: onerec evaluate runs/sasrec-amazon-beauty-20250101-120000 --split both --ks 5,10
"""


def _run_dir_name(task: str, dataset: object) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(dataset)).name or "data").strip("-")
    return Path("runs") / f"{task}-{slug}-{time.strftime('%Y%m%d-%H%M%S')}"


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--ks {text!r} must be comma-separated integers, e.g. 5,10") from None
    if not ks or ks[0] < 1:
        raise ConfigError(f"--ks {text!r} must list positive cut-offs, e.g. 5,10")
    return ks


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _console() -> Console:
    """Rich console for the run's messages; silent on torchrun ranks other than 0."""
    from onerec.training.distributed import is_main_process

    quiet = not is_main_process()
    return Console(width=120, quiet=quiet) if not Console().is_terminal else Console(quiet=quiet)


def _claim_run_dir(run_dir: Path, resume: bool, config: Path) -> tuple[Path, bool]:
    """Create ``run_dir`` (refusing a non-empty one unless resuming) and copy the config file
    into it; ``(run_dir, created)``. Under torchrun rank 0 alone does this and every rank gets
    its outcome — the same directory, or the same error — through one broadcast."""
    from onerec.io import atomic_write_text
    from onerec.training.distributed import broadcast_object, is_main_process

    outcome: tuple[str, bool, str | None] = (str(run_dir), False, None)
    if is_main_process():
        if run_dir.exists() and any(run_dir.iterdir()) and not resume:
            outcome = (
                str(run_dir),
                False,
                f"run directory {run_dir} already exists and is not empty; choose another "
                "--out, or add train.resume=true to continue that run",
            )
        else:
            created = not run_dir.exists()
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                run_dir / f"source_config{config.suffix}", config.read_text(encoding="utf-8")
            )
            outcome = (str(run_dir), created, None)
    name, created, error = broadcast_object(outcome)
    if error is not None:
        raise OnerecError(error)
    return Path(name), created


def train(
    config: Annotated[
        Path, typer.Argument(help="config file (.toml/.yaml) with a top-level `task` key")
    ],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="key=value overrides, e.g. train.lr=3e-4 model.dropout=0.5"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="run directory (default runs/<task>-<dataset>-<timestamp>)"),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch CPU threads (default: torch's)")
    ] = None,
) -> None:
    from onerec.config import apply_overrides, read_config_file
    from onerec.training.distributed import (
        barrier,
        init_distributed,
        is_main_process,
        world_size,
    )
    from onerec.training.tasks import TRAIN_TASKS, get_task

    data: dict[str, Any] = apply_overrides(read_config_file(config), overrides or [])
    task_fn = get_task(TRAIN_TASKS, data.get("task"), str(config))
    dataset = (
        data.get("data", {}).get("dataset", "data")
        if isinstance(data.get("data"), dict)
        else "data"
    )
    resume = (
        bool(data.get("train", {}).get("resume", False))
        if isinstance(data.get("train"), dict)
        else False
    )
    # Under torchrun start the process group now: rank 0 alone picks the default (timestamped)
    # name and creates the directory; every rank receives the same path.
    init_distributed()
    default_dir = _run_dir_name(str(data["task"]), dataset) if out is None else out
    run_dir, created_run_dir = _claim_run_dir(default_dir, resume, config)
    _set_threads(threads)
    console = _console()
    shown = f" ({world_size()} processes)" if world_size() > 1 else ""
    console.print(f"[bold]onerec train[/] task={data['task']}{shown} run dir: {run_dir}")
    runs_here = data["task"] in DATA_PARALLEL_TASKS or is_main_process()
    try:
        report = task_fn(data, run_dir) if runs_here else None
    except ConfigError:
        # The recipe refused the config before training: leave no half-made run behind (every
        # rank refuses the same config; only rank 0 created the directory).
        if created_run_dir and is_main_process():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    barrier()  # ranks that did not run the task wait for rank 0 to finish writing
    if report is not None:
        report.print(console, title=f"{data['task']} on {dataset}")
    console.print(f"run directory: {run_dir}")


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="a run directory written by `onerec train`")],
    overrides: Annotated[
        list[str] | None,
        typer.Argument(
            help="eval.key=value overrides of the saved evaluation settings, e.g. eval.beam_width=50"
        ),
    ] = None,
    split: Annotated[
        str, typer.Option("--split", help="test, valid, or both (valid then test)")
    ] = "test",
    ks: Annotated[str, typer.Option("--ks", help="comma-separated cut-offs")] = "5,10",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="also write the report to this JSON file")
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help="torch CPU threads (default: torch's)")
    ] = None,
) -> None:
    from onerec.baselines.runs import read_run_config
    from onerec.training.distributed import init_distributed, is_main_process
    from onerec.training.tasks import EVALUATE_TASKS, get_task

    splits = {"test": ["test"], "valid": ["valid"], "both": ["valid", "test"]}.get(split)
    if splits is None:
        raise ConfigError(f"--split {split!r} must be test, valid or both")
    cutoffs = _parse_ks(ks)
    resolved = read_run_config(run_dir)
    task_fn = get_task(EVALUATE_TASKS, resolved.get("task"), f"{run_dir}/run_config.json")
    resolved = _apply_eval_overrides(resolved, overrides or [])
    _set_threads(threads)
    init_distributed()  # under torchrun the users are split across the ranks (same numbers)
    report = task_fn(run_dir, resolved, splits, cutoffs)
    report.meta["run_dir"] = str(run_dir)
    if overrides:
        report.meta["overrides"] = list(overrides)
    if not is_main_process():
        return
    report.print(_console(), title=f"{resolved.get('task')} — {run_dir}")
    if json_out is not None:
        report.save(json_out)
    typer.echo(json.dumps(report.to_dict(), sort_keys=True))


def _apply_eval_overrides(resolved: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``eval.*`` overrides; anything else would evaluate a different model or data set."""
    from onerec.config import apply_overrides

    for item in overrides:
        if not item.startswith("eval."):
            raise ConfigError(
                f"evaluate override {item!r}: only eval.* settings can change after training "
                "(e.g. eval.beam_width=50, eval.exclude_history=true); the model and data are "
                "fixed by the run"
            )
    return apply_overrides(resolved, overrides)


def register(app: typer.Typer) -> None:
    """Attach ``train`` and ``evaluate`` to ``app``."""
    app.command("train", help=TRAIN_HELP)(train)
    app.command("evaluate", help=EVALUATE_HELP)(evaluate)
