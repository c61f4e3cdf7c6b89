"""Two processes under ``torchrun`` (gloo, CPU) against one process, same global batch.

One ``python -m torch.distributed.run --nproc-per-node 2 --standalone ddp_worker.py`` launch runs
every scenario of ``scenarios.py``; the single-process references run here, in the test process.

Tolerances (stated in docs/distributed.md):

* per-step training loss: relative 1e-5 (measured ~1.4e-7: the shards are smaller matrices, so
  float32 sums are ordered differently; AdamW then carries the difference on);
* final weights: absolute 1e-4 (measured ~3e-6 after 8 AdamW steps at lr 1e-2);
* the two ranks' weights: identical (every rank applies the same averaged gradient);
* sharded evaluation (top-K lists and metrics) and sharded beam search: **identical** — each
  rank runs exactly the batches the single process runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # ~15-25 s: two interpreters import torch; runs in CI all the same

HERE = Path(__file__).resolve().parent
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-4


def _load_scenarios() -> ModuleType:
    spec = importlib.util.spec_from_file_location("onerec_ddp_scenarios", HERE / "scenarios.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def torchrun_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("torchrun")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone",
        str(HERE / "ddp_worker.py"), str(out),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.fixture(scope="module")
def single_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    scenarios = _load_scenarios()
    out = tmp_path_factory.mktemp("single")
    return {
        "sasrec": scenarios.train_sasrec(out / "sasrec", "ddp"),  # one process: no DDP
        "mlp": scenarios.train_mlp(out / "mlp"),
        "crm": scenarios.train_crm(out / "crm"),
        "evaluation": scenarios.sharded_evaluation(),
        "beam_search": scenarios.sharded_beam_search(),
    }


def _flat(weights: dict[str, list[float]]) -> np.ndarray:
    return np.concatenate([np.asarray(weights[k]) for k in sorted(weights)])


def test_worker_ran_two_gloo_ranks(torchrun_results: list[dict[str, Any]]) -> None:
    assert [r["world_size"] for r in torchrun_results] == [2, 2]
    assert torchrun_results[0]["backend"] == "gloo"


@pytest.mark.parametrize(
    ("run", "reference"),
    [
        ("sasrec_ddp", "sasrec"),
        ("sasrec_fsdp2", "sasrec"),
        ("sasrec_fsdp2_resumed", "sasrec"),  # 3 steps, stop, resume under torchrun, 5 more
        ("mlp_ddp", "mlp"),  # DataLoader, default row weights, gradient accumulation
        ("crm_ddp", "crm"),  # in-batch negatives: positives gathered across the ranks
    ],
)
def test_losses_and_weights_match_single_process(
    torchrun_results: list[dict[str, Any]],
    single_process: dict[str, Any],
    run: str,
    reference: str,
) -> None:
    rank0, rank1 = (r[run] for r in torchrun_results)
    expected = single_process[reference]
    assert len(expected["losses"]) >= 6
    np.testing.assert_allclose(rank0["losses"], expected["losses"], rtol=LOSS_RTOL)
    np.testing.assert_allclose(
        _flat(rank0["weights"]), _flat(expected["weights"]), rtol=0, atol=WEIGHT_ATOL
    )
    np.testing.assert_array_equal(_flat(rank0["weights"]), _flat(rank1["weights"]))
    if "history" in expected:  # sharded validation inside the trainer, same on both ranks
        assert rank0["history"] == rank1["history"]
        for got, want in zip(rank0["history"], expected["history"], strict=True):
            assert got["step"] == want["step"]
            assert got["ndcg@10"] == pytest.approx(want["ndcg@10"], abs=1e-6)


def test_sharded_evaluation_is_identical(
    torchrun_results: list[dict[str, Any]], single_process: dict[str, Any]
) -> None:
    for result in torchrun_results:
        evaluation = result["evaluation"]
        assert evaluation["topk_sharded"] == single_process["evaluation"]["topk_single"]
        assert evaluation["topk_sharded"] == evaluation["topk_single"]
        assert evaluation["metrics_sharded"] == single_process["evaluation"]["metrics_single"]


def test_sharded_beam_search_is_identical(
    torchrun_results: list[dict[str, Any]], single_process: dict[str, Any]
) -> None:
    expected = single_process["beam_search"]
    for result in torchrun_results:
        beams = result["beam_search"]
        assert beams["items_sharded"] == expected["items_single"]
        assert beams["scores_sharded"] == expected["scores_single"]


def test_sharded_maps_gather_in_order(torchrun_results: list[dict[str, Any]]) -> None:
    for result in torchrun_results:
        assert result["maps"] == {
            "objects": ["W0", "W1", "W2", "W3", "W4"],  # rank 0: 4 items, rank 1: 1
            "rows": [[0, 0, 0], [0, 1, 2], [0, 2, 4]],  # rank 1 gets none (align 2, 3 items)
            "bools": [[True], [False], [True], [False], [True]],
        }


def test_collective_helpers(torchrun_results: list[dict[str, Any]]) -> None:
    for result in torchrun_results:
        assert result["collectives"] == {
            "broadcast": {"from": 0},
            "gathered": [0, 1],
            "seen_marker": True,
            "rows": [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]],
        }
