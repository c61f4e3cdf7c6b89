"""``onerec tokenize``: item embeddings → semantic IDs, with a diagnostics table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

TOKENIZE_HELP = """Turn item embeddings into unique semantic IDs (residual k-means + a disambiguation level).

Prints collision rate, codebook utilisation, cluster balance and quantisation error per level, and with --out saves the tokenizer (tokenizer.json + tokenizer.safetensors, including the prefix trie), diagnostics.json and item_ids.json.

Examples:

onerec tokenize amazon-beauty --levels 3 --codebook-size 256 --compare --out runs/tok/beauty

onerec tokenize runs/data/beauty --embeddings collab --method balanced --out runs/tok/beauty-collab

onerec tokenize --embeddings item_vectors.parquet --codebook-size 64 --out runs/tok/mine
"""


def tokenize(
    source: Annotated[
        str | None,
        typer.Argument(
            help="Named data set (e.g. amazon-beauty) or a prepared data directory; "
            "optional when --embeddings is a file."
        ),
    ] = None,
    embeddings: Annotated[
        str | None,
        typer.Option(
            "--embeddings",
            help="text | collab | text+collab | PATH (.npy, .parquet, .safetensors).",
        ),
    ] = None,
    levels: Annotated[
        int | None, typer.Option("--levels", help="k-means levels L (default 3).")
    ] = None,
    codebook_size: Annotated[
        int | None, typer.Option("--codebook-size", help="codes per level K (default 256).")
    ] = None,
    method: Annotated[
        str | None, typer.Option("--method", help="balanced (default) or plain.")
    ] = None,
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Also fit the other method and show both side by side."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Directory to save the tokenizer in.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML/YAML with \\[tokenizer] and \\[embeddings]."),
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Config override key=value, e.g. --set tokenizer.balanced_iters=4."
        ),
    ] = None,
    text_columns: Annotated[
        str | None,
        typer.Option("--text-columns", help="Comma-separated item text columns (default text)."),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir", help="Text-embedding cache (default ~/.cache/onerec/embeddings)."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="k-means seed.")] = None,
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help="Where named data sets live (default ../shared/data)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    from onerec.config import build_config, load_config
    from onerec.tokenizer.config import TokenizeRunConfig
    from onerec.tokenizer.diagnostics import diagnostics_table
    from onerec.tokenizer.pipeline import build_embeddings, fit_methods, save_run

    base = load_config(TokenizeRunConfig, config, overrides or []).model_dump()
    tok, emb = base["tokenizer"], base["embeddings"]
    flags = {"levels": levels, "codebook_size": codebook_size, "method": method, "seed": seed}
    tok.update({k: v for k, v in flags.items() if v is not None})
    if cache_dir is not None:
        emb["cache_dir"] = str(cache_dir)
    if text_columns:
        emb["text_columns"] = [c.strip() for c in text_columns.split(",") if c.strip()]
    if embeddings is not None:
        if embeddings in ("text", "collab", "text+collab"):
            emb["kind"] = embeddings
        else:
            emb.update(kind="file", path=embeddings)
    cfg = build_config(TokenizeRunConfig, base, source="tokenize options")

    console = Console()
    t0 = time.perf_counter()
    item_embeddings = build_embeddings(source, cfg.embeddings, data_root, show_progress=not quiet)
    embed_seconds = time.perf_counter() - t0
    matrix = item_embeddings.matrix
    console.print(
        f"{matrix.shape[0]:,} items × {matrix.shape[1]} dims from {item_embeddings.description} "
        f"({embed_seconds:.1f} s)"
    )
    fitted = fit_methods(matrix, cfg.tokenizer, compare, show_progress=not quiet)
    k, levels_ = cfg.tokenizer.codebook_size, cfg.tokenizer.levels
    console.print(
        diagnostics_table(
            {m: t.diagnostics() for m, t in fitted.items()}, title=f"semantic IDs: {levels_} × {k}"
        )
    )
    if out is not None:
        save_run(out, fitted, item_embeddings, {"config": cfg.model_dump(), "source": source})
        console.print(f"saved {cfg.tokenizer.method} tokenizer and diagnostics.json to {out}")


def register(app: typer.Typer) -> None:
    """Attach ``onerec tokenize``."""
    app.command("tokenize", help=TOKENIZE_HELP)(tokenize)
