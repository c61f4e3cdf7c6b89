"""Generator throughput, before and after the speed work, in one run.

* Training: tokens/s and MFU for each ``--optimizers`` variant (``plain`` = torch's
  per-parameter AdamW loop, what ``onerec.training`` built before the speed work; ``foreach`` =
  the multi-tensor update ``onerec.training.optim.build_optimizer`` builds now; ``fused`` =
  torch's fused CPU kernel, not used by the trainer: not bit-equal), every variant from the same initial
  weights on the same batches. MFU = achieved FLOP/s / peak FLOP/s, where the peak is this
  machine's fp32 matmul rate measured in the same run with the same thread count (best of
  several square matmuls, before and after each training timing), and the FLOPs are counted on
  real tokens only by ``onerec.model.flops.training_flops`` (6 × active matmul params × tokens
  + attention terms). A torch.profiler summary of a few steps (top operators by self CPU time,
  forward / backward / optimizer totals) is written to the JSON.
* Beam search (beam 20, top 10): users/s of the module decoding path (``search(fast=False)``,
  before) and the inference fast path (``fast=True``: preallocated KV cache, matmul attention,
  MoE without statistics; after), batched (``--gen-batch`` users per search) and one user per
  search (the serving shape); the JSON says whether both returned the same items.

Inputs: the model config of a ``task = "generator"`` file (default ``configs/generator_beauty.toml``),
the Amazon Beauty leave-one-out split and a tokenizer (``--tokenizer DIR``). Without the data or
tokenizer it falls back to a synthetic catalogue of the same shape (``--synthetic``): random
unique code tuples with Beauty's codebook sizes and random histories with Beauty's lengths.
The load average before and after is recorded: on a shared machine wall-clock figures are
pessimistic, the ``process_cpu_seconds`` fields less so.

    .venv/bin/python bench/bench_generator.py --tokenizer runs/generator-beauty/model/tokenizer --threads 1
writes ``bench/results/generator_<name>.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

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


OPTIMIZERS: dict[str, dict[str, Any]] = {
    # Torch's default on CPU: the per-parameter loop (the trainer before the speed work).
    "plain": {},
    # The same AdamW update with torch's multi-tensor kernels: what the trainer builds now.
    "foreach": {"foreach": True},
    # The same update in torch's fused CPU kernel.
    "fused": {"fused": True},
}


def training_step_fn(
    model: OneRecGenerator, optimizer: torch.optim.Optimizer
) -> Callable[[dict[str, torch.Tensor]], None]:
    """One optimizer step on a batch, with profiler labels on its three phases."""

    def step(batch: dict[str, torch.Tensor]) -> None:
        with record_function("forward"):
            out = generator_loss(model, batch, 0.01)
        optimizer.zero_grad(set_to_none=True)
        with record_function("backward"):
            out.loss.backward()
        with record_function("optimizer"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

    return step


def bench_training(
    model: OneRecGenerator, batches: list[dict[str, torch.Tensor]], warmup: int, optimizer: str
) -> dict[str, Any]:
    """Time optimizer steps on ``batches`` (after ``warmup`` untimed ones)."""
    step = training_step_fn(
        model, torch.optim.AdamW(model.parameters(), lr=1e-3, **OPTIMIZERS[optimizer])
    )
    model.train()
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
    cpu_start = time.process_time()
    for batch in timed:
        step(batch)
    seconds = time.perf_counter() - start
    return {
        "optimizer": optimizer,
        "optimizer_kwargs": OPTIMIZERS[optimizer],
        "steps": len(timed),
        "seconds": seconds,
        "process_cpu_seconds": time.process_time() - cpu_start,
        "ms_per_step": 1000 * seconds / len(timed),
        "real_tokens_per_s": (enc_tokens + dec_tokens) / seconds,
        "encoder_tokens_per_s": enc_tokens / seconds,
        "decoder_tokens_per_s": dec_tokens / seconds,
        "examples_per_s": sum(len(b["history_mask"]) for b in timed) / seconds,
        "encoder_padding_fraction": 1 - enc_tokens / padded,
        "achieved_flops": flops / seconds,
    }


def profile_summary(run: Callable[[], object], rows: int = 12) -> dict[str, Any]:
    """torch.profiler over ``run()``: the top operators by self CPU time and labelled phases."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    phases = {
        e.key: round(e.cpu_time_total / 1000, 2)
        for e in events
        if e.key in ("forward", "backward", "optimizer", "search")
    }
    return {
        "total_self_cpu_ms": round(total / 1000, 2),
        "phases_cpu_ms": phases,
        "top_ops": [
            {
                "name": e.key,
                "self_cpu_ms": round(e.self_cpu_time_total / 1000, 2),
                "share": round(e.self_cpu_time_total / total, 4),
                "calls": e.count,
            }
            for e in top
        ],
    }


def bench_generation(
    model: OneRecGenerator,
    inputs: dict[str, Any],
    users: int,
    batch_size: int,
    beam: int,
    top_k: int,
    fast: bool,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Users/s of batched, trie-constrained beam search (histories of the test split)."""
    histories = inputs["eval_histories"][:users]
    trie = TrieTensors.from_trie(inputs["trie"])
    model.eval()

    def run(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        return recommend_topk(
            model, rows, inputs["codes"], trie, top_k, beam, batch_size, fast=fast
        )

    run(histories[:batch_size])  # warm-up
    start = time.perf_counter()
    cpu_start = time.process_time()
    items, scores = run(histories)
    seconds = time.perf_counter() - start
    assert (items >= 0).all(), "beam search returned fewer than top_k items"
    return (
        {
            "path": "fast" if fast else "module",
            "users": len(histories),
            "seconds": seconds,
            "process_cpu_seconds": time.process_time() - cpu_start,
            "users_per_s": len(histories) / seconds,
            "beam_width": beam,
            "top_k": top_k,
            "batch_size": batch_size,
        },
        items,
        scores,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="configs/generator_beauty.toml")
    parser.add_argument("--tokenizer", default="runs/generator-beauty/model/tokenizer")
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--synthetic", action="store_true", help="skip real data")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's")
    parser.add_argument("--users", type=int, default=1024, help="users for the generation timing")
    parser.add_argument(
        "--optimizers",
        default="plain,foreach,fused",
        help=f"training variants to time, comma-separated, the first is 'before' ({', '.join(OPTIMIZERS)})",
    )
    parser.add_argument("--profile-steps", type=int, default=3, help="profiled training steps")
    parser.add_argument("--gen-batch", type=int, default=256)
    parser.add_argument(
        "--single-users", type=int, default=64, help="users timed one per search (serving shape)"
    )
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
    initial_state = copy.deepcopy(model.state_dict())
    counts = parameter_counts(model)
    batch_size = args.batch_size or cfg.train.batch_size
    examples = sliding_session_examples(
        inputs["train_sequences"], model_cfg.max_history, cfg.objective.session_items
    )
    stream = GeneratorBatches(examples, inputs["codes"], batch_size, seed=0).for_epoch(0)
    wanted = args.warmup + args.steps + args.profile_steps
    batches = [b for _, b in zip(range(wanted), stream, strict=False)]
    timed_batches = batches[: args.warmup + args.steps]
    variants = [name.strip() for name in args.optimizers.split(",") if name.strip()]
    unknown = set(variants) - set(OPTIMIZERS)
    if unknown:
        parser.error(
            f"unknown optimizer variant(s) {sorted(unknown)}; choose from {list(OPTIMIZERS)}"
        )

    load_before = os.getloadavg()
    peaks = [matmul_peak(args.threads)]
    training: dict[str, dict[str, Any]] = {}
    trained: dict[str, dict[str, torch.Tensor]] = {}
    for name in variants:  # every variant from the same weights, batches and dropout draws
        model.load_state_dict(initial_state)
        torch.manual_seed(1)
        training[name] = bench_training(model, timed_batches, args.warmup, name)
        trained[name] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        peaks.append(matmul_peak(args.threads))
    for name in variants[1:]:  # same math: the weights after the timed steps must agree
        training[name]["max_weight_difference_vs_" + variants[0]] = max(
            float((trained[name][k] - trained[variants[0]][k]).abs().max())
            for k in trained[name]
            if trained[name][k].is_floating_point()
        )
    peak = max(peaks)
    for result in training.values():
        result["mfu"] = result["achieved_flops"] / peak
    best = max(training, key=lambda n: training[n]["real_tokens_per_s"])

    # Where a training step's time goes (the fastest variant), for the summary in the docs.
    model.load_state_dict(initial_state)
    model.train()
    step = training_step_fn(
        model, torch.optim.AdamW(model.parameters(), lr=1e-3, **OPTIMIZERS[best])
    )
    step(batches[0])  # optimizer state exists before profiling
    profiled = batches[args.warmup + args.steps :] or batches[-1:]
    training_profile = profile_summary(lambda: [step(b) for b in profiled])
    training_profile["steps"] = len(profiled)
    training_profile["optimizer"] = best

    # Beam search: the module path (before) and the fast decoding path (after), same model.
    model.load_state_dict(initial_state)
    generation: dict[str, Any] = {}
    outputs = {}
    for fast in (False, True):
        result, items, scores = bench_generation(
            model, inputs, args.users, args.gen_batch, args.beam, args.top_k, fast
        )
        generation[result["path"]] = result
        outputs[fast] = (items, scores)
    # One user per search (the serving shape), where per-operator overhead dominates.
    for fast in (False, True):
        result, _, _ = bench_generation(
            model, inputs, args.single_users, 1, args.beam, args.top_k, fast
        )
        generation[f"{result['path']}_one_user_per_search"] = result
    same_items = bool(np.array_equal(outputs[False][0], outputs[True][0]))
    score_gap = float(np.max(np.abs(outputs[False][1] - outputs[True][1])))
    generation["same_items"] = same_items
    generation["max_score_difference"] = score_gap
    generation["speedup"] = generation["fast"]["users_per_s"] / generation["module"]["users_per_s"]
    generation["speedup_one_user_per_search"] = (
        generation["fast_one_user_per_search"]["users_per_s"]
        / generation["module_one_user_per_search"]["users_per_s"]
    )
    sample = inputs["eval_histories"][: args.gen_batch]
    trie = TrieTensors.from_trie(inputs["trie"])
    generation["profile_fast"] = profile_summary(
        lambda: recommend_topk(
            model, sample, inputs["codes"], trie, args.top_k, args.beam, args.gen_batch
        )
    )
    load_after = os.getloadavg()
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
        "matmul_peaks_measured": peaks,
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "training": training,
        "training_before": variants[0],
        "training_best": best,
        "training_profile": training_profile,
        "generation": generation,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join(["bench_generator.py", *sys.argv[1:]]),
    }
    out = Path(args.out_dir) / f"generator_{args.name}.json"
    atomic_write_json(out, result)
    print(
        f"params total {counts.total:,} active {counts.active:,}  threads {args.threads}  "
        f"load {load_before[0]:.1f} -> {load_after[0]:.1f}"
    )
    print(f"matmul peak {peak / 1e9:.1f} GFLOP/s")
    for name, train in training.items():
        print(
            f"training [{name}]: {train['real_tokens_per_s']:,.0f} real tokens/s "
            f"({train['examples_per_s']:,.0f} examples/s, {train['ms_per_step']:.0f} ms/step), "
            f"{train['achieved_flops'] / 1e9:.1f} GFLOP/s = MFU {100 * train['mfu']:.1f} %, "
            f"encoder padding {100 * train['encoder_padding_fraction']:.1f} %"
            + "".join(
                f", {key.replace('_', ' ')} {value:.1e}"
                for key, value in train.items()
                if key.startswith("max_weight_difference")
            )
        )
    print("training profile (top ops by self CPU):")
    for op in training_profile["top_ops"][:8]:
        print(f"  {op['name']:45s} {100 * op['share']:5.1f} %  {op['calls']} calls")
    for path in ("module", "fast", "module_one_user_per_search", "fast_one_user_per_search"):
        gen = generation[path]
        print(
            f"generation [{path}]: {gen['users_per_s']:.1f} users/s (beam {args.beam}, "
            f"top {args.top_k}, {gen['users']} users, batch {gen['batch_size']}, "
            f"CPU {1000 * gen['process_cpu_seconds'] / gen['users']:.2f} ms/user)"
        )
    print(
        f"generation speed-up {generation['speedup']:.2f}x (batch {args.gen_batch}), "
        f"{generation['speedup_one_user_per_search']:.2f}x (one user per search), "
        f"same items: {same_items}, "
        f"max score difference {score_gap:.2e}"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
