"""The saved CRM model directory and the :class:`Retriever` that serves from it.

Layout (written atomically as one directory)::

    config.json            {"kind": "crm", "model": TwoTowerConfig, "run": CRMTrainConfig, ...}
    model.safetensors      weights and side-data buffers
    condition.json         the fitted ConditionNormalizer
    item_index.faiss/.json the ANN index over item vectors
    user_state.safetensors per user: last max_history items, condition max / mean positions
    ids.json               external user_id / item_id strings, by dense index
    summary.json           training and evaluation figures
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from onerec.errors import CheckpointError, OnerecError
from onerec.io import atomic_dir, atomic_write_json, read_json
from onerec.retrieval.condition import ConditionNormalizer
from onerec.retrieval.eval_control import masked_topk, user_vectors_for
from onerec.retrieval.examples import histories_ending_at
from onerec.retrieval.index import ItemIndex
from onerec.retrieval.mixture import level_prior, mixture_log_probs
from onerec.retrieval.model import CRMModel, TwoTowerConfig
from onerec.retrieval.strategies import ConditionPlanner, Strategy, user_condition_stats
from onerec.training import load_state_into, resolve_device
from onerec.training.checkpoint import MODEL_FILE, state_dict_to_safetensors

if TYPE_CHECKING:
    from onerec.retrieval.train import CRMTrainConfig, RetrievalData

KIND = "crm"


def save_retrieval_model(
    out_dir: str | Path,
    model: CRMModel,
    cfg: CRMTrainConfig,
    data: RetrievalData,
    index: ItemIndex,
    summary: dict[str, Any],
) -> Path:
    """Write the model directory (atomic: a failure leaves any previous one intact)."""
    out_dir = Path(out_dir)
    inter = data.interactions
    user = inter["user_idx"].to_numpy().astype(np.int64)
    item = inter["item_idx"].to_numpy().astype(np.int64)
    num_users = int(data.dataset.num_users)
    history, seen_items, seen_offsets, cmax, cmean = serving_user_state(
        user, item, data.raw_condition, data.normalizer, num_users, model.config
    )
    with atomic_dir(out_dir) as tmp:
        (tmp / MODEL_FILE).write_bytes(state_dict_to_safetensors(model.state_dict()))
        atomic_write_json(
            tmp / "config.json",
            {
                "kind": KIND,
                "model": model.config.model_dump(),
                "run": cfg.model_dump(),
                "condition_target": cfg.data.condition_target,
            },
        )
        atomic_write_json(tmp / "condition.json", data.normalizer.to_dict())
        index.save(tmp)
        save_file(
            {
                "history": history,
                "seen_items": seen_items,
                "seen_offsets": seen_offsets,
                "condition_max": cmax,
                "condition_mean": cmean,
            },
            str(tmp / "user_state.safetensors"),
        )
        atomic_write_json(
            tmp / "ids.json",
            {
                "user_id": [str(u) for u in data.dataset.users["user_id"].to_list()],
                "item_id": [str(i) for i in data.dataset.items["item_id"].to_list()],
            },
        )
        atomic_write_json(tmp / "summary.json", summary)
    return out_dir


def serving_user_state(
    user: np.ndarray,
    item: np.ndarray,
    raw_condition: np.ndarray,
    normalizer: ConditionNormalizer,
    num_users: int,
    config: TwoTowerConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per user: last ``max_history`` items, every seen item (CSR), condition max and mean.

    Returns ``history [U, L]``, ``seen_items [S]`` with ``seen_offsets [U + 1]`` (user u's
    distinct items are ``seen_items[offsets[u]:offsets[u + 1]]``), ``condition_max [U]`` and
    ``condition_mean [U]`` (positions, ``NaN`` when the user has no logged condition).
    """
    history = np.full((num_users, config.max_history), config.num_items, dtype=np.int64)
    if len(user):
        last_row = np.flatnonzero(np.append(user[1:] != user[:-1], True))  # each user's last row
        history[user[last_row]] = histories_ending_at(
            user, item, last_row + 1, config.max_history, config.num_items
        )
    positions = np.full(len(raw_condition), np.nan)
    known = np.isfinite(raw_condition)
    positions[known] = normalizer.encode(raw_condition[known])
    cmax, cmean = user_condition_stats(user, positions, num_users)
    pairs = np.unique(user * (config.num_items + 1) + item)  # distinct (user, item), sorted
    seen_users, seen_items = np.divmod(pairs, config.num_items + 1)
    offsets = np.searchsorted(seen_users, np.arange(num_users + 1)).astype(np.int64)
    return history, seen_items.astype(np.int64), offsets, cmax, cmean


@dataclass
class RetrievalResult:
    """One request's answer."""

    user_id: str
    item_ids: list[str]
    item_idx: list[int]
    scores: list[float]
    strategy: str
    condition_position: float | None
    condition_value: float | None  # raw units at that position (None: unconditioned)


class Retriever:
    """Loads a model directory and answers ``retrieve(user, k, strategy, condition)``."""

    def __init__(self, directory: str | Path, device: str = "auto") -> None:
        directory = Path(directory)
        if (
            not (directory / "config.json").is_file()
            and (directory / "model" / "config.json").is_file()
        ):
            directory = directory / "model"  # the run directory was given
        config_path = directory / "config.json"
        if not config_path.is_file():
            raise CheckpointError(
                f"{directory} is not a retrieval model directory (no config.json); "
                "train one with `onerec train-retrieval CONFIG`"
            )
        config = read_json(config_path)
        if config.get("kind") != KIND:
            raise CheckpointError(f"{directory} holds a {config.get('kind')!r} model, not a CRM")
        self.directory = directory
        self.config = TwoTowerConfig.model_validate(config["model"])
        self.condition_target = str(config.get("condition_target", ""))
        self.device = resolve_device(device)
        self.model = CRMModel(self.config)
        load_state_into(self.model, directory)
        self.model.to(self.device).eval()
        self.normalizer = ConditionNormalizer.from_dict(read_json(directory / "condition.json"))
        self.index = ItemIndex.load(directory)
        state = load_file(str(directory / "user_state.safetensors"))
        self.history = state["history"]
        self.seen_items, self.seen_offsets = state["seen_items"], state["seen_offsets"]
        ids = read_json(directory / "ids.json")
        self.user_ids: list[str] = ids["user_id"]
        self.item_ids: list[str] = ids["item_id"]
        self._user_lookup = {u: i for i, u in enumerate(self.user_ids)}
        self.planner = ConditionPlanner(
            self.normalizer, state["condition_max"], state["condition_mean"]
        )
        self._item_vectors: torch.Tensor | None = None  # built on the first ``mix`` request

    @property
    def conditioned(self) -> bool:
        return self.config.condition != "none"

    def user_index(self, user_id: str | int) -> int:
        """Dense index of an external user id (raises a one-line error when unknown)."""
        key = str(user_id)
        if key not in self._user_lookup:
            raise OnerecError(
                f"unknown user {key!r}: not among the {len(self.user_ids)} users this model "
                "was trained with (ids are the data set's user_id strings)"
            )
        return self._user_lookup[key]

    def seen(self, user_idx: int) -> np.ndarray:
        """Every item the user interacted with in the training log."""
        return self.seen_items[self.seen_offsets[user_idx] : self.seen_offsets[user_idx + 1]]

    @torch.no_grad()
    def retrieve(
        self,
        user_id: str | int,
        k: int = 50,
        strategy: Strategy = "fixed",
        condition: float | None = None,
        tdm_values: Sequence[float] | None = None,
        exclude_seen: bool = True,
    ) -> RetrievalResult:
        """Top-``k`` items for a user under a condition strategy, through the ANN index."""
        user_idx = self.user_index(user_id)
        if self.conditioned and strategy == "mix":
            return self._retrieve_mix(user_id, user_idx, k, exclude_seen)
        position: float | None = None
        if self.conditioned:
            position = self.planner.position(user_idx, strategy, condition, tdm_values)
        history = torch.as_tensor(self.history[user_idx : user_idx + 1], device=self.device)
        cond = None if position is None else torch.tensor([position], device=self.device)
        users = torch.tensor([user_idx], device=self.device)
        query = self.model.user_vectors(history, cond, users).cpu().numpy()[0]
        exclude = self.seen(user_idx) if exclude_seen else None
        scores, items = self.index.search_excluding(query, k, exclude)
        return RetrievalResult(
            user_id=str(user_id),
            item_ids=[self.item_ids[i] for i in items],
            item_idx=[int(i) for i in items],
            scores=[float(s) / self.config.temperature for s in scores],
            strategy=strategy if self.conditioned else "none",
            condition_position=position,
            condition_value=None if position is None else self._value_at(position),
        )

    def _retrieve_mix(
        self, user_id: str | int, user_idx: int, k: int, exclude_seen: bool
    ) -> RetrievalResult:
        """``mix``: rank the whole catalogue by ``log p(item | user)`` with the condition
        marginalised out. The per-level softmax needs every item's score, so this is exact search
        (``C · N · d`` multiply-adds per request: well under a millisecond for 10 levels × 10k
        items) and the ANN index is not used. Scores are the mixture log-probabilities."""
        positions, weights = level_prior(self.normalizer)
        levels = len(positions)
        queries = user_vectors_for(
            self.model,
            np.repeat(self.history[user_idx : user_idx + 1], levels, axis=0),
            positions,
            np.full(levels, user_idx),
        )  # [C, d]: the user under every condition level
        if self._item_vectors is None:
            self._item_vectors = self.model.all_item_vectors()  # [N, d], cached
        logits = (queries @ self._item_vectors.T / self.config.temperature).unsqueeze(1)
        scores = mixture_log_probs(logits, torch.as_tensor(weights, device=self.device))  # [1, N]
        exclude = [self.seen(user_idx) if exclude_seen else np.zeros(0, dtype=np.int64)]
        top = masked_topk(scores.clone(), exclude, k)[0]
        top = top[np.isfinite(scores[0, top].cpu().numpy())]  # fewer than k items left
        return RetrievalResult(
            user_id=str(user_id),
            item_ids=[self.item_ids[i] for i in top],
            item_idx=[int(i) for i in top],
            scores=[float(scores[0, i]) for i in top],
            strategy="mix",
            condition_position=None,
            condition_value=None,
        )

    def _value_at(self, position: float) -> float:
        """Representative raw value of a position (bucket: its median; continuous: exact)."""
        levels = max(1, self.normalizer.num_levels - 1)
        if self.normalizer.encoding == "continuous":
            return float(self.normalizer.value_at_quantile([position / levels])[0])
        edges = np.concatenate(
            [[self.normalizer.train_min], self.normalizer.bucket_edges, [self.normalizer.train_max]]
        )
        b = int(round(position))
        low_q, high_q = self.normalizer.quantile([edges[b], edges[b + 1]])
        return float(self.normalizer.value_at_quantile([(low_q + high_q) / 2])[0])
