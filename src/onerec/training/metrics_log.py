"""Where the training loop reports: a JSON-lines metrics file and a rich progress bar.

Both are silent on non-main processes (the trainer passes ``enabled``/``path`` accordingly) and
the progress bar is shown only on an interactive terminal.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from onerec.training.distributed import is_main_process


class _HasStep(Protocol):
    step: int
    epoch: int


class MetricsLog:
    """Appends one JSON object per line to ``path`` (``None``: records are dropped).

    Lines have ``kind`` ``"train"`` (means over the last ``log_every`` steps) or ``"eval"``.
    Appending (not rewriting) means a resumed run continues the same file.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path if is_main_process() else None
        self.started = time.time()

    def _write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")

    def write_train(
        self,
        state: _HasStep,
        window: dict[str, float],
        window_steps: int,
        optimizer: torch.optim.Optimizer,
    ) -> None:
        """Log the mean of each windowed train metric and the current LR."""
        record: dict[str, Any] = {"kind": "train", "step": state.step, "epoch": state.epoch}
        record.update({k: v / max(1, window_steps) for k, v in window.items()})
        record["lr"] = float(optimizer.param_groups[0]["lr"])
        record["wall_s"] = round(time.time() - self.started, 3)
        self._write(record)

    def write_eval(self, record: dict[str, Any]) -> None:
        """Log one evaluation record."""
        self._write({"kind": "eval", **record, "wall_s": round(time.time() - self.started, 3)})


class TrainProgress:
    """A rich progress bar over optimizer steps; a no-op when disabled or not on a TTY."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.verbose = enabled  # evaluation lines are printed even when not on a terminal
        self.enabled = enabled and sys.stderr.isatty()
        self._progress: Progress | None = None
        self._task: Any = None
        self.total = total

    def __enter__(self) -> TrainProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("train", total=self.total, loss="-")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)
            self._progress = None

    def note(self, text: str) -> None:
        """Print one line (above the bar when it is shown; to stderr otherwise)."""
        if self._progress is not None:
            self._progress.console.print(text, highlight=False)
        elif self.verbose:
            print(text, file=sys.stderr, flush=True)

    def advance_to(self, step: int) -> None:
        """Jump to ``step`` (used after resuming)."""
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    def update(self, step: int, loss: float | None) -> None:
        """Show ``step`` done and the running loss."""
        if self._progress is not None:
            if loss is None:
                self._progress.update(self._task, completed=step)
            else:
                self._progress.update(self._task, completed=step, loss=f"{loss:.4f}")
