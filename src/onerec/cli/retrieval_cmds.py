"""CRM commands: ``onerec train-retrieval``, ``onerec retrieve``, ``onerec crm-sim-control``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from onerec.errors import OnerecError


def _control_table(title: str, rows: list[dict[str, Any]], ks: list[int]) -> Table:
    table = Table(title=title)
    columns = ["strategy", "condition"]
    columns += [f"recall@{k}" for k in ks] + [f"recall@{max(ks)}_se"]
    columns += [f"target_recall@{max(ks)}", f"hit_target@{min(ks)}", "target_auc"]
    for name in columns:
        table.add_column(name, justify="left" if name in ("strategy", "condition") else "right")
    for row in rows:
        table.add_row(*[_fmt(row.get(name)) for name in columns])
    return table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "—" if value != value else f"{value:.4g}"
    return str(value)


def train_retrieval_cmd(
    config: Path = typer.Argument(..., help="TOML/YAML config (see configs/crm_*.toml)"),
    overrides: list[str] = typer.Argument(
        None, help="key=value overrides, e.g. model.condition=none"
    ),
) -> None:
    """Train a CRM two-tower model (or the unconditioned baseline with model.condition=none).

    Fits the condition normaliser on the training window, trains with in-batch + sampled
    softmax with log-Q correction, prints the control table (per condition level and strategy)
    for validation and test, builds the ANN index and writes OUT_DIR/model.
    """
    from onerec.config import load_config
    from onerec.retrieval.train import CRMTrainConfig, train_retrieval
    from onerec.training.distributed import init_distributed, is_main_process

    init_distributed()  # under torchrun: every rank trains its share, rank 0 writes OUT_DIR
    cfg = load_config(CRMTrainConfig, config, overrides or [])
    run = train_retrieval(cfg)
    if not is_main_process():
        return
    console = Console(width=max(120, Console().width))
    summary = run.summary
    for split in ("valid", "test"):
        console.print(
            _control_table(
                f"{summary['dataset']} — {split}", summary["control"][split], cfg.eval.ks
            )
        )
    console.print(
        f"train examples {summary['train_examples']}, test users {summary['test_users']}, "
        f"ANN recall@100 vs exact {summary['ann_recall@100']:.4f}, "
        f"trained {summary['train_seconds']:.0f}s; model → {run.out_dir / 'model'}"
    )


def eval_retrieval_cmd(
    model: Path = typer.Option(..., "--model", help="model directory written by train-retrieval"),
    out: Path | None = typer.Option(None, "--out", help="also write the tables as JSON here"),
) -> None:
    """Recompute the control tables (validation and test) of a saved CRM model."""
    from onerec.io import atomic_write_json
    from onerec.retrieval.train import evaluate_saved

    tables = evaluate_saved(model)
    ks = sorted(
        {
            int(key.split("@")[1])
            for key in tables["test"][0]
            if key.startswith("recall@") and not key.endswith("_se")
        }
    )
    console = Console(width=max(120, Console().width))
    for split in ("valid", "test"):
        console.print(_control_table(f"{model} — {split}", tables[split], ks))
    if out is not None:
        atomic_write_json(out, tables)


def retrieve_cmd(
    model: Path = typer.Option(..., "--model", help="model directory written by train-retrieval"),
    user: str = typer.Option(..., "--user", help="external user_id"),
    condition: float | None = typer.Option(
        None, "--condition", help="condition value in raw units (fixed strategy)"
    ),
    strategy: str | None = typer.Option(
        None,
        "--strategy",
        help="max | mean | tdm | mix (instead of --condition); mix ranks by the condition "
        "marginalised out (plain relevance)",
    ),
    k: int = typer.Option(50, "-k", "--k", help="how many items"),
    requests: int = typer.Option(
        1, "--requests", help="successive requests to issue (shows tdm alternating)"
    ),
    tdm_values: str | None = typer.Option(
        None, "--tdm-values", help="comma-separated raw conditions for tdm (default: quantiles)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Retrieve top-k items for a user under a condition or a condition strategy."""
    from onerec.retrieval.artifact import Retriever
    from onerec.retrieval.strategies import STRATEGIES

    if k < 1:
        raise OnerecError("-k must be at least 1")
    retriever = Retriever(model)
    if retriever.conditioned:
        if (condition is None) == (strategy is None):
            raise OnerecError(
                "a conditioned model needs exactly one of --condition X or --strategy "
                "max|mean|tdm|mix"
            )
        chosen = "fixed" if strategy is None else strategy
        if chosen not in STRATEGIES:
            raise OnerecError(f"--strategy {strategy!r}: use max, mean, tdm or mix")
    else:
        chosen = "fixed"
    levels = None
    if tdm_values:
        try:
            levels = [float(v) for v in tdm_values.split(",")]
        except ValueError:
            raise OnerecError(
                f"--tdm-values {tdm_values!r} must be comma-separated numbers"
            ) from None
    results = [
        retriever.retrieve(user, k, chosen, condition, levels)  # type: ignore[arg-type]
        for _ in range(max(1, requests))
    ]
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in results], indent=2))
        return
    console = Console()
    for n, result in enumerate(results, 1):
        cond = (
            "unconditioned"
            if not retriever.conditioned
            else "condition marginalised out (log p(item | user))"
            if result.condition_value is None
            else f"{retriever.condition_target}≈{result.condition_value:.4g} "
            f"(position {result.condition_position:.2f})"
        )
        console.print(f"request {n}: user {user}, strategy {result.strategy}, {cond}")
        table = Table()
        table.add_column("rank", justify="right")
        table.add_column("item_id")
        table.add_column("score", justify="right")
        for rank, (item, score) in enumerate(zip(result.item_ids, result.scores, strict=True), 1):
            table.add_row(str(rank), item, f"{score:.3f}")
        console.print(table)


def sim_control_cmd(
    config: Path = typer.Argument(..., help="TOML/YAML SimControlConfig (configs/crm_sim_*.toml)"),
    overrides: list[str] = typer.Argument(None, help="key=value overrides"),
    out: Path | None = typer.Option(None, "--out", help="also write the result JSON here"),
) -> None:
    """Ground-truth control: true watch time of the top-k as the condition rises (simulator)."""
    from onerec.config import load_config
    from onerec.io import atomic_write_json
    from onerec.retrieval.sim_control import SimControlConfig, run_sim_control

    cfg = load_config(SimControlConfig, config, overrides or [])
    result = run_sim_control(cfg)
    probe = result["probe"]
    oracle = probe.get("oracle")
    table = Table(title=f"CRM-{cfg.crm.model.condition}: true mean of the top-{cfg.k} (simulator)")
    names = ["level (quantile)", "condition (ms)", "true watch (s)", "true click"]
    if oracle:
        names += ["oracle, engaged (s)", "oracle, all (s)"]
    for name in names:
        table.add_column(name, justify="right")
    for n, level in enumerate(probe["levels"]):
        cells = [
            f"{level['quantile']:.2f}",
            f"{level['condition_ms']:.0f}",
            f"{level['true_watch_s']:.2f}",
            f"{level['true_click']:.3f}",
        ]
        if oracle:
            cells += [f"{oracle['engaged_only'][n]:.2f}", f"{oracle['all_impressions'][n]:.2f}"]
        table.add_row(*cells)
    console = Console(width=max(120, Console().width))
    if probe["levels"]:
        console.print(table)
    for strategy in ("none", "max", "mean"):
        if strategy in probe:
            console.print(
                f"{strategy}: true watch {probe[strategy]['true_watch_s']:.2f} s, "
                f"true click {probe[strategy]['true_click']:.3f}"
            )
    if "spearman" in probe:
        console.print(
            f"Spearman {probe['spearman']:.3f}; strictly increasing: {probe['strictly_increasing']}"
        )
    if out is not None:
        atomic_write_json(out, result)


def register(app: typer.Typer) -> None:
    """Attach the retrieval commands to ``app``."""
    app.command("train-retrieval")(train_retrieval_cmd)
    app.command("retrieve")(retrieve_cmd)
    app.command("eval-retrieval")(eval_retrieval_cmd)
    app.command("crm-sim-control")(sim_control_cmd)
