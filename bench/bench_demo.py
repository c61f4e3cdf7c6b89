"""Time ``onerec demo`` end to end and per stage; write ``bench/results/demo.json``.

    python bench/bench_demo.py                       # runs `onerec demo --out runs/bench-demo`
    python bench/bench_demo.py --fast                # the --fast preset
    python bench/bench_demo.py --from-run runs/demo  # only collect the figures of a finished run
    python bench/bench_demo.py -- embeddings.cache_dir=/tmp/fresh   # extra demo arguments

Per stage it records wall seconds, process CPU seconds and the budget. The demo runs torch
and faiss on one thread, so on an idle machine a stage's wall time is about its CPU time; on a
shared machine the wall time also holds the waiting, which is why the load average before and
after is recorded next to every figure. The first run on a machine also embeds the item text
with MiniLM (cached afterwards); ``--fresh-cache`` forces that cost into the measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from onerec.io import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "demo.json"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_demo(out: Path, fast: bool, extra: list[str], fresh_cache: bool) -> dict[str, Any]:
    """Run the demo as a user would (a separate process); wall time includes start-up."""
    command = [
        sys.executable,
        "-c",
        "from onerec.cli import main; main()",
        "demo",
        "--out",
        str(out),
        "--quiet",
    ]
    if fast:
        command.append("--fast")
    cache = None
    if fresh_cache:
        cache = tempfile.mkdtemp(prefix="onerec-embed-cache-")
        extra = [*extra, f"embeddings.cache_dir={cache}"]
    started, load_before = time.perf_counter(), load()
    done = subprocess.run([*command, *extra], cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if cache:
        shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        sys.exit(f"onerec demo exited with {done.returncode}")
    return {
        "command": " ".join(["onerec", *command[3:], *extra]),
        "process_wall_seconds": round(wall, 1),
        "load_before": load_before,
        "load_after": load(),
    }


def collect(run_dir: Path) -> dict[str, Any]:
    """Stage timings and headline figures of a finished run."""
    summary = json.loads((run_dir / "summary.json").read_text())
    stages = summary["stages"]
    evaluation = summary.get("evaluate", {})
    ipa = evaluation.get("ipa", {})
    crm_fixed = summary.get("crm", {}).get("fixed_test", [])
    return {
        "run_dir": str(run_dir),
        "config": summary["run"].get("config_name"),
        "pipeline_wall_seconds": summary["run"].get("total_seconds"),
        "pipeline_cpu_seconds": summary["run"].get("total_cpu_seconds"),
        "pipeline_load": [summary["run"].get("load_before"), summary["run"].get("load_after")],
        "torch_threads": summary["run"].get("torch_threads"),
        "stages": {
            s["name"]: {
                k: s[k]
                for k in ("status", "seconds", "cpu_seconds", "budget_seconds", "over_budget")
            }
            for s in stages
        },
        "ranking_test": evaluation.get("ranking", {}),
        "ipa_reward": {
            "before": ipa.get("before", {}).get("reward"),
            "after": ipa.get("after", {}).get("reward"),
        },
        "crm_target_auc_by_condition_quantile": [
            [r["quantile"], r.get("target_auc")] for r in crm_fixed
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-demo")
    parser.add_argument("--fast", action="store_true")
    parser.add_argument(
        "--from-run", type=Path, default=None, help="collect a finished run; do not run"
    )
    parser.add_argument("--fresh-cache", action="store_true", help="embed the item text afresh")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("extra", nargs="*", help="more `onerec demo` arguments (after --)")
    args = parser.parse_args()
    record: dict[str, Any] = {
        "measured_at": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
        },
    }
    if args.from_run is None:
        record["process"] = run_demo(args.out, args.fast, args.extra, args.fresh_cache)
        run_dir = args.out
    else:
        run_dir = args.from_run
    record.update(collect(run_dir))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(args.results.read_text()) if args.results.is_file() else {}
    key = record.get("config") or "default"
    existing[key] = record
    atomic_write_json(args.results, existing)
    print(
        f"{key}: {record['pipeline_wall_seconds']} s wall, {record['pipeline_cpu_seconds']} s CPU "
        f"(load {record['pipeline_load']}) -> {args.results}"
    )
    for name, stage in record["stages"].items():
        print(
            f"  {name:<11}{stage['status']:<8}{stage['seconds']:>8.1f} s wall {stage['cpu_seconds']:>8.1f} s CPU"
            f"  budget {stage['budget_seconds']}"
        )


if __name__ == "__main__":
    main()
