"""Entry point for ``python -m torch.distributed.run --nproc-per-node 2 --standalone
ddp_worker.py OUT_DIR`` (see test_torchrun.py). Each rank writes ``OUT_DIR/rank<r>.json``.

Run without torchrun it does the same work in one process (the reference).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import scenarios  # the script's folder is on sys.path
import torch

from onerec.training.distributed import init_distributed, rank, teardown_distributed, world_size


def main(out_dir: Path) -> None:
    torch.set_num_threads(1)  # the reference run uses one thread too: same kernels
    info = init_distributed("auto")
    started = time.perf_counter()
    result: dict[str, object] = {"world_size": world_size(), "backend": info.backend}
    runs = out_dir / "runs"
    result["sasrec_ddp"] = scenarios.train_sasrec(runs / "sasrec_ddp", "ddp")
    result["sasrec_fsdp2"] = scenarios.train_sasrec(runs / "sasrec_fsdp2", "fsdp2")
    scenarios.train_sasrec(runs / "sasrec_fsdp2_resumed", "fsdp2", max_steps=3)
    result["sasrec_fsdp2_resumed"] = scenarios.train_sasrec(
        runs / "sasrec_fsdp2_resumed", "fsdp2", resume=True
    )
    result["mlp_ddp"] = scenarios.train_mlp(runs / "mlp_ddp")
    result["crm_ddp"] = scenarios.train_crm(runs / "crm_ddp")
    result["evaluation"] = scenarios.sharded_evaluation()
    result["beam_search"] = scenarios.sharded_beam_search()
    result["maps"] = scenarios.sharded_maps()
    result["collectives"] = scenarios.collectives(out_dir)
    result["seconds"] = round(time.perf_counter() - started, 2)
    (out_dir / f"rank{rank()}.json").write_text(json.dumps(result))
    teardown_distributed()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
