"""Benchmark: semantic IDs for Amazon Beauty (12,101 items), balanced vs plain residual k-means.

Text embeddings (MiniLM over the items' ``text`` column) are computed once and cached under
``--cache-dir``; that step is not part of the timed fit. Each method's ``SemanticTokenizer.fit``
is timed (wall and process CPU seconds, diagnostics included), the fp32 matmul peak of this
machine is measured in the same run, the diagnostics table is printed, the done-criteria of the
tokenizer issue are checked, and everything is written to ``bench/results/tokenizer_beauty.json``.

Run:  .venv/bin/python bench/bench_tokenizer.py [--threads 2] [--cache-dir DIR] [--data-root DIR]
Exits 0 with a message when the shared data sets are absent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def matmul_peak_gflops(size: int = 1024, repeats: int = 10) -> float:
    """Best fp32 ``size × size`` matmul rate over ``repeats`` runs, GFLOP/s."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("~/.cache/onerec/embeddings").expanduser()
    )
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--codebook-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "tokenizer_beauty.json"
    )
    args = parser.parse_args()

    if not (args.data_root / "amazon2014" / "beauty").is_dir():
        print(f"skipped: Amazon Beauty not found under {args.data_root} (pass --data-root)")
        return 0

    # Idle OpenMP workers (torch's and faiss's runtimes) spin by default and steal the cores
    # the main thread needs between parallel regions; on a shared 2-core box that costs ~3x.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import faiss
    import torch
    from rich.console import Console

    from onerec.data import load_dataset
    from onerec.io import atomic_write_json
    from onerec.tokenizer import (
        SemanticTokenizer,
        TokenizerConfig,
        diagnostics_table,
        text_embeddings,
    )

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    console = Console()
    load_before = os.getloadavg()

    dataset = load_dataset("amazon-beauty", data_root=args.data_root)
    items = dataset.items.sort("item_idx")
    start = time.perf_counter()
    embeddings = text_embeddings(items, ["text"], args.cache_dir, device="cpu")
    embed_seconds = time.perf_counter() - start
    console.print(
        f"embeddings {embeddings.shape} in {embed_seconds:.1f} s (cache {args.cache_dir})"
    )

    peak_before = matmul_peak_gflops()
    results: dict[str, dict[str, Any]] = {}
    for method in ("balanced", "plain"):
        config = TokenizerConfig(
            levels=args.levels, codebook_size=args.codebook_size, method=method
        )
        wall0, cpu0 = time.perf_counter(), time.process_time()
        tokenizer = SemanticTokenizer.fit(embeddings, None, config)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        results[method] = {
            "config": config.model_dump(),
            "wall_seconds": wall,
            "cpu_seconds": cpu,
            "diagnostics": tokenizer.diagnostics(),
        }
        console.print(f"{method}: fit {wall:.1f} s wall, {cpu:.1f} s CPU")
    peak = max(peak_before, matmul_peak_gflops())
    load_after = os.getloadavg()

    console.print(
        diagnostics_table(
            {m: r["diagnostics"] for m, r in results.items()},
            title=f"Amazon Beauty, {args.levels} × {args.codebook_size}",
        )
    )
    console.print(
        f"fp32 matmul peak (1024², {args.threads} threads): {peak:.1f} GFLOP/s; "
        f"load average {load_before[0]:.1f} → {load_after[0]:.1f}"
    )

    bal = results["balanced"]["diagnostics"]
    checks = {
        "zero_duplicates_after_dedup": bal["duplicate_ids_after_dedup"] == 0,
        "level1_utilisation_100pct": bal["per_level"][0]["utilisation"] == 1.0,
        "largest_cluster_le_1.1x_mean_every_level": all(
            lv["max_over_mean"] <= 1.1 for lv in bal["per_level"]
        ),
        "balanced_fit_under_60s": results["balanced"]["wall_seconds"] < 60,
    }
    for name, ok in checks.items():
        console.print(f"  {'PASS' if ok else 'FAIL'}  {name}")

    report = {
        "benchmark": "tokenizer_beauty",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "platform": platform.platform(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "torch": torch.__version__,
            "load_average_before": load_before[0],
            "load_average_after": load_after[0],
        },
        "matmul_fp32_peak_gflops": peak,
        "dataset": {"name": "amazon-beauty", "num_items": int(len(embeddings))},
        "embeddings": {
            "kind": "text",
            "model": "all-MiniLM-L6-v2",
            "columns": ["text"],
            "dim": int(embeddings.shape[1]),
            "seconds_incl_cache": embed_seconds,
        },
        "methods": results,
        "checks": checks,
    }
    atomic_write_json(args.out, report)
    console.print(f"wrote {args.out}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
