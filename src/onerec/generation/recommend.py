"""Top-K recommendation for many users at once: histories in, ranked items out.

Users are sorted by history length before batching (then put back in order), so each batch's
encoder pads little; every batch is one trie-constrained beam search.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from rich.progress import Progress

from onerec.generation.beam_search import TrieTensors, beam_search
from onerec.model.batching import CodeLookup, collate_histories, pad_histories
from onerec.model.generator import OneRecGenerator
from onerec.tokenizer.trie import PrefixTrie


@torch.no_grad()
def recommend_topk(
    model: OneRecGenerator,
    histories: Sequence[np.ndarray],
    item_codes: np.ndarray,
    trie: PrefixTrie | TrieTensors,
    top_k: int = 10,
    beam_width: int = 20,
    batch_size: int = 256,
    exclude_history: bool = False,
    user_ids: np.ndarray | None = None,
    progress: bool = False,
    fast: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(items [U, top_k], scores [U, top_k])`` for every history (``-1`` / ``-inf`` = none).

    Histories are cut to the model's ``max_history`` most recent items. ``fast`` selects the
    decoding path of :func:`onerec.generation.search` (same results; ``False`` = module path).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    tensors = trie if isinstance(trie, TrieTensors) else TrieTensors.from_trie(trie, device)
    padded, lengths = pad_histories(histories, model.config.max_history)
    lookup = CodeLookup(item_codes)
    order = np.argsort(lengths, kind="stable")
    items_out = np.full((len(histories), top_k), -1, dtype=np.int64)
    scores_out = np.full((len(histories), top_k), -np.inf, dtype=np.float64)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("beam search", total=len(histories))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            history_codes, history_mask = collate_histories(padded[rows], lookup)
            exclude = None
            if exclude_history:
                # PAD slots are negative, which exclusion_mask ignores.
                exclude = torch.from_numpy(padded[rows]).to(device)
            users = None if user_ids is None else torch.as_tensor(user_ids[rows], device=device)
            items, scores = beam_search(
                model,
                history_codes.to(device),
                history_mask.to(device),
                tensors,
                beam_width,
                top_k,
                users,
                exclude,
                fast,
            )
            items_out[rows] = items.cpu().numpy()
            scores_out[rows] = scores.double().cpu().numpy()
            bar.advance(task, len(rows))
    model.train(was_training)
    return items_out, scores_out
