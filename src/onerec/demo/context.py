"""What every demo stage receives, and how a stage publishes its directory atomically.

A stage builds its artifacts in ``stage_dir(name)`` — a temporary sibling directory — and the
pipeline renames it to ``RUN_DIR/<name>`` only when the stage returns normally
(:func:`onerec.io.atomic_dir`). A stage that fails or is killed leaves no ``RUN_DIR/<name>``
behind (a stale ``.tmp-<name>-*`` from a killed process is removed by the next run).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from onerec.demo.config import DemoConfig
from onerec.errors import OnerecError
from onerec.io import atomic_dir


class StageUnavailable(OnerecError):
    """A stage cannot run because a part it needs is missing (reported as "not run: …")."""


@dataclass
class StageContext:
    """The run directory, the resolved config, the console, and per-stage notes."""

    run_dir: Path
    config: DemoConfig
    console: Console
    show_progress: bool = True
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, stage: str, text: str) -> None:
        """A line the report shows under the stage (warnings, choices made at run time)."""
        self.notes.setdefault(stage, []).append(text)

    @contextlib.contextmanager
    def stage_dir(self, name: str) -> Iterator[Path]:
        """A temporary directory that becomes ``run_dir/name`` when the block succeeds."""
        with atomic_dir(self.run_dir / name) as tmp:
            yield tmp

    def path(self, name: str) -> Path:
        """Where a finished stage's directory lives."""
        return self.run_dir / name


def remove_stale_temporaries(run_dir: Path) -> list[str]:
    """Delete ``.tmp-*`` / ``.old-*`` leftovers of a killed earlier run; returns their names."""
    removed: list[str] = []
    if not run_dir.is_dir():
        return removed
    for child in run_dir.iterdir():
        if child.name.startswith((".tmp-", ".old-")):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
            removed.append(child.name)
    return removed


@dataclass
class StageRecord:
    """Outcome of one stage as the report shows it."""

    name: str
    status: str = "pending"  # ok | failed | not run
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time: ≈ wall time on an idle machine with 1 thread
    budget_seconds: float | None = None
    reason: str = ""  # failed: the error; not run: why
    summary: dict[str, Any] = field(default_factory=dict)
    started_at: float = 0.0

    @property
    def over_budget(self) -> bool:
        return (
            self.status == "ok"
            and self.budget_seconds is not None
            and self.seconds > self.budget_seconds
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "seconds": round(self.seconds, 2),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "budget_seconds": self.budget_seconds,
            "over_budget": self.over_budget,
            "reason": self.reason,
        }


def elapsed_since(start: float) -> float:
    """Seconds since ``start`` (``time.perf_counter`` clock)."""
    return time.perf_counter() - start
