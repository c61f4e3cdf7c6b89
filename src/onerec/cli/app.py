"""Assembles the ``onerec`` typer application from the per-area command modules.

Each module in ``COMMAND_MODULES`` defines ``register(app: typer.Typer) -> None``. User-facing
errors (:class:`onerec.errors.OnerecError`) are printed as one red line and exit with status 2,
never as a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from rich.console import Console

from onerec.errors import OnerecError

COMMAND_MODULES = [
    "onerec.cli.data_cmds",
    "onerec.cli.train_cmds",
    "onerec.cli.tokenizer_cmds",
    "onerec.cli.generator_cmds",
    "onerec.cli.reward_cmds",
    "onerec.cli.retrieval_cmds",
    "onerec.cli.serve_cmds",
    "onerec.cli.demo_cmds",
]

app = typer.Typer(
    name="onerec",
    help=(
        "End-to-end generative recommendation: OneRec (semantic IDs, MoE encoder-decoder, "
        "session-wise beam search, reward model, IPA/DPO) and CRM controllable retrieval."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """onerec: prepare data, tokenize items, train, evaluate, align, retrieve and serve."""


@app.command()
def version() -> None:
    """Print the onerec, torch and device versions."""
    import torch

    import onerec

    device = "cuda" if torch.cuda.is_available() else "cpu"
    typer.echo(f"onerec {onerec.__version__}  torch {torch.__version__}  device {device}")


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point."""
    err = Console(stderr=True)
    try:
        app()
    except OnerecError as exc:
        # Under torchrun every rank raises the same error; one line on the console is enough.
        if os.environ.get("RANK", "0") == "0":
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
