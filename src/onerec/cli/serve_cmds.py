"""``onerec serve MODEL_DIR`` (the HTTP service) and ``onerec bundle OUT`` (assemble a bundle)."""

from __future__ import annotations

import inspect
import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from onerec.errors import ConfigError
from onerec.serve.config import DEFAULT_HOST, DEFAULT_PORT, ServeConfig

WORKER_START_TIMEOUT_S = 300

SERVE_HELP = """Serve a model bundle over HTTP (FastAPI + uvicorn).

Endpoints: POST /v1/recommend (OneRec session), POST /v1/retrieve (CRM top-k), GET /v1/items/{id}, GET /healthz; OpenAPI docs at /docs. Binds 127.0.0.1 unless --host says otherwise (the service has no authentication).

Examples:

onerec serve runs/demo/bundle

onerec serve runs/demo/bundle --port 9000 --workers 2

curl -s localhost:8000/v1/recommend -H 'content-type: application/json' -d '{"user_id": "42", "m": 5, "beam_width": 20}'
"""

BUNDLE_HELP = """Assemble a service bundle (what `onerec serve` loads) from trained parts.

Give the data set the models were trained on, and a generator model directory (config.json + model.safetensors, with its tokenizer directory inside or via --semantic-ids) and/or a CRM model directory. Every part is checked (weights load, ids match the data set) before the bundle is written atomically.

Examples:

onerec bundle runs/demo/bundle --data runs/data/kuairand --generator runs/gen/model --retrieval runs/crm/model
"""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    model_dir: Annotated[Path, typer.Argument(help="Bundle directory (see docs/serving.md).")],
    host: Annotated[
        str, typer.Option(help="Interface to bind; default loopback only.")
    ] = DEFAULT_HOST,
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = DEFAULT_PORT,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    max_body_bytes: Annotated[int, typer.Option(help="Larger request bodies get 413.")] = 1_000_000,
    max_history: Annotated[int, typer.Option(help="Longest explicit history accepted.")] = 200,
    torch_threads: Annotated[
        int, typer.Option(help="torch/faiss threads per worker (0: library default).")
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    import uvicorn

    from onerec.serve.app import ENV_CONFIG_JSON, ENV_MODEL_DIR, apply_process_settings, create_app
    from onerec.serve.loader import read_manifest
    from onerec.training import resolve_device

    try:
        config = ServeConfig(
            device=device,
            max_body_bytes=max_body_bytes,
            max_history_items=max_history,
            torch_threads=torch_threads,
        )
    except ValueError as exc:
        raise ConfigError(f"invalid serve option: {exc}") from None
    err = Console(stderr=True)
    if not _is_loopback(host):
        err.print(
            f"[yellow]warning:[/] binding {host}: the service has no authentication and is "
            "reachable from other machines",
            highlight=False,
        )
    if workers == 1:
        apply_process_settings(config)
        app = create_app(model_dir, config)  # load errors surface here as one-line CLI errors
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    resolve_device(config.device)  # fail fast, before forking workers
    read_manifest(model_dir)
    os.environ[ENV_MODEL_DIR] = str(model_dir.resolve())
    os.environ[ENV_CONFIG_JSON] = config.model_dump_json()
    extra: dict[str, int] = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.run).parameters:
        # A worker answers the supervisor's health pings only once it has imported torch
        # and onerec, which takes longer than uvicorn's 5 s default on a busy machine.
        extra["timeout_worker_healthcheck"] = WORKER_START_TIMEOUT_S
    uvicorn.run(
        "onerec.serve.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        **extra,  # type: ignore[arg-type]
    )


def bundle(
    out: Annotated[Path, typer.Argument(help="Bundle directory to write (replaced atomically).")],
    data: Annotated[str, typer.Option(help="Prepared data set directory or named data set.")],
    generator: Annotated[Path | None, typer.Option(help="Generator model directory.")] = None,
    semantic_ids: Annotated[
        Path | None, typer.Option(help="Tokenizer directory (default: GENERATOR/tokenizer).")
    ] = None,
    retrieval: Annotated[Path | None, typer.Option(help="CRM model directory.")] = None,
    name: Annotated[str | None, typer.Option(help="Bundle name shown by /healthz.")] = None,
) -> None:
    from onerec.data import load_dataset
    from onerec.serve.bundle import SemanticIds, build_bundle

    dataset = load_dataset(data)
    ids = None if semantic_ids is None else SemanticIds.load_tokenizer(semantic_ids)
    path = build_bundle(
        out, dataset, generator_dir=generator, semantic_ids=ids, retrieval_dir=retrieval, name=name
    )
    typer.echo(f"bundle written to {path}")


def register(app: typer.Typer) -> None:
    """Attach ``serve`` and ``bundle``."""
    app.command("serve", help=SERVE_HELP)(serve)
    app.command("bundle", help=BUNDLE_HELP)(bundle)
