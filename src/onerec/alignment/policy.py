"""The generator as an IPA policy: candidate generation, sequence log-probabilities, NTP loss.

:class:`SessionPolicy` is what :func:`onerec.alignment.ipa.run_ipa` needs from a policy;
:class:`GeneratorPolicy` implements it for :class:`onerec.model.OneRecGenerator` with the
trie-constrained beam search of :mod:`onerec.generation` (the N best beams are the candidates).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from onerec.generation import TrieTensors, generate_session
from onerec.model.batching import (
    PAD,
    CodeLookup,
    GeneratorBatches,
    collate_histories,
    pad_histories,
)
from onerec.model.generator import OneRecGenerator
from onerec.model.loss import generator_loss
from onerec.tokenizer.trie import PrefixTrie


class SessionPolicy(Protocol):
    """A generative policy over sessions of ``session_items`` items."""

    session_items: int

    def generate(self, model: nn.Module, users: np.ndarray, num_candidates: int) -> np.ndarray:
        """``[U, N, m]`` candidate sessions (item indices, ``-1`` = dead beam)."""
        ...

    def history_tensors(self, users: np.ndarray) -> dict[str, torch.Tensor]:
        """Conditioning inputs of ``users`` (CPU tensors, batched along dim 0)."""
        ...

    def session_tensors(self, sessions: np.ndarray, prefix: str) -> dict[str, torch.Tensor]:
        """``[B, m]`` sessions as tensors, keys prefixed with ``prefix``."""
        ...

    def logps(self, model: nn.Module, batch: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
        """``[B]`` summed log-probabilities of the ``prefix`` sessions given the histories."""
        ...

    def ntp_batches(self, epoch: int) -> Iterable[Any]:
        """Batches of the normal (next-token) training data for ``epoch``."""
        ...

    def ntp_loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Next-token loss of one of those batches."""
        ...


class GeneratorPolicy:
    """:class:`SessionPolicy` for the OneRec generator.

    Args:
        item_codes: ``[num_items, C]`` semantic IDs (the tokenizer's ``codes``).
        trie: the tokenizer's trie (constrains generation to real items).
        histories: per user index, the positive items in time order (conditioning).
        session_items: m, items per generated session.
        beam_width: beams kept by the search (at least the number of candidates).
        ntp_data: the generator's training batches (``None``: no NTP term available).
        exclude_history: never generate an item the user already has in the history.
    """

    def __init__(
        self,
        item_codes: np.ndarray,
        trie: PrefixTrie | TrieTensors,
        histories: Sequence[np.ndarray],
        session_items: int,
        beam_width: int,
        ntp_data: GeneratorBatches | None = None,
        exclude_history: bool = True,
        aux_loss_weight: float = 0.01,
        generate_batch_size: int = 256,
        max_history: int = 20,
    ) -> None:
        self.lookup = CodeLookup(item_codes)
        self.trie = trie
        self.histories, _ = pad_histories(histories, max_history)  # [U, H] left-padded with PAD
        self.session_items = session_items
        self.beam_width = beam_width
        self.ntp_data = ntp_data
        self.exclude_history = exclude_history
        self.aux_loss_weight = aux_loss_weight
        self.generate_batch_size = generate_batch_size

    def history_tensors(self, users: np.ndarray) -> dict[str, torch.Tensor]:
        codes, mask = collate_histories(self.histories[users], self.lookup)
        return {
            "history_codes": codes,
            "history_mask": mask,
            "history_items": torch.from_numpy(self.histories[users]),
        }

    def session_tensors(self, sessions: np.ndarray, prefix: str) -> dict[str, torch.Tensor]:
        items = torch.from_numpy(np.ascontiguousarray(sessions, dtype=np.int64))
        items = torch.where(items < 0, torch.full_like(items, PAD), items)
        return {f"{prefix}_codes": self.lookup(items), f"{prefix}_mask": items != PAD}

    def logps(self, model: nn.Module, batch: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
        assert isinstance(model, OneRecGenerator)
        return model.sequence_logprob(
            batch["history_codes"],
            batch["history_mask"],
            batch[f"{prefix}_codes"],
            batch[f"{prefix}_mask"],
        )

    @torch.no_grad()
    def generate(self, model: nn.Module, users: np.ndarray, num_candidates: int) -> np.ndarray:
        assert isinstance(model, OneRecGenerator)
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        trie = (
            self.trie
            if isinstance(self.trie, TrieTensors)
            else TrieTensors.from_trie(self.trie, device)
        )
        out = np.full((len(users), num_candidates, self.session_items), -1, dtype=np.int64)
        for start in range(0, len(users), self.generate_batch_size):
            part = users[start : start + self.generate_batch_size]
            inputs = self.history_tensors(part)
            exclude = inputs["history_items"].to(device) if self.exclude_history else None
            result = generate_session(
                model,
                inputs["history_codes"].to(device),
                inputs["history_mask"].to(device),
                trie,
                self.session_items,
                max(self.beam_width, num_candidates),
                num_candidates,
                exclude_items=exclude,
            )
            found = result.items.cpu().numpy()  # [u, n<=N, m]
            out[start : start + len(part), : found.shape[1]] = found
        model.train(was_training)
        return out

    def ntp_batches(self, epoch: int) -> Iterable[Any]:
        if self.ntp_data is None:
            return []
        return self.ntp_data.for_epoch(epoch)

    def ntp_loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        assert isinstance(model, OneRecGenerator)
        return generator_loss(model, batch, self.aux_loss_weight).loss
