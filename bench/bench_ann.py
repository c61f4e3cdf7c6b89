"""ANN benchmark for the CRM item index: recall@100 against exact search and query latency.

Catalogues:
  * ``--model DIR`` — a trained CRM model directory (``onerec train-retrieval``): its item
    vectors, probed with its users' query vectors (``mean`` strategy for conditioned models);
  * ``--synthetic N`` — N clustered unit vectors (64-d, 64 overlapping clusters, see
    :func:`synthetic_catalogue`), probed with held-out points from the same mixture.

For each index kind (exact flat, HNSW, IVF) it reports build seconds, recall@100 vs exact
(``IndexFlatIP``) and single-query latency p50/p99 in ms (one query per call, as the service
issues them), prints a table and writes ``bench/results/ann_<name>.json``.

  .venv/bin/python bench/bench_ann.py --synthetic 100000
  .venv/bin/python bench/bench_ann.py --model runs/crm_kuairand_nn/model
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch

from onerec.io import atomic_write_json
from onerec.retrieval.index import IndexConfig, ItemIndex, exact_topk

RESULTS = Path(__file__).resolve().parent / "results"


def synthetic_catalogue(
    num_items: int, num_queries: int, dim: int = 64, num_clusters: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors: ``(items [N, dim], queries [Q, dim])``.

    ``num_clusters`` Gaussian clusters whose within-cluster spread equals the spread of the
    centres (noise std 1 per dimension, like the centres). With 64 clusters each holds ~1,500 of
    100k items, so the 100 nearest neighbours are a fine-grained pick inside a cluster rather
    than "the whole cluster" — harder than separated blobs, easier than uniform noise.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_clusters, dim))
    points = centres[rng.integers(0, num_clusters, num_items + num_queries)]
    points = points + rng.standard_normal(points.shape)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    points = points.astype(np.float32)
    return points[:num_items], points[num_items:]


@torch.no_grad()
def model_catalogue(model_dir: Path, num_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Item vectors of a trained model and query vectors of its first users."""
    from onerec.retrieval.artifact import Retriever

    retriever = Retriever(model_dir, device="cpu")
    items = retriever.model.all_item_vectors().numpy()
    users = np.arange(min(num_queries, len(retriever.user_ids)))
    hist = torch.as_tensor(retriever.history[users])
    cond = None
    if retriever.conditioned:
        cond = torch.tensor([retriever.planner.position(int(u), "mean") for u in users])
    queries = retriever.model.user_vectors(hist, cond, torch.as_tensor(users)).numpy()
    return items, queries


def measure(
    items: np.ndarray, queries: np.ndarray, config: IndexConfig, truth: np.ndarray, k: int
) -> dict[str, Any]:
    """Build one index and time single-query search; recall against ``truth``."""
    started = time.perf_counter()
    index = ItemIndex.build(items, config)
    build_s = time.perf_counter() - started
    latencies, found = [], []
    index.search(queries[:5], k)  # warm-up
    for query in queries:
        t0 = time.perf_counter()
        _, top = index.search(query[None], k)
        latencies.append((time.perf_counter() - t0) * 1000.0)
        found.append(top[0])
    hits = [len(np.intersect1d(t, f[f >= 0])) / k for t, f in zip(truth, found, strict=True)]
    return {
        "kind": config.kind,
        "params": config.model_dump(),
        "build_s": round(build_s, 3),
        f"recall@{k}": float(np.mean(hits)),
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p99": float(np.percentile(latencies, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="trained CRM model directory")
    source.add_argument("--synthetic", type=int, help="number of synthetic items")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--ef-search", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="faiss/torch threads")
    parser.add_argument("--name", help="results file suffix (default from the source)")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)

    if args.model is not None:
        items, queries = model_catalogue(args.model, args.queries)
        run_dir = args.model.resolve()
        name = run_dir.parent.name if run_dir.name == "model" else run_dir.name
        description = f"model {args.model}"
    else:
        items, queries = synthetic_catalogue(args.synthetic, args.queries)
        name = f"synthetic{args.synthetic}"
        description = f"synthetic clustered catalogue, {args.synthetic} items"
    name = args.name or name
    truth = exact_topk(items, queries, args.k)
    configs = [
        IndexConfig.model_validate({"kind": "flat"}),
        IndexConfig.model_validate({"kind": "hnsw", "ef_search": args.ef_search}),
        IndexConfig.model_validate({"kind": "ivf", "ivf_nprobe": 32}),
    ]
    rows = [measure(items, queries, cfg, truth, args.k) for cfg in configs]
    print(
        f"{description}: {items.shape[0]} items × {items.shape[1]} d, {len(queries)} queries, k={args.k}, {args.threads} thread(s)"
    )
    print(f"{'index':<6} {'build s':>8} {'recall@' + str(args.k):>11} {'p50 ms':>8} {'p99 ms':>8}")
    for row in rows:
        print(
            f"{row['kind']:<6} {row['build_s']:>8.2f} {row[f'recall@{args.k}']:>11.4f} "
            f"{row['latency_ms_p50']:>8.3f} {row['latency_ms_p99']:>8.3f}"
        )
    result = {
        "source": description,
        "num_items": int(items.shape[0]),
        "dim": int(items.shape[1]),
        "num_queries": len(queries),
        "k": args.k,
        "threads": args.threads,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "faiss": faiss.__version__,
        "indexes": rows,
    }
    out = RESULTS / f"ann_{name}.json"
    atomic_write_json(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
