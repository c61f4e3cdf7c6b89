"""The self-contained HTML report of a demo run, rendered from its ``summary.json``.

One file, no external resources: CSS inline, plots as inline SVG (:mod:`.svg`). Every section
reads one stage's summary; a stage that did not run shows "not run: <reason>" (or its error)
instead of its plots, so a partial run still renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from onerec.demo.report import figures

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222;padding:0 16px}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}p.sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.ok{color:#1a7f37;font-weight:bold}.failed{color:#c62828;font-weight:bold}
.notrun{color:#8a6d00;font-weight:bold}.over{color:#c62828}
.grid{display:flex;flex-wrap:wrap;gap:14px}.grid svg{border:1px solid #eee}
.box{background:#fff8e1;border:1px solid #f0d060;padding:8px 12px;margin:8px 0}
.err{background:#fdecea;border:1px solid #e57373;padding:8px 12px;margin:8px 0}
.note{color:#555;font-size:13px}code{background:#f3f3f3;padding:1px 4px}
"""


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], left_columns: int = 1) -> str:
    """An HTML table; the first ``left_columns`` columns are left-aligned text."""

    def cls(i: int) -> str:
        return ' class="l"' if i < left_columns else ""

    head = "".join(f"<th{cls(i)}>{escape(str(h))}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f"<td{cls(i)}>{cell_html(cell)}</td>" for i, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def cell_html(value: Any) -> str:
    """Escaped text of a cell; floats get 4 significant digits."""
    if value is None or isinstance(value, float):
        return escape(figures.fmt(value))
    if isinstance(value, RawHtml):
        return value.html
    return escape(str(value))


class RawHtml:
    """Already-escaped HTML to place in a table cell."""

    def __init__(self, html: str) -> None:
        self.html = html


def stage_table(stages: list[dict[str, Any]]) -> str:
    """Status, time and budget of every stage."""
    rows = []
    for stage in stages:
        status = stage["status"]
        css = {"ok": "ok", "failed": "failed"}.get(status, "notrun")
        seconds: str | RawHtml = f"{stage['seconds']:.1f}" if status != "not run" else "—"
        cpu = f"{stage.get('cpu_seconds', 0.0):.1f}" if status != "not run" else "—"
        if stage.get("over_budget"):
            seconds = RawHtml(f'<span class="over">{escape(str(seconds))} (over budget)</span>')
        budget = stage.get("budget_seconds")
        rows.append(
            [
                stage["name"],
                RawHtml(f'<span class="{css}">{escape(status)}</span>'),
                seconds,
                cpu,
                f"{budget:.0f}" if budget else "—",
                stage.get("reason", ""),
            ]
        )
    return table(["stage", "status", "wall s", "CPU s", "budget (s)", "detail"], rows)


def _stage_gate(summary: dict[str, Any], name: str) -> str | None:
    """HTML explaining why stage ``name`` has no results, or None when it ran."""
    record = next((s for s in summary.get("stages", []) if s["name"] == name), None)
    if record is None:
        return f'<div class="box">not run: stage {escape(name)} is not part of this run</div>'
    if record["status"] == "ok" and name in summary:
        return None
    if record["status"] == "failed":
        return f'<div class="err">failed: {escape(record.get("reason", ""))}</div>'
    return f'<div class="box">not run: {escape(record.get("reason", "") or "no result")}</div>'


def _notes(summary: dict[str, Any], name: str) -> str:
    notes = summary.get("notes", {}).get(name, [])
    return "".join(f'<p class="note">note: {escape(n)}</p>' for n in notes)


def _section(summary: dict[str, Any], name: str, title: str, body: str) -> str:
    gate = _stage_gate(summary, name)
    return f"<h2>{escape(title)}</h2>{_notes(summary, name)}{gate if gate is not None else body}"


def render_html(summary: dict[str, Any]) -> str:
    """The whole report page."""
    run = summary.get("run", {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(summary.get('title', 'onerec demo'))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(summary.get('title', 'onerec demo'))}</h1>",
        f'<p class="sub">{escape(figures.run_line(run))}</p>',
        "<h2>Stages</h2>",
        stage_table(summary.get("stages", [])),
        "<h2>Results</h2>",
        figures.results_html(summary, table),
    ]
    sections = [
        ("prepare", "Data", figures.data_html),
        ("tokenizer", "Semantic IDs: codebook balance per level", figures.tokenizer_html),
        ("generator", "OneRec generator: training curves and expert load", figures.generator_html),
        ("reward", "Reward model", figures.reward_html),
        ("ipa", "Iterative preference alignment: reward before / after", figures.ipa_html),
        ("crm", "CRM: control curve", figures.crm_html),
        ("bundle", "Serving bundle", figures.bundle_html),
    ]
    for name, title, build in sections:
        body = build(summary.get(name, {}), table) if name in summary else ""
        parts.append(_section(summary, name, title, body))
    parts.append("</body></html>")
    return "\n".join(parts)
