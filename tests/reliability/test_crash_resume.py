"""``kill -9`` during ``onerec train``, then the same command again, ends with the same metrics
as a run that was never interrupted (the Trainer's exact resume, through the real CLI)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from onerec.data import prepare_dataset

from .conftest import run_cli_process

USERS, ITEMS, PER_USER = 48, 30, 10
CONFIG = """\
task = "sasrec"

[data]
dataset = "{dataset}"
max_history = 8

[model]
max_len = 8
d_model = 16
num_layers = 1
num_heads = 1
ffn_dim = 16
dropout = 0.2

[train]
epochs = 60
batch_size = 16
lr = 0.003
eval_every_epochs = 20
checkpoint_every_steps = 5
log_every = 5
seed = 7
progress = false
resume = true   # the same command continues an interrupted run
# The recipe replaces out_dir with --out; it is here only because TrainConfig refuses
# resume=true without an out_dir at validation time (see test_resume_needs_no_out_dir_key).
out_dir = "{run_dir}"

[eval]
ks = [5, 10]
"""


def write_tiny_dataset(root: Path) -> Path:
    """Users walk the catalogue in steps of 1 or 2: a pattern SASRec can learn."""
    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    for user in range(USERS):
        position, step = int(rng.integers(ITEMS)), 1 + user % 2
        for t in range(PER_USER):
            users.append(f"u{user}")
            items.append(f"i{(position + step * t) % ITEMS}")
            times.append(1_000 * t + user)
    path = root / "log.csv"
    pl.DataFrame({"user_id": users, "item_id": items, "timestamp": times}).write_csv(path)
    return prepare_dataset(path, root / "prepared").path  # type: ignore[return-value]


def checkpoint_step(run_dir: Path) -> int | None:
    state = run_dir / "checkpoints" / "last" / "trainer_state.json"
    try:
        return int(json.loads(state.read_text())["step"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None  # not written yet (the directory appears atomically, but be safe)


def start_training(config: Path, run_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from onerec.cli import main; main()",
            "train",
            str(config),
            "--out",
            str(run_dir),
            "--threads",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_kill_9_then_rerun_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    dataset = write_tiny_dataset(tmp_path)
    crashed = tmp_path / "crashed"
    config = tmp_path / "tiny_sasrec.toml"
    config.write_text(CONFIG.format(dataset=dataset, run_dir=crashed))

    # The uninterrupted reference run, in parallel (two cores).
    clean = tmp_path / "clean"
    reference = start_training(config, clean)

    # 1. Start, wait for a checkpoint past the first epoch end (step 3) — step 5 is saved
    # mid-epoch, so the resume must skip the batches already consumed — then SIGKILL.
    process = start_training(config, crashed)
    deadline = time.monotonic() + 180
    step = None
    while time.monotonic() < deadline and process.poll() is None:
        step = checkpoint_step(crashed)
        if step is not None and step >= 5:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    output = process.communicate(timeout=30)[0]
    assert process.returncode == -signal.SIGKILL, f"training ended before the kill:\n{output}"
    assert step is not None and step >= 5, output
    assert not (crashed / "metrics.json").exists(), "the killed run must not have finished"
    killed_at = checkpoint_step(crashed)
    assert killed_at is not None
    log_lines_before = (crashed / "metrics.jsonl").read_text().splitlines()

    # 2. The same command again: it resumes from checkpoints/last and finishes.
    resumed = run_cli_process(
        ["train", str(config), "--out", str(crashed), "--threads", "1"], tmp_path
    )
    assert resumed.code == 0, resumed.output
    new_records = [
        json.loads(line)
        for line in (crashed / "metrics.jsonl").read_text().splitlines()[len(log_lines_before) :]
    ]
    train_steps = [r["step"] for r in new_records if r["kind"] == "train"]
    assert train_steps and min(train_steps) > killed_at, "the rerun continued, it did not restart"

    # 3. The run that was never interrupted.
    reference_output = reference.communicate(timeout=240)[0]
    assert reference.returncode == 0, reference_output

    got = json.loads((crashed / "metrics.json").read_text())
    want = json.loads((clean / "metrics.json").read_text())
    assert killed_at < want["meta"]["final_step"], "the kill came before the end of training"
    assert got["meta"]["final_step"] == want["meta"]["final_step"]
    assert got["meta"]["best_step"] == want["meta"]["best_step"]
    for split in ("valid", "test"):
        assert set(got["metrics"][split]) == set(want["metrics"][split])
        for key, value in want["metrics"][split].items():
            assert got["metrics"][split][key] == pytest.approx(value, abs=1e-6), (split, key)
    # Not trivially equal: the model learned something.
    assert want["metrics"]["test"]["recall@10"] > 0.2


def test_resume_needs_no_out_dir_key(tmp_path: Path) -> None:
    from onerec.baselines.sasrec_recipe import SASRecRunConfig

    SASRecRunConfig.model_validate(
        {"task": "sasrec", "data": {"dataset": "x"}, "train": {"resume": True}}
    )
