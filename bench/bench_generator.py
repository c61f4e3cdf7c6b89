"""Generator throughput: training tokens/s and MFU, and beam-search users/s (beam 20, top 10).

MFU = achieved FLOP/s / peak FLOP/s, where the peak is this machine's fp32 matmul rate measured
in the same run with the same thread count (the best of several square matmuls, before and after
the training timing), and the FLOPs are counted on real tokens only by
``onerec.model.flops.training_flops`` (6 × active matmul params × tokens + attention terms).

Inputs: the model config of a ``task = "generator"`` file (default ``configs/generator_beauty.toml``),
the Amazon Beauty leave-one-out split and a tokenizer (``--tokenizer DIR``). Without the data or
tokenizer it falls back to a synthetic catalogue of the same shape (``--synthetic``): random
unique code tuples with Beauty's codebook sizes and random histories with Beauty's lengths.

    .venv/bin/python bench/bench_generator.py --tokenizer runs/gen/tok-beauty-text --threads 1
writes ``bench/results/generator_<name>.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from onerec.config import read_config_file
from onerec.generation import TrieTensors, recommend_topk
from onerec.io import atomic_write_json
from onerec.model import OneRecGenerator, generator_loss, parameter_counts
from onerec.model.batching import GeneratorBatches, real_token_counts, sliding_session_examples
from onerec.model.flops import training_flops
from onerec.model.recipe import GeneratorRunConfig, build_generator_config
from onerec.model.synthetic import random_catalogue

BEAUTY_SIZES = [256, 256, 256, 13]
BEAUTY_ITEMS = 12101


def matmul_peak(threads: int, size: int = 1024, repeats: int = 20) -> float:
    """Best fp32 matmul FLOP/s over a few timing rounds (what MFU is measured against)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        elapsed = time.perf_counter() - start
        best = max(best, 2 * size**3 * repeats / elapsed)
    return best


def load_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """Sequences, codes, trie, evaluation histories (real Beauty or synthetic look-alike)."""
    if not args.synthetic:
        try:
            from onerec.baselines.runs import DataSection, load_split
            from onerec.tokenizer import SemanticTokenizer

            tokenizer = SemanticTokenizer.load(args.tokenizer)
            data = load_split(DataSection(dataset=args.dataset))
            return {
                "source": f"{args.dataset} + tokenizer {args.tokenizer}",
                "train_sequences": data.split.train_sequences,
                "codes": tokenizer.codes,
                "codebook_sizes": tokenizer.codebook_sizes,
                "trie": tokenizer.trie,
                "eval_histories": data.split.test.histories,
            }
        except Exception as exc:  # noqa: BLE001 - any missing piece means: go synthetic
            print(f"real data unavailable ({exc}); using a synthetic Beauty-shaped catalogue")
    codes, trie = random_catalogue(BEAUTY_ITEMS, BEAUTY_SIZES, seed=0)
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.geometric(1 / 6.9, size=22363) + 4, 5, 200)  # Beauty-like lengths
    sequences = [rng.integers(0, BEAUTY_ITEMS, size=int(n)) for n in lengths]
    return {
        "source": "synthetic (Beauty shapes)",
        "train_sequences": [s[:-2] for s in sequences],
        "codes": codes,
        "codebook_sizes": BEAUTY_SIZES,
        "trie": trie,
        "eval_histories": [s[:-1][-20:] for s in sequences],
    }


def bench_training(
    model: OneRecGenerator, batches: list[dict[str, torch.Tensor]], warmup: int
) -> dict[str, float]:
    """Time optimizer steps on ``batches`` (after ``warmup`` untimed ones)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step(batch: dict[str, torch.Tensor]) -> None:
        out = generator_loss(model, batch, 0.01)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for batch in batches[:warmup]:
        step(batch)
    timed = batches[warmup:]
    flops = enc_tokens = dec_tokens = padded = 0.0
    levels = model.config.num_code_levels
    for batch in timed:
        enc_lengths = batch["history_mask"].sum(dim=1).numpy() + 1  # + context token
        items = batch["session_mask"].sum(dim=1).numpy()
        dec_lengths = np.maximum(items * (levels + 1) - 1, 0)
        flops += training_flops(model.config, enc_lengths, dec_lengths)
        enc, dec = real_token_counts(batch, levels)
        enc_tokens += enc
        dec_tokens += dec
        padded += batch["history_mask"].numel() + batch["history_mask"].shape[0]
    start = time.perf_counter()
    for batch in timed:
        step(batch)
    seconds = time.perf_counter() - start
    return {
        "steps": len(timed),
        "seconds": seconds,
        "ms_per_step": 1000 * seconds / len(timed),
        "real_tokens_per_s": (enc_tokens + dec_tokens) / seconds,
        "encoder_tokens_per_s": enc_tokens / seconds,
        "decoder_tokens_per_s": dec_tokens / seconds,
        "examples_per_s": sum(len(b["history_mask"]) for b in timed) / seconds,
        "encoder_padding_fraction": 1 - enc_tokens / padded,
        "achieved_flops": flops / seconds,
    }


def bench_generation(
    model: OneRecGenerator,
    inputs: dict[str, Any],
    users: int,
    batch_size: int,
    beam: int,
    top_k: int,
) -> dict[str, float]:
    """Users/s of batched, trie-constrained beam search (histories of the test split)."""
    histories = inputs["eval_histories"][:users]
    trie = TrieTensors.from_trie(inputs["trie"])
    model.eval()
    recommend_topk(model, histories[:batch_size], inputs["codes"], trie, top_k, beam, batch_size)
    start = time.perf_counter()
    items, _ = recommend_topk(model, histories, inputs["codes"], trie, top_k, beam, batch_size)
    seconds = time.perf_counter() - start
    assert (items >= 0).all(), "beam search returned fewer than top_k items"
    return {
        "users": len(histories),
        "seconds": seconds,
        "users_per_s": len(histories) / seconds,
        "beam_width": beam,
        "top_k": top_k,
        "batch_size": batch_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/generator_beauty.toml")
    parser.add_argument("--tokenizer", default="runs/gen/tok-beauty-text")
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--synthetic", action="store_true", help="skip real data")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's")
    parser.add_argument("--users", type=int, default=2048, help="users for the generation timing")
    parser.add_argument("--gen-batch", type=int, default=256)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--name", default="beauty")
    parser.add_argument("--out-dir", default="bench/results")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    cfg = GeneratorRunConfig.model_validate(
        {k: v for k, v in read_config_file(args.config).items() if k != "dataset_fingerprint"}
    )
    inputs = load_inputs(args)
    model_cfg = build_generator_config(
        cfg.model, inputs["codebook_sizes"], cfg.objective.session_items, cfg.data.max_history
    )
    model = OneRecGenerator(model_cfg)
    counts = parameter_counts(model)
    batch_size = args.batch_size or cfg.train.batch_size
    examples = sliding_session_examples(
        inputs["train_sequences"], model_cfg.max_history, cfg.objective.session_items
    )
    stream = GeneratorBatches(examples, inputs["codes"], batch_size, seed=0).for_epoch(0)
    batches = [b for _, b in zip(range(args.warmup + args.steps), stream, strict=False)]

    peak_before = matmul_peak(args.threads)
    load_before = os.getloadavg()[0]
    train = bench_training(model, batches, args.warmup)
    peak_after = matmul_peak(args.threads)
    generate = bench_generation(model, inputs, args.users, args.gen_batch, args.beam, args.top_k)
    peak = max(peak_before, peak_after)
    train["mfu"] = train["achieved_flops"] / peak
    result = {
        "name": args.name,
        "config": args.config,
        "inputs": inputs["source"],
        "generator": model_cfg.model_dump(),
        "session_items": cfg.objective.session_items,
        "batch_size": batch_size,
        "parameters": {
            "total": counts.total,
            "active": counts.active,
            "embedding": counts.embedding,
        },
        "threads": args.threads,
        "matmul_peak_flops": peak,
        "matmul_peak_before_after": [peak_before, peak_after],
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "training": train,
        "generation": generate,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out = Path(args.out_dir) / f"generator_{args.name}.json"
    atomic_write_json(out, result)
    print(
        f"params total {counts.total:,} active {counts.active:,}  threads {args.threads}  "
        f"load {load_before:.1f}"
    )
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(
        f"training: {train['real_tokens_per_s']:,.0f} real tokens/s "
        f"({train['examples_per_s']:,.0f} examples/s, {train['ms_per_step']:.0f} ms/step), "
        f"{train['achieved_flops'] / 1e9:.1f} GFLOP/s = MFU {100 * train['mfu']:.1f} %, "
        f"encoder padding {100 * train['encoder_padding_fraction']:.1f} %"
    )
    print(
        f"generation: {generate['users_per_s']:.1f} users/s (beam {args.beam}, top {args.top_k}, "
        f"{generate['users']} users)"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
