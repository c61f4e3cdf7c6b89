"""``run_demo``: the stages in order, each timed against its budget, then the report.

Stage ``k`` is a function taking the outputs of the stages it ``needs`` (and, as ``None`` when
absent, those it merely ``wants``). A stage whose needs are missing is "not run" with the
reason; a stage that raises is "failed" with its one-line error (traceback in
``RUN_DIR/logs/<stage>.traceback.txt``), and the run continues with the stages that do not
depend on it. ``stages.json`` is rewritten atomically after every stage, ``summary.json`` and
``report.html`` at the end — also after a failure, so the report shows how far the run got.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from onerec.demo.config import STAGE_NAMES, DemoConfig
from onerec.demo.context import (
    StageContext,
    StageRecord,
    StageUnavailable,
    elapsed_since,
    remove_stale_temporaries,
)
from onerec.demo.report.html import render_html
from onerec.demo.report.terminal import print_summary
from onerec.demo.stages_data import run_embeddings, run_prepare, run_tokenizer
from onerec.demo.stages_eval import run_bundle, run_crm, run_evaluate
from onerec.demo.stages_models import run_generator, run_ipa_stage, run_reward
from onerec.errors import OnerecError
from onerec.io import atomic_write_json, atomic_write_text, read_json

RUN_MARKER = "demo_config.json"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
STAGES_FILE = "stages.json"


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage: its function and the stages whose outputs it takes."""

    name: str
    title: str
    fn: Callable[..., Any]
    needs: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()


STAGES: tuple[StageSpec, ...] = (
    StageSpec(
        "prepare", "prepare the data (validate, index, engaged view, leave-one-out)", run_prepare
    ),
    StageSpec("embeddings", "item embeddings", run_embeddings, ("prepare",)),
    StageSpec(
        "tokenizer",
        "semantic IDs (balanced residual k-means + trie)",
        run_tokenizer,
        ("embeddings",),
    ),
    StageSpec("generator", "train the OneRec generator", run_generator, ("prepare", "tokenizer")),
    StageSpec("reward", "train the reward model", run_reward, ("prepare",)),
    StageSpec(
        "ipa",
        "iterative preference alignment (DPO)",
        run_ipa_stage,
        ("prepare", "tokenizer", "generator", "reward"),
    ),
    StageSpec("crm", "train CRM (controllable retrieval)", run_crm, ("prepare",)),
    StageSpec(
        "evaluate",
        "evaluate",
        run_evaluate,
        ("prepare",),
        ("tokenizer", "generator", "reward", "ipa", "crm"),
    ),
    StageSpec(
        "bundle",
        "assemble the serving bundle",
        run_bundle,
        ("prepare",),
        ("generator", "ipa", "crm"),
    ),
)
assert tuple(s.name for s in STAGES) == STAGE_NAMES


@dataclass
class DemoResult:
    """What a demo run produced."""

    run_dir: Path
    report_path: Path
    records: list[StageRecord]
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[StageRecord]:
        return [r for r in self.records if r.status == "failed"]


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (user-facing errors without the type name)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, OnerecError) else f"{type(exc).__name__}: {text}"


def check_run_dir(run_dir: Path) -> None:
    """Refuse to clear a non-empty directory that is not a demo run directory."""
    if run_dir.exists() and not run_dir.is_dir():
        raise OnerecError(f"--out {run_dir} is a file; give a directory for the demo run")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not (run_dir / RUN_MARKER).is_file():
        raise OnerecError(
            f"--out {run_dir} is not empty and holds no earlier demo run ({RUN_MARKER}); "
            "choose a new or empty directory"
        )


def clear_previous_run(run_dir: Path) -> None:
    """Remove the artifacts of an earlier demo run in ``run_dir`` (never other files)."""
    import shutil

    remove_stale_temporaries(run_dir)
    for name in (*STAGE_NAMES, "logs"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for name in (REPORT_FILE, SUMMARY_FILE, STAGES_FILE):
        (run_dir / name).unlink(missing_ok=True)


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def set_threads(threads: int | None) -> None:
    """Limit torch's and faiss's CPU threads (contended threads spin and slow everything)."""
    if threads is None:
        return
    torch.set_num_threads(threads)
    import faiss

    faiss.omp_set_num_threads(threads)


def run_demo(
    config: DemoConfig,
    run_dir: str | Path,
    console: Console | None = None,
    config_name: str = "default",
    show_progress: bool = True,
    stop_after: str | None = None,
) -> DemoResult:
    """Run every stage (up to ``stop_after``), write ``report.html``; see the module docstring."""
    run_dir = Path(run_dir)
    console = console or Console()
    check_run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    clear_previous_run(run_dir)
    atomic_write_json(run_dir / RUN_MARKER, config.model_dump(mode="json"))
    set_threads(config.threads)
    ctx = StageContext(run_dir, config, console, show_progress)
    run_info: dict[str, Any] = {
        "started_at": dt.datetime.now().isoformat(timespec="seconds"),
        "config_name": config_name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "machine": f"{platform.machine()} {platform.python_implementation()} {platform.python_version()}",
        "load_before": _load(),
    }
    started = time.perf_counter()
    records = [StageRecord(s.name, budget_seconds=config.budgets.get(s.name)) for s in STAGES]
    outputs: dict[str, Any] = {}
    stopped = False
    for number, (spec, record) in enumerate(zip(STAGES, records, strict=True), start=1):
        if stopped:
            record.status, record.reason = "not run", f"stopped after stage {stop_after!r}"
            continue
        _run_stage(ctx, spec, record, outputs, records, number)
        _write_stages(run_dir, records)
        stopped = spec.name == stop_after
    run_info.update(
        total_seconds=round(elapsed_since(started), 1),
        total_cpu_seconds=round(sum(r.cpu_seconds for r in records), 1),
        load_after=_load(),
    )
    summary = build_summary(run_info, records, ctx.notes)
    report_path = write_report(run_dir, summary)
    console.rule("results")
    print_summary(console, summary)
    console.print(f"report: [bold]{report_path.resolve()}[/]", highlight=False)
    if "bundle" in outputs:
        console.print(f"serve it: onerec serve {outputs['bundle'].path}", highlight=False)
    return DemoResult(run_dir, report_path, records, outputs, summary)


def _run_stage(
    ctx: StageContext,
    spec: StageSpec,
    record: StageRecord,
    outputs: dict[str, Any],
    records: list[StageRecord],
    number: int,
) -> None:
    console = ctx.console
    missing = [name for name in spec.needs if name not in outputs]
    if missing:
        status = {r.name: r.status for r in records}
        record.status = "not run"
        record.reason = "needs " + ", ".join(f"{m} ({status.get(m)})" for m in missing)
        console.print(f"[yellow]– {spec.name}: not run: {record.reason}[/]", highlight=False)
        return
    budget = f" · budget {record.budget_seconds:.0f} s" if record.budget_seconds else ""
    console.rule(
        f"[bold][{number}/{len(STAGES)}] {spec.name}[/]: {spec.title}{budget}", align="left"
    )
    args = [outputs[name] for name in spec.needs] + [outputs.get(name) for name in spec.wants]
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        output = spec.fn(ctx, *args)
    except StageUnavailable as exc:
        record.status, record.reason = "not run", one_line(exc)
    except Exception as exc:  # a stage's failure is reported, the independent stages go on
        record.status, record.reason = "failed", one_line(exc)
        log = ctx.run_dir / "logs" / f"{spec.name}.traceback.txt"
        atomic_write_text(log, traceback.format_exc())
    else:
        record.status = "ok"
        outputs[spec.name] = output
        record.summary = output.summary
    record.seconds = elapsed_since(start)
    record.cpu_seconds = time.process_time() - cpu_start
    if record.status == "ok":
        over = " [red](over budget)[/]" if record.over_budget else ""
        console.print(
            f"[green]✓ {spec.name}[/] {record.seconds:.1f} s wall, {record.cpu_seconds:.1f} s CPU{over}",
            highlight=False,
        )
    elif record.status == "failed":
        console.print(
            f"[bold red]✗ stage {spec.name} failed:[/] {record.reason} "
            f"(traceback: {ctx.run_dir / 'logs' / (spec.name + '.traceback.txt')})",
            highlight=False,
        )
    else:
        console.print(f"[yellow]– {spec.name}: not run: {record.reason}[/]", highlight=False)


def _write_stages(run_dir: Path, records: list[StageRecord]) -> None:
    atomic_write_json(run_dir / STAGES_FILE, [r.to_json() for r in records])


def build_summary(
    run_info: dict[str, Any], records: list[StageRecord], notes: dict[str, list[str]]
) -> dict[str, Any]:
    """Everything the report shows, JSON-able."""
    summary: dict[str, Any] = {
        "title": "onerec demo: OneRec + CRM on KuaiRand",
        "run": run_info,
        "stages": [r.to_json() for r in records],
        "notes": notes,
    }
    for record in records:
        if record.status == "ok":
            summary[record.name] = record.summary
    return summary


def write_report(run_dir: Path, summary: dict[str, Any]) -> Path:
    """``summary.json`` and the self-contained ``report.html``."""
    atomic_write_json(run_dir / SUMMARY_FILE, summary)
    path = run_dir / REPORT_FILE
    atomic_write_text(path, render_html(summary))
    return path


def rerender(run_dir: str | Path) -> Path:
    """Render ``report.html`` again from an existing run's ``summary.json``."""
    run_dir = Path(run_dir)
    if not (run_dir / SUMMARY_FILE).is_file():
        raise OnerecError(
            f"{run_dir} has no {SUMMARY_FILE}; run `onerec demo --out {run_dir}` first"
        )
    return write_report(run_dir, read_json(run_dir / SUMMARY_FILE))
