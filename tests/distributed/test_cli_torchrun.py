"""`onerec train` and `onerec train-reward` under a real 2-process ``torchrun`` (gloo, CPU)
against one process.

A tiny generator (MoE decoder with the aux load-balancing loss, dropout 0, m = 1) on a
synthetic prepared data set; the global batch of 61 rows splits 31/30 over the two ranks, and
each epoch ends with a short batch. The single-process run goes through ``python -m
onerec.cli`` (also covering that entry point); the torchrun run uses ``--no-python onerec``
without ``--out``, so rank 0 must choose the timestamped run directory for every rank.

The reward model (``train-reward`` on the embedded kuairand-demo data, global batch 37 split
19/18, ranks weighted by their real session items) is checked the same way.

Tolerances (docs/distributed.md): per-step training loss relative 1e-5 (float32 sums over the
shards are ordered differently; AdamW carries the difference on), final weights absolute 1e-4,
validation/test metrics (sharded beam search) equal to 1e-9.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # ~30 s: five interpreters import torch and train

LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-4
METRIC_ATOL = 1e-9
NUM_ITEMS = 30

CONFIG = """\
task = "generator"

[data]
dataset = "{prepared}"
max_history = 5

[tokenizer.fit]
levels = 2
codebook_size = 4
seed = 0

[tokenizer.embeddings]
kind = "collab"
collab_dim = 8
collab_window = 2

[model]
size = "tiny"
dropout = 0.0
expert_hidden = 16
load_balance = "aux_loss"

[objective]
session_items = 1
aux_loss_weight = 0.05

[train]
epochs = 2
batch_size = 61
lr = 3e-3
warmup_steps = 2
eval_every_epochs = 1
log_every = 1
progress = false
device = "cpu"
seed = 0

[eval]
ks = [1, 5, 10]
beam_width = 10
batch_size = 16
valid_users = 30
"""

REWARD_CONFIG = """\
out_dir = "unused"

[data]
dataset = "kuairand-demo"

[model]
item_features = ["duration_ms", "tags"]
d_model = 8
num_heads = 1
tower_hidden = 8
dropout = 0.0
max_history = 5

[[model.targets]]
name = "vtr"
column = "long_view"

[[model.targets]]
name = "swt"
column = "play_time_ms"
kind = "regression"

[train]
epochs = 1
max_steps = 6
batch_size = 37
lr = 3e-3
log_every = 1
eval_every_steps = 3
monitor = "valid_loss"
monitor_mode = "min"
progress = false
device = "cpu"
"""


def _walks(path: Path, users: int = 60) -> Path:
    # every user walks the catalogue in order: item ids 100, 101, ..., 129, 100, ...
    rng = np.random.default_rng(0)
    lines = []
    for user in range(users):
        start, length = int(rng.integers(0, NUM_ITEMS)), int(rng.integers(5, 10))
        items = [str(100 + (start + k) % NUM_ITEMS) for k in range(length)]
        lines.append(" ".join([str(user + 1), *items]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"  # what torchrun gives each worker: same kernels both ways
    return env


def _run(command: list[str], cwd: Path) -> None:
    proc = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{command} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"


def _onerec_script() -> str:
    beside = Path(sys.executable).parent / "onerec"
    found = str(beside) if beside.is_file() else shutil.which("onerec")
    if found is None:
        pytest.skip("the onerec console script is not installed")
    return found


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from onerec.data import prepare_dataset

    root = tmp_path_factory.mktemp("cli_torchrun")
    prepared = root / "prepared"
    prepare_dataset(_walks(root / "walks.txt"), prepared)
    config = root / "generator.toml"
    config.write_text(CONFIG.format(prepared=prepared))

    single = root / "single"
    _run([sys.executable, "-m", "onerec.cli", "train", str(config), "--out", str(single)], root)

    workdir = root / "ddp"
    workdir.mkdir()
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "--no-python",
            _onerec_script(),
            "train",
            str(config),
        ],  # fmt: skip
        workdir,
    )
    made = sorted((workdir / "runs").iterdir())
    assert len(made) == 1, f"expected one run directory, got {made}"  # rank 0 named it
    return {"single": single, "ddp": made[0], "ddp_root": workdir}


def _train_losses(run_dir: Path) -> tuple[list[int], list[float]]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    return [r["step"] for r in train], [r["loss"] for r in train]


def test_same_losses_as_one_process(runs: dict[str, Path]) -> None:
    single_steps, single_losses = _train_losses(runs["single"])
    ddp_steps, ddp_losses = _train_losses(runs["ddp"])
    assert len(single_steps) >= 6  # 2 epochs of ceil(examples / 61) batches
    assert ddp_steps == single_steps
    np.testing.assert_allclose(ddp_losses, single_losses, rtol=LOSS_RTOL)


def test_same_final_metrics_and_weights(runs: dict[str, Path]) -> None:
    from safetensors.numpy import load_file

    single = json.loads((runs["single"] / "metrics.json").read_text())
    ddp = json.loads((runs["ddp"] / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert set(ddp["metrics"][split]) == set(single["metrics"][split])
        for key, value in single["metrics"][split].items():
            assert ddp["metrics"][split][key] == pytest.approx(value, abs=METRIC_ATOL), key
    assert ddp["meta"]["best_step"] == single["meta"]["best_step"]
    single_weights = load_file(runs["single"] / "model" / "model.safetensors")
    ddp_weights = load_file(runs["ddp"] / "model" / "model.safetensors")
    assert set(ddp_weights) == set(single_weights)
    for name, value in single_weights.items():
        np.testing.assert_allclose(ddp_weights[name], value, rtol=0, atol=WEIGHT_ATOL)


def test_rank0_wrote_one_complete_run_dir(runs: dict[str, Path]) -> None:
    run_dir = runs["ddp"]
    assert run_dir.name.startswith("generator-prepared-")
    for name in (
        "source_config.toml",
        "run_config.json",
        "metrics.json",
        "metrics.jsonl",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer/tokenizer.json",
        "model/item_ids.json",
        "checkpoints/last/model.safetensors",
        "checkpoints/best/model.safetensors",
    ):
        assert (run_dir / name).is_file(), name
    # nothing half-written (atomic writes leave no temporaries behind) and no second run dir
    leftovers = [p for p in run_dir.rglob("*") if ".tmp" in p.name or p.name.startswith(".")]
    assert leftovers == []
    assert [p.name for p in runs["ddp_root"].iterdir()] == ["runs"]
    single_files = sorted(str(p.relative_to(runs["single"])) for p in runs["single"].rglob("*"))
    ddp_files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*"))
    assert ddp_files == single_files
    # the training log was written once (rank 0), not once per rank
    steps, _ = _train_losses(run_dir)
    assert len(steps) == len(set(steps))


@pytest.fixture(scope="module")
def reward_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reward_torchrun")
    config = root / "reward.toml"
    config.write_text(REWARD_CONFIG)
    single, ddp = root / "single", root / "ddp"
    _run(
        [sys.executable, "-m", "onerec.cli", "train-reward", str(config), "--out", str(single)],
        root,
    )
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "onerec.cli",
            "train-reward",
            str(config),
            "--out",
            str(ddp),
        ],  # fmt: skip
        root,
    )
    return {"single": single, "ddp": ddp}


def test_reward_model_matches_one_process(reward_runs: dict[str, Path]) -> None:
    from safetensors.numpy import load_file

    single, ddp = reward_runs["single"], reward_runs["ddp"]
    single_log, ddp_log = (
        [json.loads(line) for line in (run / "train" / "metrics.jsonl").read_text().splitlines()]
        for run in (single, ddp)
    )
    assert [r["step"] for r in ddp_log if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(
        [r["loss"] for r in ddp_log if r["kind"] == "train"],
        [r["loss"] for r in single_log if r["kind"] == "train"],
        rtol=LOSS_RTOL,
    )
    np.testing.assert_allclose(
        [r["valid_loss"] for r in ddp_log if r["kind"] == "eval"],
        [r["valid_loss"] for r in single_log if r["kind"] == "eval"],
        rtol=LOSS_RTOL,
    )
    single_weights = load_file(single / "model" / "model.safetensors")
    ddp_weights = load_file(ddp / "model" / "model.safetensors")
    for name, value in single_weights.items():
        np.testing.assert_allclose(ddp_weights[name], value, rtol=0, atol=WEIGHT_ATOL)
    for name in ("run_config.json", "metrics.json", "report.md", "model/config.json"):
        assert (ddp / name).is_file(), name


def test_refused_config_leaves_no_run_dir_under_torchrun(tmp_path: Path) -> None:
    # Every rank refuses the config (ConfigError from the recipe) and exits; rank 0, which made
    # the directory, removes it again, and no rank waits forever for the others.
    config = tmp_path / "generator.toml"
    config.write_text(CONFIG.format(prepared=tmp_path / "prepared"))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "onerec.cli", "train", str(config), "model.not_a_field=1", "--out", "refused",
    ]  # fmt: skip
    proc = subprocess.run(
        command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "generator config is invalid" in proc.stdout + proc.stderr
    assert not (tmp_path / "refused").exists()


def test_python_dash_m_onerec_runs_the_cli(tmp_path: Path) -> None:
    # `python -m onerec.cli` is exercised by the runs above; `python -m onerec` is its alias
    proc = subprocess.run(
        [sys.executable, "-m", "onerec", "train", "--help"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "torchrun" in proc.stdout and "python -m onerec train" in proc.stdout
