"""``onerec prepare`` and ``onerec data-info``: raw logs → a validated prepared-dataset directory."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from onerec.errors import DataValidationError

PREPARE_HELP = """Read raw interaction logs, validate them and write a prepared data set.

The output directory holds interactions.parquet, items.parquet, users.parquet and manifest.json (schema version, row counts, sha256 of every file). It is written atomically: if anything fails, nothing is left behind. Bad input (missing columns, wrong types, NaN, absurd times, unknown ids, a wrong delimiter, damaged files) stops with one line naming the file, row and field.

Examples:

onerec prepare --dataset kuairand-demo --out runs/data/kuairand

onerec prepare --dataset amazon-beauty --out runs/data/beauty --data-root ../shared/data

onerec prepare --interactions log.csv --items items.csv --out runs/data/mine --user-col uid --item-col sku --time-col ts --rename watch_ms=play_time_ms
"""


def _parse_renames(values: list[str]) -> dict[str, str]:
    renames = {}
    for value in values:
        if "=" not in value:
            raise DataValidationError(
                f"--rename {value!r} must look like SOURCE=TARGET",
                field="rename",
                hint="e.g. --rename is_click=click",
            )
        source, target = value.split("=", 1)
        renames[source.strip()] = target.strip()
    return renames


def _summary_table(summary: dict[str, Any], title: str) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("users", f"{summary['users']:,}")
    table.add_row("items", f"{summary['items']:,}")
    table.add_row("interactions", f"{summary['interactions']:,}")
    table.add_row("density", f"{summary['density']:.5f}")
    table.add_row("feedback columns", ", ".join(summary["feedback_columns"]) or "(none)")
    table.add_row("dropped duplicate rows", str(summary["dropped_duplicate_rows"]))
    return table


def prepare(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output directory (created atomically; replaced if it exists). Example: --out runs/data/beauty",
        ),
    ],
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Named data set: kuairand-demo (embedded, no path needed), kuairand-1k, amazon-beauty, amazon-sports, ml-100k, ml-1m. Example: --dataset kuairand-demo",
        ),
    ] = None,
    interactions: Annotated[
        Path | None,
        typer.Option(
            "--interactions",
            help="Your interaction file (Parquet, CSV/TSV, .gz ok, RecBole .inter, sequences .txt, KuaiRand log). Example: --interactions logs/clicks.csv",
        ),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(
            "--items",
            help="Optional item side table (needs an item id column; every interacted item must be in it). Example: --items items.parquet",
        ),
    ] = None,
    users: Annotated[
        Path | None,
        typer.Option("--users", help="Optional user side table. Example: --users users.csv"),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto|parquet|csv|tsv|recbole|sequences|kuairand. 'auto' decides from the file name and first line. Example: --format tsv",
        ),
    ] = "auto",
    data_root: Annotated[
        Path | None,
        typer.Option(
            "--data-root",
            help="Folder holding the named data sets (default: $ONEREC_DATA_ROOT, else ../shared/data). Example: --data-root /data/onerec",
        ),
    ] = None,
    user_col: Annotated[
        str | None,
        typer.Option(
            "--user-col",
            help="Name of the user id column (default: detected, e.g. user_id, userId, uid). Example: --user-col uid",
        ),
    ] = None,
    item_col: Annotated[
        str | None,
        typer.Option(
            "--item-col",
            help="Name of the item id column (default: detected, e.g. item_id, movie_id, video_id). Example: --item-col sku",
        ),
    ] = None,
    time_col: Annotated[
        str | None,
        typer.Option(
            "--time-col",
            help="Name of the time column (unix s/ms or ISO dates; default: detected, e.g. timestamp, time_ms). '-' uses the row order as time. Example: --time-col ts",
        ),
    ] = None,
    rename: Annotated[
        list[str] | None,
        typer.Option(
            "--rename",
            help="Rename a source column to a feedback column (play_time_ms, duration_ms, click, like, follow, long_view, comment, forward, hate, rating); repeatable. Example: --rename watch_ms=play_time_ms",
        ),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            "--delimiter",
            help="Field delimiter of a CSV/TSV file (default: detected from the header). Example: --delimiter ';'",
        ),
    ] = None,
    encoding: Annotated[
        str,
        typer.Option(
            "--encoding", help="Text encoding of CSV/TSV files. Example: --encoding latin-1"
        ),
    ] = "utf-8",
    duplicates: Annotated[
        str,
        typer.Option(
            "--duplicates",
            help="Exact duplicate rows: drop (warn and count them in the manifest), error, or keep. Example: --duplicates error",
        ),
    ] = "drop",
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Name recorded in the manifest (default: the data set or file name). Example: --name shop-2024",
        ),
    ] = None,
) -> None:
    from onerec.data.pipeline import DataSource, prepare_dataset

    if delimiter == "\\t":
        delimiter = "\t"
    if fmt not in ("auto", "parquet", "csv", "tsv", "recbole", "sequences", "kuairand"):
        raise DataValidationError(
            f"unknown --format {fmt!r}",
            field="format",
            hint="use auto, parquet, csv, tsv, recbole, sequences or kuairand",
        )
    if duplicates not in ("drop", "error", "keep"):
        raise DataValidationError(
            f"unknown --duplicates {duplicates!r}",
            field="duplicates",
            hint="use drop, error or keep",
        )
    source = DataSource(
        dataset=dataset,
        interactions=interactions,
        items=items,
        users=users,
        format=fmt,  # type: ignore[arg-type]
        delimiter=delimiter,
        encoding=encoding,
        user_col=user_col,
        item_col=item_col,
        time_col=time_col,
        rename=_parse_renames(rename or []),
        duplicates=duplicates,  # type: ignore[arg-type]
        data_root=data_root,
        name=name,
    )
    console = Console()
    with warnings.catch_warnings(record=True) as caught, console.status("preparing data…"):
        warnings.simplefilter("always")
        prepared = prepare_dataset(source, out)
    for warning in caught:
        console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
    console.print(_summary_table(prepared.summary(), f"prepared data set: {prepared.name}"))
    console.print(f"written to [bold]{out}[/]", highlight=False)


def data_info(
    directory: Annotated[
        Path,
        typer.Argument(
            help="A prepared data set directory (from `onerec prepare`). Example: runs/data/beauty"
        ),
    ],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify", help="Check the sha256 of every file against the manifest."
        ),
    ] = True,
) -> None:
    """Print the manifest summary of a prepared data set (counts, feedback, source, notes)."""
    from onerec.data.prepared import PreparedDataset

    prepared = PreparedDataset.load(directory, verify=verify)
    manifest = prepared.manifest
    console = Console()
    table = _summary_table(prepared.summary(), f"{prepared.name} ({directory})")
    table.add_row("schema version", str(manifest.get("schema_version")))
    table.add_row("built at", str(manifest.get("built_at")))
    table.add_row("timestamp unit", str(manifest.get("timestamp_unit")))
    lengths = manifest.get("sequence_lengths", {})
    if lengths:
        table.add_row(
            "interactions per user",
            f"min {lengths['min']} / median {lengths['median']:g} / max {lengths['max']}",
        )
        table.add_row(
            "users with < 3 interactions", str(lengths["users_with_fewer_than_3_interactions"])
        )
    table.add_row("item columns", ", ".join(manifest.get("item_columns", [])))
    table.add_row(
        "source",
        str(
            manifest.get("source", {}).get("description")
            or manifest.get("source", {}).get("format")
        ),
    )
    table.add_row("hashes", "verified" if verify else "not checked")
    console.print(table)
    for note in manifest.get("notes", []):
        console.print(f"note: {note}", highlight=False)


prepare.__doc__ = PREPARE_HELP


def register(app: typer.Typer) -> None:
    """Attach ``prepare`` and ``data-info`` to ``app``."""
    app.command("prepare", help=PREPARE_HELP)(prepare)
    app.command("data-info")(data_info)
