"""Load test of the HTTP service on loopback: p50/p95/p99 latency, throughput and errors.

Starts ``onerec serve BUNDLE`` (uvicorn on 127.0.0.1, a free port), waits for ``/healthz``,
warms up, then for each endpoint sends a fixed number of requests at a sustained rate
(open loop: request i is due at ``t0 + i / rate`` whatever the earlier ones are doing, from a
thread pool with one shared ``httpx.Client``). Latency is measured from the moment a request was
*due* to its answer, so a slow server cannot hide its queueing (no coordinated omission). The
server is terminated at the end; every loop is bounded.

Bundle: ``--bundle DIR``; else the demo bundle (``$ONEREC_DEMO_BUNDLE`` or ``runs/demo/bundle``)
when present; else an untrained bundle of ``--generator-size`` over the embedded KuaiRand demo
data is built once under ``runs/bench/`` (untrained weights cost the same per request as
trained ones; the JSON says which it was).

  .venv/bin/python bench/bench_serve.py                      # 20 req/s x 15 s per endpoint
  .venv/bin/python bench/bench_serve.py --bundle runs/demo/bundle --rate 50 --duration 10

Writes ``bench/results/serve_<bundle name>.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEMO_BUNDLE = Path(os.environ.get("ONEREC_DEMO_BUNDLE", ROOT / "runs" / "demo" / "bundle"))
SMOKE_ROOT = ROOT / "runs" / "bench"
HOST = "127.0.0.1"
START_TIMEOUT_S = 240.0
REQUEST_TIMEOUT_S = 10.0
P99_TARGET_MS = 50.0  # /v1/recommend, demo model, beam 20 (DESIGN.md §3b)


@dataclass
class Sample:
    """One request: when it was due, sent and answered, and how."""

    due: float
    sent: float
    done: float
    status: int  # 0 = transport error / timeout
    handler_ms: float | None  # the server's own latency_ms field


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def resolve_bundle(args: argparse.Namespace) -> tuple[Path, str]:
    """The bundle to serve and where it came from."""
    if args.bundle is not None:
        return Path(args.bundle), "given"
    if (DEMO_BUNDLE / "bundle.json").is_file():
        return DEMO_BUNDLE, "demo"
    target = SMOKE_ROOT / f"serve_untrained_{args.generator_size}"
    if not (target / "bundle.json").is_file():
        from onerec.data import load_dataset
        from onerec.serve.smoke import build_smoke_bundle

        size, overrides = generator_shape(args.generator_size)
        print(f"no demo bundle at {DEMO_BUNDLE}; building an untrained one at {target}")
        build_smoke_bundle(target, load_dataset("kuairand-demo"), generator_size=size, **overrides)
    return target, f"untrained-{args.generator_size}"


def generator_shape(name: str) -> tuple[str, dict[str, Any]]:
    """A named size, or ``demo``: the shape ``onerec demo`` trains (read from its config)."""
    if name != "demo":
        return name, {}
    from onerec.demo.config import DemoDataConfig, DemoGeneratorConfig

    demo = DemoGeneratorConfig()
    fields = dict(demo.model)
    size = str(fields.pop("size", "small"))
    fields.setdefault("max_session_items", demo.objective.session_items)
    fields.setdefault("max_history", DemoDataConfig.model_validate({}).max_history)
    return size, fields


class ServerProcess:
    """``onerec serve`` in a child process, on loopback; always terminated by ``stop``."""

    def __init__(
        self, bundle: Path, port: int, workers: int, log_path: Path, torch_threads: int = 1
    ) -> None:
        command = [
            sys.executable, "-c", "from onerec.cli import main; main()", "serve", str(bundle),
            "--host", HOST, "--port", str(port), "--workers", str(workers),
            "--torch-threads", str(torch_threads), "--log-level", "warning",
        ]  # fmt: skip
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.base_url = f"http://{HOST}:{port}"

    def wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}):\n{self.log()}")
            try:
                answer = httpx.get(f"{self.base_url}/healthz", timeout=2.0)
                if answer.status_code == 200:
                    health: dict[str, Any] = answer.json()
                    return health
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"server not ready after {START_TIMEOUT_S} s:\n{self.log()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the server process has used so far (Linux; else None)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def run_load(
    client: httpx.Client, path: str, bodies: list[dict[str, Any]], rate: float, threads: int
) -> tuple[list[Sample], float]:
    """Send ``bodies`` open-loop at ``rate`` per second; return samples and the wall time."""
    samples: list[Sample] = []
    lock = threading.Lock()

    def send(due: float, body: dict[str, Any]) -> None:
        sent = time.perf_counter()
        status, handler_ms = 0, None
        try:
            answer = client.post(path, json=body)
            status = answer.status_code
            if status == 200:
                handler_ms = float(answer.json()["latency_ms"])
        except httpx.HTTPError:
            pass
        sample = Sample(due, sent, time.perf_counter(), status, handler_ms)
        with lock:
            samples.append(sample)

    start = time.perf_counter() + 0.05
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for i, body in enumerate(bodies):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            pool.submit(send, due, body)
    return samples, time.perf_counter() - start


def summarise(samples: list[Sample], wall_s: float) -> dict[str, Any]:
    ok = [s for s in samples if s.status == 200]
    errors: dict[str, int] = {}
    for s in samples:
        if s.status != 200:
            errors[str(s.status or "transport")] = errors.get(str(s.status or "transport"), 0) + 1
    due_ms = np.array([(s.done - s.due) * 1000 for s in ok]) if ok else np.zeros(1)
    wire_ms = np.array([(s.done - s.sent) * 1000 for s in ok]) if ok else np.zeros(1)
    handler = (
        np.array([s.handler_ms for s in ok if s.handler_ms is not None]) if ok else np.zeros(1)
    )

    def pct(values: np.ndarray) -> dict[str, float]:
        return {f"p{q}": round(float(np.percentile(values, q)), 2) for q in (50, 95, 99)} | {
            "max": round(float(values.max()), 2),
            "mean": round(float(values.mean()), 2),
        }

    return {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "error_statuses": errors,
        "wall_seconds": round(wall_s, 2),
        "throughput_rps": round(len(ok) / wall_s, 2),
        "latency_ms": pct(due_ms),  # due -> answer (includes any client-side lag)
        "wire_latency_ms": pct(wire_ms),  # sent -> answer
        "handler_ms": pct(handler),  # inside the endpoint (the response's latency_ms)
    }


def request_bodies(
    bundle: Path, args: argparse.Namespace, health: dict[str, Any]
) -> dict[str, list[dict[str, Any]]]:
    """Requests for random known users (fixed seed), ``rate x duration`` per endpoint."""
    users = pl.read_parquet(bundle / "user_histories.parquet", columns=["user_id"])[
        "user_id"
    ].to_list()
    rng = np.random.default_rng(args.seed)
    count = int(args.rate * args.duration)
    out: dict[str, list[dict[str, Any]]] = {}
    if health.get("generator"):
        m = min(args.m, int(health["generator"]["max_session_items"]))
        out["/v1/recommend"] = [
            {"user_id": users[i], "m": m, "beam_width": args.beam_width}
            for i in rng.integers(0, len(users), count)
        ]
    if health.get("retrieval"):
        strategy = {} if health["retrieval"].get("condition") == "none" else {"strategy": "mean"}
        out["/v1/retrieve"] = [
            {"user_id": users[i], "k": args.k, **strategy}
            for i in rng.integers(0, len(users), count)
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument(
        "--generator-size",
        default="demo",
        help="untrained fallback bundle: demo (the shape `onerec demo` trains) | tiny | small | base",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second per endpoint")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per endpoint")
    parser.add_argument("--beam-width", type=int, default=20)
    parser.add_argument("--m", type=int, default=5, help="session items (capped by the model)")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--threads", type=int, default=32, help="client threads")
    parser.add_argument("--warmup", type=int, default=20, help="requests per endpoint first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="result name (default: the bundle name)")
    args = parser.parse_args()
    if not (0 < args.rate <= 1000 and 0 < args.duration <= 300):
        parser.error("--rate must be in (0, 1000] and --duration in (0, 300]")

    from onerec.io import atomic_write_json

    bundle, origin = resolve_bundle(args)
    SMOKE_ROOT.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(
        bundle, free_port(), args.workers, SMOKE_ROOT / "serve_bench_server.log", args.torch_threads
    )
    load_before = os.getloadavg()
    try:
        health = server.wait_ready()
        bodies = request_bodies(bundle, args, health)
        limits = httpx.Limits(max_connections=args.threads, max_keepalive_connections=args.threads)
        results: dict[str, Any] = {}
        with httpx.Client(
            base_url=server.base_url, timeout=REQUEST_TIMEOUT_S, limits=limits
        ) as client:
            for path, requests in bodies.items():
                for body in requests[: args.warmup]:
                    client.post(path, json=body)
                cpu_before = server.cpu_seconds()
                samples, wall = run_load(client, path, requests, args.rate, args.threads)
                cpu_after = server.cpu_seconds()
                results[path] = summarise(samples, wall)
                if cpu_before is not None and cpu_after is not None:
                    # Server CPU per request: robust to other jobs sharing the cores.
                    per_request = (cpu_after - cpu_before) * 1000 / max(len(samples), 1)
                    results[path]["server_cpu_ms_per_request"] = round(per_request, 2)
                lat = results[path]["latency_ms"]
                print(
                    f"{path:14s} {results[path]['ok']}/{results[path]['requests']} ok  "
                    f"{results[path]['throughput_rps']:.1f} req/s  p50 {lat['p50']:.1f} ms  "
                    f"p95 {lat['p95']:.1f} ms  p99 {lat['p99']:.1f} ms  errors {results[path]['errors']}  "
                    f"server CPU {results[path].get('server_cpu_ms_per_request', float('nan')):.1f} ms/req"
                )
    finally:
        server.stop()
    load_after = os.getloadavg()
    recommend = results.get("/v1/recommend")
    verdict = None
    if recommend is not None:
        verdict = recommend["errors"] == 0 and recommend["latency_ms"]["p99"] <= P99_TARGET_MS
        print(
            f"/v1/recommend target (0 errors, p99 <= {P99_TARGET_MS:.0f} ms at beam {args.beam_width}): "
            f"{'met' if verdict else 'NOT met'}"
        )
    name = args.out or str(health["bundle"].get("name") or bundle.name)
    report = {
        "bundle": {"path": str(bundle), "origin": origin, **health["bundle"]},
        "generator": health.get("generator"),
        "retrieval": health.get("retrieval"),
        "settings": {
            "rate_per_endpoint": args.rate, "duration_s": args.duration, "beam_width": args.beam_width,
            "m": args.m, "k": args.k, "workers": args.workers, "torch_threads": args.torch_threads,
            "client_threads": args.threads,
            "warmup": args.warmup, "host": HOST,
        },
        "results": results,
        "recommend_target": {"p99_ms": P99_TARGET_MS, "met": verdict},
        "machine": {
            "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": health["versions"].get("torch"),
            "device": health["device"],
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    result_path = RESULTS / f"serve_{name}.json"
    atomic_write_json(result_path, report)
    print(f"wrote {result_path}")


if __name__ == "__main__":
    main()
