"""Benchmark: do semantic-ID prefixes follow what users buy next? (text vs collaborative vs both)

For each candidate item embedding — MiniLM text, collaborative (PPMI + SVD counted on the
leave-one-out **training** sequences ``s[:-2]`` only), and text ⊕ collaborative at two weights —
fit the balanced 3 × 256 tokenizer and measure, over every user's *held-out* transition
``s[-3] → s[-2]`` (a pair the collaborative counts never saw), how often the two items share
their level-1 code (and levels 1–2), against chance (Σ_c share_c², from the code marginals).
A generator predicts the next item code by code, so prefixes that group items bought one after
the other make its first decisions easier. Figures go to
``bench/results/semantic_id_transitions_<dataset>.json``.

Run:  .venv/bin/python bench/bench_semantic_id_transitions.py [--dataset amazon-beauty]
Exits 0 with a message when the shared data sets are absent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from onerec.data import load_dataset
    from onerec.errors import OnerecError
    from onerec.tokenizer.config import EmbeddingSourceConfig, TokenizerConfig
    from onerec.tokenizer.embeddings.collab import collaborative_embeddings
    from onerec.tokenizer.pipeline import build_embeddings, concat_unit_rows
    from onerec.tokenizer.semantic import SemanticTokenizer

    torch.set_num_threads(args.threads)
    try:
        dataset = load_dataset(args.dataset, data_root=args.data_root)
    except OnerecError as exc:
        print(f"skipped: {exc}")
        return 0
    sequences = dataset.sequences()
    train = [seq[:-2] for seq in sequences]
    text = build_embeddings(
        args.dataset, EmbeddingSourceConfig(kind="text"), args.data_root, show_progress=False
    ).matrix
    collab = collaborative_embeddings(train, dataset.num_items, 64, 5, on_missing="zero")
    pairs = np.array([(seq[-3], seq[-2]) for seq in sequences if len(seq) >= 3])
    candidates = {
        "text": text,
        "collab (train split)": collab,
        "text + 0.5 x collab": concat_unit_rows(text, collab, 0.5),
        "text + 1.0 x collab": concat_unit_rows(text, collab, 1.0),
    }
    config = TokenizerConfig(levels=3, codebook_size=256, method="balanced", seed=0)
    rows = []
    print(f"{args.dataset}: {len(pairs):,} held-out transitions s[-3] -> s[-2]")
    print(f"{'embedding':24s} {'same L1':>8s} {'chance':>7s} {'lift':>5s} {'same L1-L2':>10s} fit")
    for label, matrix in candidates.items():
        started = time.perf_counter()
        codes = SemanticTokenizer.fit(
            np.asarray(matrix, np.float32), None, config, show_progress=False
        ).codes
        seconds = time.perf_counter() - started
        first, second = codes[pairs[:, 0]], codes[pairs[:, 1]]
        same_l1 = float((first[:, 0] == second[:, 0]).mean())
        same_l12 = float((first[:, :2] == second[:, :2]).all(axis=1).mean())
        shares = np.bincount(codes[:, 0]) / len(codes)
        chance = float((shares**2).sum())
        rows.append(
            {
                "embedding": label,
                "same_level1": same_l1,
                "chance_level1": chance,
                "lift_level1": same_l1 / chance,
                "same_levels12": same_l12,
                "fit_seconds": seconds,
            }
        )
        print(
            f"{label:24s} {same_l1:8.4f} {chance:7.4f} {same_l1 / chance:5.1f} "
            f"{same_l12:10.4f} {seconds:.0f}s"
        )
    out = REPO / "bench" / "results" / f"semantic_id_transitions_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "dataset": args.dataset,
                "date": dt.date.today().isoformat(),
                "held_out_transitions": len(pairs),
                "tokenizer": config.model_dump(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
