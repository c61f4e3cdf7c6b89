"""The report renders from ``summary.json`` alone, also for runs that stopped or failed."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from onerec.demo import DemoResult, rerender
from onerec.demo.report.html import render_html
from onerec.demo.report.terminal import print_summary


def partial_summary() -> dict:
    stages = [
        {
            "name": "prepare",
            "status": "ok",
            "seconds": 1.0,
            "cpu_seconds": 0.5,
            "budget_seconds": 10,
        },
        {
            "name": "generator",
            "status": "failed",
            "seconds": 2.0,
            "cpu_seconds": 1.0,
            "budget_seconds": 10,
            "reason": "RuntimeError: out of <memory>",
        },
        {
            "name": "ipa",
            "status": "not run",
            "seconds": 0.0,
            "cpu_seconds": 0.0,
            "budget_seconds": 10,
            "reason": "needs generator (failed)",
        },
    ]
    return {
        "title": "t",
        "run": {},
        "stages": stages,
        "notes": {"prepare": ["dropped 1 row"]},
        "prepare": {"users": 3, "items": 4},
    }


def test_partial_run_renders_with_reasons_and_escaped_errors() -> None:
    html = render_html(partial_summary())
    assert "failed: RuntimeError: out of &lt;memory&gt;" in html
    assert "not run: needs generator (failed)" in html
    assert "not run: stage crm is not part of this run" in html
    assert "note: dropped 1 row" in html
    assert "<memory>" not in html


def test_terminal_tables_print_for_a_partial_run() -> None:
    console = Console(record=True, width=120)
    print_summary(console, partial_summary())
    text = console.export_text()
    assert "generator" in text and "failed" in text and "not run" in text


def test_rerender_reproduces_the_report(tiny_run: DemoResult, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    copy.mkdir()
    (copy / "summary.json").write_text((tiny_run.run_dir / "summary.json").read_text())
    path = rerender(copy)
    html = path.read_text()
    summary = json.loads((copy / "summary.json").read_text())
    assert html == render_html(summary)
    # The order of the ranking rows survives the key-sorted JSON file.
    models = [row["model"] for row in summary["evaluate"]["ranking"]]
    positions = [html.index(f">{escape_model(m)}<") for m in models]
    assert positions == sorted(positions)


def escape_model(name: str) -> str:
    from html import escape

    return escape(name)
