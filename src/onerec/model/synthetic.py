"""Synthetic catalogues, histories and models for tests and benchmarks.

Random unique code tuples stand in for a fitted tokenizer, so the generator can be built, tested
and timed without the data or tokenizer stages.
"""

from __future__ import annotations

import numpy as np
import torch

from onerec.model import GeneratorConfig, OneRecGenerator
from onerec.tokenizer.trie import PrefixTrie


def random_catalogue(
    num_items: int, codebook_sizes: list[int], seed: int = 0
) -> tuple[np.ndarray, PrefixTrie]:
    """``num_items`` unique random code tuples and their trie."""
    rng = np.random.default_rng(seed)
    total = int(np.prod(codebook_sizes))
    if num_items > total:
        raise ValueError("more items than distinct code tuples")
    flat = rng.choice(total, size=num_items, replace=False)
    codes = np.stack(np.unravel_index(flat, codebook_sizes), axis=1).astype(np.int64)
    return codes, PrefixTrie.from_codes(codes, codebook_sizes)


def random_model(
    codebook_sizes: list[int],
    seed: int = 0,
    scale: float = 0.5,
    dtype: torch.dtype = torch.float64,
    **overrides: object,
) -> OneRecGenerator:
    """A tiny model in eval mode with large random weights (peaked, tie-free distributions)."""
    torch.manual_seed(seed)
    config = GeneratorConfig.named("tiny", codebook_sizes, dropout=0.0, **overrides)  # type: ignore[arg-type]
    model = OneRecGenerator(config).to(dtype).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0, scale)
    return model


def random_histories(
    codes: np.ndarray, users: int, max_len: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """Left-padded random histories: ``(history_codes [U, S, C], history_mask [U, S], items)``."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len + 1, size=users)
    item_lists = [rng.integers(0, len(codes), size=int(n)) for n in lengths]
    history_codes = torch.zeros(users, max_len, codes.shape[1], dtype=torch.long)
    history_mask = torch.zeros(users, max_len, dtype=torch.bool)
    for row, items in enumerate(item_lists):
        history_codes[row, max_len - len(items) :] = torch.as_tensor(codes[items])
        history_mask[row, max_len - len(items) :] = True
    return history_codes, history_mask, item_lists
