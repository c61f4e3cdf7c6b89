"""Metrics reports: one JSON file and a readable rich table per evaluated model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from onerec.io import atomic_write_json, read_json

# column order of the table: the paper-style figures first
_SHORT = {"recall": "R", "ndcg": "N", "hr": "HR", "mrr": "MRR", "precision": "P"}


@dataclass
class MetricsReport:
    """Metrics per split (``{"valid": {"recall@10": …}, "test": {…}}``) plus run facts."""

    splits: dict[str, dict[str, float]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        return {"metrics": self.splits, "meta": self.meta}

    def save(self, path: str | Path) -> Path:
        """Write the report as JSON atomically."""
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> MetricsReport:
        """Read a report written by :meth:`save`."""
        data = read_json(path)
        return cls(splits=data["metrics"], meta=data.get("meta", {}))

    def columns(self) -> list[str]:
        """Metric keys present: the paper's R@k, N@k pairs by k first, then HR@k, MRR@k."""
        keys = {key for metrics in self.splits.values() for key in metrics}
        ks = sorted({int(key.split("@")[1]) for key in keys if "@" in key})
        ordered = [f"{n}@{k}" for k in ks for n in ("recall", "ndcg")]
        ordered += [f"{n}@{k}" for n in ("hr", "mrr") for k in ks]
        return [key for key in ordered if key in keys]

    def table(self, title: str | None = None) -> Table:
        """A rich table: one row per split, columns R@k, N@k, HR@k, MRR@k."""
        table = Table(title=title)
        table.add_column("split")
        cols = self.columns()
        for key in cols:
            name, k = key.split("@")
            table.add_column(f"{_SHORT.get(name, name)}@{k}", justify="right")
        for split, metrics in self.splits.items():
            table.add_row(split, *(f"{metrics[c]:.4f}" if c in metrics else "-" for c in cols))
        return table

    def print(self, console: Console | None = None, title: str | None = None) -> None:
        """Print :meth:`table` to ``console`` (stdout by default, at least 120 columns wide
        so that every metric fits when the output is a file or pipe)."""
        if console is None:
            console = Console()
            if not console.is_terminal:
                console = Console(width=max(console.width, 120))
        console.print(self.table(title))
