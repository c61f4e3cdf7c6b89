"""``onerec demo``: the whole pipeline on the embedded KuaiRand data, ending in a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEMO_HELP = """Run the whole pipeline on the embedded KuaiRand data and write a report.

Stages: prepare (validate + index the data) → item embeddings (MiniLM over the item text) → semantic IDs (balanced residual k-means, unique IDs, trie) → train the OneRec generator (session-wise, sparse-MoE decoder) → train the reward model → IPA (DPO on reward-ranked beam candidates) → train CRM (condition = play time) → evaluate → serving bundle.

Each stage writes its directory inside --out atomically and is timed against a budget; a stage that fails is named with its error and the stages that do not need it still run. The end: metric tables here and a self-contained report.html (inline SVG plots) in --out; `onerec serve OUT/bundle` serves the result.

Examples:

onerec demo

onerec demo --fast --out runs/demo-fast

onerec demo --config configs/demo.toml generator.train.epochs=20

onerec demo --out runs/demo --report-only   (re-render report.html from summary.json)

onerec demo --fast --print-config > my_demo.toml   (every setting, to edit and pass to --config)
"""


def demo(
    out: Annotated[Path, typer.Option("--out", help="Run directory (default runs/demo).")] = Path(
        "runs/demo"
    ),
    fast: Annotated[
        bool, typer.Option("--fast", help="Smaller training budgets (same stages; a quick look).")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="A demo config file (TOML/YAML), e.g. configs/demo.toml."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Argument(help="key=value overrides, e.g. generator.train.epochs=20 threads=2"),
    ] = None,
    stop_after: Annotated[
        str | None, typer.Option("--stop-after", help="Stop after this stage (e.g. tokenizer).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Only re-render report.html from summary.json.")
    ] = False,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config as TOML and exit.")
    ] = False,
) -> None:
    from rich.console import Console

    from onerec.config import apply_overrides, build_config, read_config_file
    from onerec.demo import STAGE_NAMES, DemoConfig, rerender, run_demo
    from onerec.errors import ConfigError, OnerecError

    console = Console()
    if report_only:
        console.print(f"report: {rerender(out).resolve()}", highlight=False)
        return
    if stop_after is not None and stop_after not in STAGE_NAMES:
        raise ConfigError(
            f"--stop-after {stop_after!r} is not a stage; stages: {', '.join(STAGE_NAMES)}"
        )
    if fast and config is not None:
        raise ConfigError(
            "give either --fast or --config, not both (configs/demo_fast.toml is --fast)"
        )
    base = DemoConfig.fast() if fast else DemoConfig.model_validate({})
    data = read_config_file(config) if config is not None else base.model_dump(mode="json")
    source = str(config) if config is not None else ("--fast" if fast else "default")
    cfg = build_config(
        DemoConfig, apply_overrides(data, overrides or []), source=f"demo config ({source})"
    )
    if print_config:
        from onerec.demo.toml_out import config_toml

        typer.echo(config_toml(cfg), nl=False)
        return
    result = run_demo(
        cfg, out, console, config_name=source, show_progress=not quiet, stop_after=stop_after
    )
    if result.failed:
        first = result.failed[0]
        raise OnerecError(
            f"demo stage '{first.name}' failed: {first.reason} (report with the stages that ran: "
            f"{result.report_path})"
        )


def register(app: typer.Typer) -> None:
    """Attach ``onerec demo``."""
    app.command("demo", help=DEMO_HELP)(demo)
