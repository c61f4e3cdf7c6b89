"""``SessionRecommender``: one user's history -> a session of m distinct items (OneRec generator).

Everything a request needs is built once at start-up: the model in eval mode on its device,
the item -> semantic-ID table as a tensor (``codes[item_idx]`` gathers a history's codes) and
the trie's level tables as tensors (:class:`onerec.generation.TrieTensors`). A request is
then: gather codes, encode, trie-constrained KV-cached beam search
(:func:`onerec.generation.search`); the search also splits the best session's log-probability
into per-item scores (the beam's score at each item boundary), so no second decoder pass is
needed (``tests/generation/test_beam_parity.py`` checks them against a teacher-forced pass).

Requests are served one at a time (a lock): on a few CPU cores two concurrent searches only
fight over the same cores, and one at a time keeps tail latency predictable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from onerec.generation import TrieTensors, exclusion_mask, search
from onerec.model import OneRecGenerator
from onerec.serve.api_errors import ApiError
from onerec.tokenizer.trie import PrefixTrie


@dataclass
class GeneratedSession:
    """The best session of one beam search."""

    items: list[int]  # item_idx, in generation order
    item_scores: list[float]  # log-probability of each item's codes given what precedes it
    session_score: float  # summed log-probability of the whole session (beam score)
    history_length: int  # items the encoder saw (after cutting to max_history)


class SessionRecommender:
    """Serves :class:`OneRecGenerator` beam search for one user per call."""

    def __init__(
        self,
        model: OneRecGenerator,
        codes: np.ndarray,  # [num_items, C] level-local codes
        trie: PrefixTrie,
        device: torch.device,
    ) -> None:
        config = model.config
        if codes.ndim != 2 or codes.shape[1] != config.num_code_levels:
            raise ValueError(
                f"semantic IDs have shape {codes.shape}; the generator expects "
                f"{config.num_code_levels} code levels"
            )
        self.model = model.to(device).eval()
        self.device = device
        self.codes = torch.as_tensor(codes, dtype=torch.long, device=device)  # [N, C]
        self.trie = TrieTensors.from_trie(trie, device)
        self.num_items = int(codes.shape[0])
        self.max_history = config.max_history
        self.max_session_items = config.max_session_items
        self.uses_user_ids = config.num_user_buckets > 0
        self.parameter_count = sum(p.numel() for p in model.parameters())
        self._lock = threading.Lock()

    def recommend(
        self,
        history: np.ndarray,  # [n] item_idx, oldest first
        session_items: int,
        beam_width: int,
        exclude: np.ndarray | None = None,  # item_idx never to recommend (e.g. the history)
        user_idx: int | None = None,
    ) -> GeneratedSession:
        """Beam-search the best session of ``session_items`` distinct items."""
        if session_items > self.max_session_items:
            raise ApiError(
                422,
                "m_too_large",
                f"m={session_items} exceeds this generator's max_session_items "
                f"({self.max_session_items}); ask for at most {self.max_session_items} items",
            )
        available = self.num_items - (0 if exclude is None else len(np.unique(exclude)))
        if available < session_items:
            raise ApiError(
                422,
                "not_enough_items",
                f"only {available} catalogue items remain after excluding the history; "
                f"ask for m <= {available} or set exclude_history to false",
            )
        kept = np.asarray(history, dtype=np.int64)[-self.max_history :]
        with self._lock, torch.inference_mode():
            return self._search(kept, session_items, beam_width, exclude, user_idx)

    def _search(
        self,
        history: np.ndarray,
        session_items: int,
        beam_width: int,
        exclude: np.ndarray | None,
        user_idx: int | None,
    ) -> GeneratedSession:
        device = self.device
        history_idx = torch.as_tensor(history, device=device)
        history_codes = self.codes[history_idx].unsqueeze(0)  # [1, S, C]
        history_mask = torch.ones(1, len(history), dtype=torch.bool, device=device)  # [1, S]
        user_ids = (
            torch.tensor([user_idx], device=device)
            if self.uses_user_ids and user_idx is not None
            else None
        )
        encoded = self.model.encode(history_codes, history_mask, user_ids)
        state = self.model.start_decoding(encoded)
        excluded = None
        if exclude is not None and len(exclude):
            excluded = exclusion_mask(
                torch.as_tensor(exclude, device=device).unsqueeze(0), self.num_items
            )
        result = search(self.model, state, self.trie, beam_width, session_items, excluded)
        best_score = float(result.scores[0, 0])
        items = result.items[0, 0]  # [m]
        if not np.isfinite(best_score) or bool((items < 0).any()):
            raise ApiError(
                422,
                "no_session",
                f"no session of {session_items} distinct items could be generated for this "
                "history under the exclusions; lower m or set exclude_history to false",
            )
        return GeneratedSession(
            items=[int(i) for i in items.tolist()],
            item_scores=[float(s) for s in result.item_scores[0, 0].tolist()],
            session_score=best_score,
            history_length=len(history),
        )
