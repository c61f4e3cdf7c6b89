"""``onerec recommend``: items (or a session) for one user from a trained OneRec generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from onerec.errors import OnerecError

RECOMMEND_HELP = """Recommend items for one user with a trained OneRec generator (trie-constrained beam search).

--model is a run directory written by `onerec train` for a `task = "generator"` config (or its model/ folder: config.json + model.safetensors + tokenizer/). Give the user either as --user ID (the user's id in the data set the run trained on; the whole interaction history is used, cut to the model's max_history) or as --history "ID ID ID" (item ids, oldest first).

Prints rank, item id, score (the summed log-probability of the item's semantic-ID codes) and the item's text when the data set has one. With --session-items M > 1 it prints the best session of M distinct items instead (one score for the whole session).

Examples:
  onerec recommend --model runs/generator-amazon-beauty-20250101-120000 --user A2CZ1IQ0C0FV4M
  onerec recommend --model runs/my-run --history "123 456 789" --top-k 5 --beam 20
"""


def _model_dir(path: Path) -> tuple[Path, dict[str, Any] | None]:
    """(model directory, run config or None) for a run directory or a bare model directory."""
    from onerec.baselines.runs import MODEL_DIR, RUN_CONFIG_FILE
    from onerec.io import read_json

    if (path / MODEL_DIR / "config.json").is_file():
        run_config = (
            read_json(path / RUN_CONFIG_FILE) if (path / RUN_CONFIG_FILE).is_file() else None
        )
        return path / MODEL_DIR, run_config
    if (path / "config.json").is_file():
        parent = path.parent / RUN_CONFIG_FILE
        return path, read_json(parent) if parent.is_file() else None
    raise OnerecError(
        f"{path} is neither a run directory nor a model directory (no config.json); pass the "
        "folder that `onerec train` printed"
    )


def recommend(
    model: Annotated[Path, typer.Option("--model", help="run directory or its model/ folder")],
    user: Annotated[
        str | None, typer.Option("--user", help="user id in the training data set")
    ] = None,
    history: Annotated[
        str | None, typer.Option("--history", help='item ids, oldest first: "ID ID ID"')
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="items to print")] = 10,
    beam: Annotated[int, typer.Option("--beam", min=1, help="beam width (at least --top-k)")] = 20,
    session_items: Annotated[
        int, typer.Option("--session-items", min=1, help="M > 1: print the best session of M items")
    ] = 1,
    exclude_history: Annotated[
        bool, typer.Option("--exclude-history", help="never recommend items in the history")
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="data set for --user and item texts (default: the run's)"),
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option("--data-root", help="where named data sets live")
    ] = None,
) -> None:
    """Recommend items for one user."""
    if (user is None) == (history is None):
        raise OnerecError('give exactly one of --user ID and --history "ID ID ID"')
    if beam < top_k:
        raise OnerecError(f"--beam {beam} must be at least --top-k {top_k}")
    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from onerec.generation import beam_search, generate_session
    from onerec.model.artifacts import load_generator
    from onerec.model.batching import CodeLookup, collate_histories, pad_histories

    model_dir, run_config = _model_dir(model)
    loaded = load_generator(model_dir)
    data_section = (run_config or {}).get("data", {})
    dataset_name = dataset or data_section.get("dataset")
    root = data_root or data_section.get("data_root")
    prepared = None
    if dataset_name is not None and (user is not None or loaded.item_ids is None or dataset):
        from onerec.data import load_dataset

        prepared = load_dataset(dataset_name, data_root=root)
    item_ids = loaded.item_ids
    if item_ids is None and prepared is not None:
        item_ids = prepared.items.sort("item_idx")["item_id"].cast(str).to_list()
    if item_ids is None:
        raise OnerecError(
            f"{model_dir} has no item_ids.json and no data set is known; pass --dataset"
        )
    index_of = {item_id: idx for idx, item_id in enumerate(item_ids)}

    if user is not None:
        if prepared is None:
            raise OnerecError("--user needs the data set the model trained on; pass --dataset")
        users = prepared.users.filter(prepared.users["user_id"].cast(str) == user)
        if users.height == 0:
            raise OnerecError(f"user {user!r} is not in data set {prepared.name!r}")
        items = prepared.sequences()[int(users["user_idx"][0])]
    else:
        assert history is not None
        tokens = history.split()
        unknown = [t for t in tokens if t not in index_of]
        if unknown:
            raise OnerecError(f"unknown item ids in --history: {', '.join(unknown[:5])}")
        items = np.asarray([index_of[t] for t in tokens], dtype=np.int64)

    net = loaded.model
    if session_items > net.config.max_session_items:
        raise OnerecError(
            f"--session-items {session_items} exceeds what this model was trained for "
            f"(max_session_items {net.config.max_session_items})"
        )
    padded, _ = pad_histories([items], net.config.max_history)
    history_codes, history_mask = collate_histories(padded, CodeLookup(loaded.tokenizer.codes))
    exclude = torch.from_numpy(padded) if exclude_history else None
    texts: dict[int, str] = {}
    if prepared is not None and "text" in prepared.items.columns:
        texts = dict(
            zip(prepared.items["item_idx"].to_list(), prepared.items["text"].to_list(), strict=True)
        )

    table = Table(
        title=f"{len(items)} history items -> {'session' if session_items > 1 else 'top items'}"
    )
    for column in ("rank", "item_id", "score", "text"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    if session_items > 1:
        result = generate_session(
            net,
            history_codes,
            history_mask,
            loaded.tokenizer.trie,
            session_items,
            beam,
            exclude_items=exclude,
        )
        session = result.items[0, 0].tolist()
        for rank, item in enumerate(session, start=1):
            table.add_row(str(rank), item_ids[item], "", str(texts.get(item, ""))[:60])
        footer = f"session log-probability {float(result.scores[0, 0]):.3f}"
    else:
        ranked, scores = beam_search(
            net,
            history_codes,
            history_mask,
            loaded.tokenizer.trie,
            beam,
            top_k,
            exclude_items=exclude,
        )
        for rank, (item, score) in enumerate(
            zip(ranked[0].tolist(), scores[0].tolist(), strict=True), 1
        ):
            if item >= 0:
                table.add_row(
                    str(rank), item_ids[item], f"{score:.3f}", str(texts.get(item, ""))[:60]
                )
        footer = "score = summed log-probability of the item's codes"
    console = Console()
    console.print(table)
    console.print(footer)


def register(app: typer.Typer) -> None:
    """Attach ``onerec recommend``."""
    app.command("recommend", help=RECOMMEND_HELP)(recommend)
