"""Every command's ``--help`` renders and keeps its config-section names.

Typer renders help through rich markup, where an unescaped ``[sim]`` is read as a style tag and
silently disappears; help texts must write ``\\[sim]``. This test renders each command's help
and checks that every bracketed name of its source text is still in the output.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from onerec.cli.app import app

SECTION = re.compile(r"\\?\[([a-z_][a-z_.]*)\]")


def _commands() -> dict[str, Any]:
    group = typer.main.get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def _source_help(command: Any) -> str:
    parts = [command.help or ""]
    parts += [getattr(param, "help", None) or "" for param in command.params]
    return "\n".join(parts)


@pytest.mark.parametrize("name", sorted(_commands()))
def test_help_keeps_bracketed_section_names(name: str) -> None:
    command = _commands()[name]
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    rendered = " ".join(result.output.split())
    for section in SECTION.findall(_source_help(command)):
        assert f"[{section}]" in rendered, f"onerec {name} --help lost [{section}]"


def test_unescaped_section_is_detected() -> None:
    """The check itself: rich drops an unescaped ``[sim]`` (so the test above can fail)."""
    probe = typer.Typer()

    @probe.command()
    def run() -> None:
        """Reads the [sim] section."""

    @probe.command()
    def other() -> None:
        """Second command so typer keeps subcommands."""

    result = CliRunner().invoke(probe, ["run", "--help"], env={"COLUMNS": "400"})
    assert "[sim]" not in result.output
