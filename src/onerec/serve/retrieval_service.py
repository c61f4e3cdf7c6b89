"""``ConditionedRetrieval``: CRM top-k for a known user (any strategy) or an explicit history.

Known users go through :class:`onerec.retrieval.artifact.Retriever` (its stored history, its
per-user condition statistics for ``max`` / ``mean``, its ``tdm`` request counter, its
seen-items exclusion). An explicit history builds the user vector from that history with a
``fixed`` condition the caller gives: ``max``/``mean``/``tdm`` are per-user strategies and are
refused for anonymous histories rather than silently replaced.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from onerec.retrieval.artifact import Retriever
from onerec.retrieval.condition import ConditionError
from onerec.retrieval.strategies import Strategy
from onerec.serve.api_errors import ApiError


@dataclass
class RetrievedItems:
    """One retrieve answer (item indices; the app maps them to external ids)."""

    items: list[int]
    scores: list[float]
    strategy: str  # "none" for an unconditioned model
    condition_position: float | None
    condition_value: float | None


class ConditionedRetrieval:
    """The CRM model directory of a bundle, loaded once."""

    def __init__(self, directory: Path, device: torch.device) -> None:
        self.retriever = Retriever(directory, device=str(device))
        self.config = self.retriever.config
        self.num_items = self.config.num_items
        self._lock = threading.Lock()

    @property
    def conditioned(self) -> bool:
        return self.retriever.conditioned

    def for_user(
        self,
        user_id: str,
        k: int,
        strategy: Strategy,
        condition: float | None,
        tdm_values: Sequence[float] | None,
        exclude_seen: bool,
    ) -> RetrievedItems:
        """Top-``k`` for a user the model was trained with."""
        if self.conditioned and strategy == "fixed" and condition is None:
            raise _needs_condition()
        with self._lock, torch.inference_mode():
            try:
                result = self.retriever.retrieve(
                    user_id, k, strategy, condition, tdm_values, exclude_seen
                )
            except ConditionError as exc:
                raise ApiError(422, "invalid_condition", str(exc)) from None
        return RetrievedItems(
            items=result.item_idx,
            scores=result.scores,
            strategy=result.strategy,
            condition_position=result.condition_position,
            condition_value=result.condition_value,
        )

    def for_history(
        self,
        history: np.ndarray,  # [n] item_idx, oldest first
        k: int,
        strategy: Strategy,
        condition: float | None,
        exclude: np.ndarray | None,
    ) -> RetrievedItems:
        """Top-``k`` for an explicit history (condition strategy ``fixed`` only)."""
        position: float | None = None
        if self.conditioned:
            if strategy != "fixed":
                raise ApiError(
                    422,
                    "strategy_needs_user",
                    f"strategy {strategy!r} is served for known users (user_id); with an "
                    "explicit history send strategy 'fixed' and a condition value",
                )
            if condition is None:
                raise _needs_condition()
            try:
                position = self.retriever.planner.position(None, "fixed", condition)
            except ConditionError as exc:
                raise ApiError(422, "invalid_condition", str(exc)) from None
        cfg = self.config
        kept = np.asarray(history, dtype=np.int64)[-cfg.max_history :]
        padded = np.full((1, cfg.max_history), cfg.num_items, dtype=np.int64)  # right-aligned
        padded[0, cfg.max_history - len(kept) :] = kept
        retriever = self.retriever
        with self._lock, torch.inference_mode():
            history_t = torch.as_tensor(padded, device=retriever.device)  # [1, L]
            cond = None if position is None else torch.tensor([position], device=retriever.device)
            query = retriever.model.user_vectors(history_t, cond, None).cpu().numpy()[0]  # [d]
            scores, items = retriever.index.search_excluding(query, k, exclude)
        return RetrievedItems(
            items=[int(i) for i in items],
            scores=[float(s) / cfg.temperature for s in scores],
            strategy="fixed" if self.conditioned else "none",
            condition_position=position,
            condition_value=condition if self.conditioned else None,
        )


def _needs_condition() -> ApiError:
    return ApiError(
        422,
        "condition_required",
        "strategy 'fixed' needs a condition value (e.g. \"condition\": 30000 for 30 s of play "
        "time); or, for a known user, use strategy max | mean | tdm",
    )
