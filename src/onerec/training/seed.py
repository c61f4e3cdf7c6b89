"""Seeding and RNG-state capture, so runs reproduce and resumed runs continue exactly."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """A per-epoch seed derived from (run seed, epoch): data order depends on nothing else.

    Used for shuffling so that a run resumed in epoch ``e`` sees the same order as an
    uninterrupted run, whatever the global RNG state is.
    """
    # Large odd multiplier keeps (seed, epoch) pairs from colliding for realistic values.
    return (seed * 1_000_003 + epoch * 7_919 + 17) % (2**63 - 1)


def capture_rng_state() -> dict[str, Any]:
    """All global RNG states as JSON-native values (bytes as hex strings, arrays as lists)."""
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state().numpy().tobytes().hex(),
        "numpy": {
            "name": str(np_name),
            "keys": [int(k) for k in np_keys],
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss": py_gauss},
        "cuda": [],
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.numpy().tobytes().hex() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(_hex_to_byte_tensor(state["torch"]))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np.asarray(np_state["keys"], dtype=np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(py_state["internal"]), py_state["gauss"]))
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available():
        # A checkpoint from a machine with more GPUs restores only the devices present here.
        count = min(len(cuda_states), torch.cuda.device_count())
        torch.cuda.set_rng_state_all([_hex_to_byte_tensor(s) for s in cuda_states[:count]])


def _hex_to_byte_tensor(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(bytes.fromhex(text)), dtype=torch.uint8).clone()
