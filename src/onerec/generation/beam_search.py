"""Trie-constrained, KV-cached beam search over users in a batch.

One search decodes ``m`` items per beam, level after level. At each step every beam's allowed
codes come from one gather, ``level_tables[level][node]`` (``-1`` = invalid, masked to
``-inf``); candidate scores are the beam's summed log-probability plus the level's
log-softmax; each user keeps its best ``beam_width`` candidates (one ``topk`` over
``[U, beams * codes]``). The self-attention KV cache is reordered by parent beam; the
cross-attention keys/values stay at one copy per user (see ``onerec.model.attention``).
At an item's last level the table gives the ``item_idx``: items excluded for the user (e.g.
the history) or already chosen earlier in the same beam's session are masked there, so a
session never repeats an item. After an item the decoder is fed its last code and ``[BOS]``.

Scores are model log-probabilities of the emitted codes (log-softmax over the level's whole
codebook, then invalid codes masked — not renormalised over the allowed set).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from onerec.model.attention import KVPair
from onerec.model.attention_decode import DecodeMemory
from onerec.model.generator import DecodingState, OneRecGenerator
from onerec.model.targets import BOS_TOKEN
from onerec.tokenizer.trie import PrefixTrie

NEG_INF = float("-inf")


@dataclass
class TrieTensors:
    """The trie's dense level tables as tensors on the search device."""

    tables: list[torch.Tensor]  # level l: [nodes_l, codebook_sizes[l]] long, -1 = invalid
    num_items: int

    @classmethod
    def from_trie(cls, trie: PrefixTrie, device: torch.device | str = "cpu") -> TrieTensors:
        tables = [torch.as_tensor(t, dtype=torch.long, device=device) for t in trie.level_tables]
        num_items = int(tables[-1].max()) + 1 if tables[-1].numel() else 0
        return cls(tables=tables, num_items=num_items)


@dataclass
class SearchResult:
    """Per user, the surviving beams best first."""

    items: torch.Tensor  # [U, R, m] long; -1 where the beam is dead (score -inf)
    scores: torch.Tensor  # [U, R] summed log-probabilities
    item_scores: torch.Tensor  # [U, R, m] each item's share (its codes' log-probs); sums to scores


def exclusion_mask(exclude_items: torch.Tensor, num_items: int) -> torch.Tensor:
    """``[U, X]`` item ids (``-1`` = none) -> bool ``[U, num_items]`` (True = excluded)."""
    users = exclude_items.shape[0]
    mask = torch.zeros(users, num_items + 1, dtype=torch.bool, device=exclude_items.device)
    rows = torch.where((exclude_items >= 0) & (exclude_items < num_items), exclude_items, num_items)
    mask.scatter_(1, rows, True)
    return mask[:, :num_items]


def _row_offsets(
    cache: dict[int, tuple[torch.Tensor, torch.Tensor]], user_rows: torch.Tensor, beams: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first row of each user [U, 1], owner user of each row [U*beams, 1])``, made once per
    beam count (it changes only after the first step)."""
    if beams not in cache:
        cache[beams] = (
            (user_rows * beams).unsqueeze(1),
            user_rows.repeat_interleave(beams).unsqueeze(1),
        )
    return cache[beams]


def _reorder(past: list[KVPair], parent: torch.Tensor) -> list[KVPair]:
    # Each beam inherits its parent's self-attention cache: [B, H, t, Dh] -> [B', H, t, Dh].
    return [(k.index_select(0, parent), v.index_select(0, parent)) for k, v in past]


@torch.no_grad()
def search(
    model: OneRecGenerator,
    state: DecodingState,
    trie: TrieTensors,
    beam_width: int,
    session_items: int = 1,
    excluded: torch.Tensor | None = None,  # [U, num_items] bool
    fast: bool = True,
) -> SearchResult:
    """Beam search ``session_items`` items for every user of ``state``.

    ``fast`` (eval mode only) decodes with :meth:`SessionDecoder.step` — a preallocated KV cache
    reordered once per step for all layers, matmul attention, the MoE without statistics;
    ``fast=False`` uses the module forward with a growing cache (the reference it is tested
    against, and the "before" of ``bench/bench_generator.py``). Same results either way.
    """
    if beam_width < 1:
        raise ValueError("beam_width must be at least 1")
    if session_items > model.config.max_session_items:
        raise ValueError(
            f"session_items {session_items} exceeds the model's max_session_items "
            f"{model.config.max_session_items}"
        )
    users = state.memory_mask.shape[0]
    device = state.memory_mask.device
    levels = model.config.num_code_levels
    token_base = [1 + offset for offset in model.config.code_offsets]  # code -> token id
    user_rows = torch.arange(users, device=device)
    # Allowed (not excluded) items, flat: row b's lookup is allowed[(b // beams) * items + item].
    flat_allowed = None if excluded is None else excluded.logical_not().reshape(-1)
    num_excludable = 0 if excluded is None else excluded.shape[1]
    row_base: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # beams -> per-row offsets
    beams = 1  # beams per user; all users always have the same number
    scores = torch.zeros(users, 1, device=device, dtype=state.memory_kv[0][0].dtype)
    node = torch.zeros(users, dtype=torch.long, device=device)  # local trie node per beam
    chosen = torch.zeros(users, 0, dtype=torch.long, device=device)  # items so far per beam
    boundary = scores.new_zeros(users, 0)  # beam score after each of its chosen items
    tokens = torch.full((users, 1), BOS_TOKEN, dtype=torch.long, device=device)
    past: list[KVPair] | None = None
    cache = memory = None
    heads = None
    if fast and not model.training:
        memory = DecodeMemory.from_projected(state.memory_kv, state.memory_mask)
        heads = model.decoder.level_heads()
        cache = model.decoder.new_cache(users, session_items * (levels + 1), scores.dtype, device)
    position = 0
    run = None
    for _item in range(session_items):
        for level in range(levels):
            if cache is not None and memory is not None:
                hidden = model.decoder.step(tokens, memory, cache, last_only=True)[:, -1]
            else:
                run = model.decode(tokens, state, past, position)
                hidden = run.hidden[:, -1]
            position += tokens.shape[1]
            if heads is not None:  # = model.level_logprobs, with the head sliced once
                logprobs = torch.log_softmax(
                    torch.addmm(heads[level][1], hidden, heads[level][0]), -1
                )
            else:
                logprobs = model.level_logprobs(hidden, level)  # [B, V]
            codes = logprobs.shape[1]
            child = trie.tables[level].index_select(0, node)  # [B, V], -1 = invalid
            valid = child >= 0
            if level == levels - 1:  # child is the item_idx
                item = child.clamp(min=0)
                if flat_allowed is not None:
                    valid &= flat_allowed[
                        _row_offsets(row_base, user_rows, beams)[1] * num_excludable + item
                    ]
                if chosen.shape[1]:
                    valid &= ~(item.unsqueeze(2) == chosen.unsqueeze(1)).any(dim=2)
            candidates = torch.where(valid, scores.reshape(-1, 1) + logprobs, NEG_INF)
            candidates = candidates.view(users, beams * codes)  # [U, G*V]
            keep = min(beam_width, beams * codes)
            scores, flat_index = torch.topk(candidates, keep, dim=1)  # [U, keep], best first
            first_row = _row_offsets(row_base, user_rows, beams)[0]  # [U, 1] = user * beams
            parent = (first_row + flat_index // codes).reshape(-1)  # [U*keep]
            code = (flat_index % codes).reshape(-1)
            next_node = child.view(users, beams * codes).gather(1, flat_index).reshape(-1)
            if cache is not None:
                cache.reorder(parent)
            elif run is not None:
                past = _reorder(run.self_kv, parent)
            chosen = chosen.index_select(0, parent)
            boundary = boundary.index_select(0, parent)
            beams = keep
            code_token = (code + token_base[level]).unsqueeze(1)  # [B, 1]
            if level < levels - 1:
                node = next_node.clamp(min=0)
                tokens = code_token
            else:
                chosen = torch.cat([chosen, next_node.unsqueeze(1)], dim=1)
                boundary = torch.cat([boundary, scores.reshape(-1, 1)], dim=1)
                node = torch.zeros_like(next_node)
                tokens = torch.cat([code_token, torch.full_like(code_token, BOS_TOKEN)], dim=1)
    items = chosen.view(users, beams, session_items)
    alive = torch.isfinite(scores).unsqueeze(2)  # [U, R, 1]
    items = torch.where(alive, items, torch.full_like(items, -1))
    cumulative = boundary.view(users, beams, session_items)
    item_scores = torch.diff(cumulative, dim=2, prepend=cumulative.new_zeros(users, beams, 1))
    item_scores = torch.where(alive, item_scores, torch.full_like(item_scores, NEG_INF))
    return SearchResult(items=items, scores=scores, item_scores=item_scores)


@torch.no_grad()
def beam_search(
    model: OneRecGenerator,
    history_codes: torch.Tensor,  # [U, S, C]
    history_mask: torch.Tensor,  # [U, S]
    trie: TrieTensors | PrefixTrie,
    beam_width: int,
    top_k: int,
    user_ids: torch.Tensor | None = None,
    exclude_items: torch.Tensor | None = None,  # [U, X] item ids, -1 = none
    fast: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``top_k`` distinct next items per user: ``(items [U, K], scores [U, K])``.

    ``beam_width >= top_k`` is required: the K results are the K best of the final beams
    (distinct code paths name distinct items). Missing results are ``-1`` / ``-inf``.
    ``fast`` selects the decoding path of :func:`search` (same results).
    """
    if beam_width < top_k:
        raise ValueError(f"beam_width {beam_width} must be at least top_k {top_k}")
    tensors = (
        trie if isinstance(trie, TrieTensors) else TrieTensors.from_trie(trie, history_codes.device)
    )
    state = model.start_decoding(model.encode(history_codes, history_mask, user_ids))
    excluded = None if exclude_items is None else exclusion_mask(exclude_items, tensors.num_items)
    result = search(model, state, tensors, beam_width, 1, excluded, fast)
    items = result.items[:, :top_k, 0]
    scores = result.scores[:, :top_k]
    if items.shape[1] < top_k:  # fewer valid items in the catalogue than K
        pad = top_k - items.shape[1]
        items = torch.cat([items, items.new_full((items.shape[0], pad), -1)], dim=1)
        scores = torch.cat([scores, scores.new_full((scores.shape[0], pad), NEG_INF)], dim=1)
    return items, scores


@torch.no_grad()
def generate_session(
    model: OneRecGenerator,
    history_codes: torch.Tensor,  # [U, S, C]
    history_mask: torch.Tensor,  # [U, S]
    trie: TrieTensors | PrefixTrie,
    session_items: int,
    beam_width: int,
    num_sessions: int = 1,
    user_ids: torch.Tensor | None = None,
    exclude_items: torch.Tensor | None = None,  # [U, X], e.g. the history
) -> SearchResult:
    """``num_sessions`` best sessions of ``session_items`` distinct items per user.

    Returns items ``[U, num_sessions, m]`` and their summed log-probabilities ``[U, num_sessions]``
    (``num_sessions <= beam_width``; e.g. the candidates IPA scores with the reward model).
    """
    if num_sessions > beam_width:
        raise ValueError(f"num_sessions {num_sessions} exceeds beam_width {beam_width}")
    tensors = (
        trie if isinstance(trie, TrieTensors) else TrieTensors.from_trie(trie, history_codes.device)
    )
    state = model.start_decoding(model.encode(history_codes, history_mask, user_ids))
    excluded = None if exclude_items is None else exclusion_mask(exclude_items, tensors.num_items)
    result = search(model, state, tensors, beam_width, session_items, excluded)
    return SearchResult(
        items=result.items[:, :num_sessions],
        scores=result.scores[:, :num_sessions],
        item_scores=result.item_scores[:, :num_sessions],
    )
