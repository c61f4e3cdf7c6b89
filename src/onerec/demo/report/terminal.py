"""The demo's closing tables in the terminal (rich), from the same summary as the HTML report."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from onerec.demo.report.figures import RANKING_KEYS, fmt

STATUS_STYLE = {"ok": "green", "failed": "bold red", "not run": "yellow"}


def stage_table(stages: list[dict[str, Any]]) -> Table:
    """Status and seconds per stage."""
    table = Table(title="stages")
    for column in ("stage", "status", "wall s", "CPU s", "budget", "detail"):
        table.add_column(
            column, justify="right" if column in ("wall s", "CPU s", "budget") else "left"
        )
    for stage in stages:
        seconds = f"{stage['seconds']:.1f}" if stage["status"] != "not run" else "—"
        if stage.get("over_budget"):
            seconds += " (over)"
        budget = stage.get("budget_seconds")
        table.add_row(
            stage["name"],
            f"[{STATUS_STYLE.get(stage['status'], 'white')}]{stage['status']}[/]",
            seconds,
            f"{stage.get('cpu_seconds', 0.0):.1f}" if stage["status"] != "not run" else "—",
            f"{budget:.0f}" if budget else "—",
            stage.get("reason", "")[:90],
        )
    return table


def ranking_table(evaluation: dict[str, Any]) -> Table | None:
    """Leave-one-out metrics per model."""
    ranking = evaluation.get("ranking", [])
    if not ranking:
        return None
    table = Table(title="leave-one-out ranking, test (engaged items, full catalogue)")
    table.add_column("model")
    keys = [k for k in RANKING_KEYS if any(k in m for m in ranking)]
    for key in keys:
        table.add_column(key, justify="right")
    for metrics in ranking:
        table.add_row(str(metrics.get("model")), *(fmt(metrics.get(k)) for k in keys))
    return table


def reward_table(results: dict[str, Any]) -> Table | None:
    """Reward model vs the per-item-average baseline on held-out sessions."""
    if not results:
        return None
    table = Table(title="reward model, held-out sessions")
    for column in ("target", "measure", "model", "per-item avg"):
        table.add_column(column, justify="left" if column in ("target", "measure") else "right")
    for target, row in results.items():
        for key, value in row.items():
            if key.startswith("model_"):
                measure = key.removeprefix("model_")
                table.add_row(target, measure, fmt(value), fmt(row.get(f"baseline_{measure}")))
    return table


def ipa_table(ipa: dict[str, Any]) -> Table | None:
    """Reward-model estimate of the top session before and after IPA."""
    if not ipa:
        return None
    table = Table(title="IPA: reward of the top generated session, held-out users")
    for column in ("target", "before", "after"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for key, before in ipa["before"].items():
        table.add_row(key, fmt(before), fmt(ipa["after"].get(key)))
    return table


def crm_table(rows: list[dict[str, Any]], k: int) -> Table | None:
    """The CRM control rows: condition, recall and the logged target of the hits."""
    if not rows:
        return None
    table = Table(title=f"CRM control (test): condition → retrieved items' logged target (K={k})")
    for column in ("strategy", "condition", f"recall@{k}", f"hit_target@{k}", "target_auc"):
        table.add_column(column, justify="left" if column in ("strategy", "condition") else "right")
    for row in rows:
        table.add_row(
            str(row.get("strategy")),
            str(row.get("condition")),
            fmt(row.get(f"recall@{k}")),
            fmt(row.get(f"hit_target@{k}")),
            fmt(row.get("target_auc")),
        )
    return table


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    """Every closing table that has data."""
    console.print(stage_table(summary.get("stages", [])))
    evaluation = summary.get("evaluate", {})
    ks = summary.get("crm", {}).get("ks", [100])
    for table in (
        ranking_table(evaluation),
        reward_table(evaluation.get("reward", {})),
        ipa_table(evaluation.get("ipa", {})),
        crm_table(evaluation.get("crm", []), ks[-1] if ks else 100),
    ):
        if table is not None:
            console.print(table)
