"""Prefix trie over the catalogue's semantic-ID tuples, for constrained decoding.

Every item has a unique code tuple ``(c_0, …, c_{L-1})``. The trie's nodes are the distinct
prefixes; node 0 is the empty prefix (root). Two views of the same structure:

* a plain reference view, ``allowed_next(prefix)`` / ``lookup(codes)``, walking a dict per node;
* a dense per-level view for batched masking, ``level_tables``: for level ``l``,
  ``level_tables[l]`` is an ``int64`` array ``[num_nodes_at_level_l, codebook_sizes[l]]`` whose
  entry is the *local* index (at level ``l+1``) of the child reached by that code, or ``-1``
  when the code is not a valid continuation. Level-0 has a single node (the root). At the last
  level the entry is the ``item_idx`` the full tuple names.

Beam search keeps, per beam, the local node index at the current level and gathers
``level_tables[l][node]`` to mask logits in one tensor op — no Python per beam or per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PrefixTrie:
    """Trie of valid code tuples. Build with :meth:`from_codes`."""

    codebook_sizes: tuple[int, ...]
    level_tables: tuple[np.ndarray, ...]  # level l: [nodes_at_level_l, codebook_sizes[l]]

    @property
    def num_levels(self) -> int:
        return len(self.codebook_sizes)

    @classmethod
    def from_codes(
        cls, codes: np.ndarray, codebook_sizes: list[int] | tuple[int, ...]
    ) -> PrefixTrie:
        """Build from ``codes[item_idx] = (c_0, …, c_{L-1})``; tuples must be unique.

        Raises ``ValueError`` on duplicates or codes outside ``[0, codebook_sizes[l])``.
        """
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[1] != len(codebook_sizes):
            raise ValueError(
                f"codes must be [num_items, {len(codebook_sizes)}], got shape {codes.shape}"
            )
        sizes = tuple(int(s) for s in codebook_sizes)
        for level, size in enumerate(sizes):
            col = codes[:, level]
            if len(col) and (col.min() < 0 or col.max() >= size):
                raise ValueError(f"level {level} codes must lie in [0, {size})")
        if len(np.unique(codes, axis=0)) != len(codes):
            raise ValueError("code tuples are not unique; disambiguate before building the trie")

        tables: list[np.ndarray] = []
        # node_of_item[i] = local node index of item i's prefix at the current level.
        node_of_item = np.zeros(len(codes), dtype=np.int64)
        num_nodes = 1
        for level, size in enumerate(sizes):
            table = np.full((num_nodes, size), -1, dtype=np.int64)
            if level == len(sizes) - 1:
                table[node_of_item, codes[:, level]] = np.arange(len(codes))
            else:
                # Children are numbered by the distinct (parent node, code) pairs.
                keys = node_of_item * size + codes[:, level]
                unique_keys, child_of_item = np.unique(keys, return_inverse=True)
                table[unique_keys // size, unique_keys % size] = np.arange(len(unique_keys))
                node_of_item = child_of_item.reshape(-1)
                num_nodes = len(unique_keys)
            tables.append(table)
        return cls(codebook_sizes=sizes, level_tables=tuple(tables))

    # -- reference view ---------------------------------------------------------------------
    def _walk(self, prefix: tuple[int, ...] | list[int]) -> int | None:
        node = 0
        for level, code in enumerate(prefix):
            if level >= self.num_levels - 1 or not 0 <= code < self.codebook_sizes[level]:
                return None
            node = int(self.level_tables[level][node, code])
            if node < 0:
                return None
        return node

    def allowed_next(self, prefix: tuple[int, ...] | list[int]) -> np.ndarray:
        """Codes that may follow ``prefix`` (sorted). Empty for invalid or complete prefixes."""
        level = len(prefix)
        if level >= self.num_levels:
            return np.empty(0, dtype=np.int64)
        node = self._walk(prefix)
        if node is None:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(self.level_tables[level][node] >= 0)

    def lookup(self, codes: tuple[int, ...] | list[int]) -> int | None:
        """The ``item_idx`` a full code tuple names, or ``None`` if it is not in the catalogue."""
        if len(codes) != self.num_levels:
            return None
        node = self._walk(codes[:-1])
        last = codes[-1]
        if node is None or not 0 <= last < self.codebook_sizes[-1]:
            return None
        item = int(self.level_tables[-1][node, last])
        return item if item >= 0 else None

    # -- dense views ------------------------------------------------------------------------
    @property
    def num_items(self) -> int:
        """Number of complete tuples (items) in the trie."""
        return int((self.level_tables[-1] >= 0).sum())

    def transition_table(self) -> tuple[np.ndarray, np.ndarray]:
        """All levels in one dense table: ``(table [total_nodes, max_K], level_offsets [L+1])``.

        Row ``level_offsets[l] + n`` is node ``n`` of level ``l`` (``level_tables[l][n]``). Its
        entry for code ``c`` is the *global* row of the child node for ``l < L-1``, the
        ``item_idx`` at the last level, and ``-1`` for an invalid continuation or for a code at
        or beyond that level's codebook size. One gather ``table[row]`` masks a whole batch of
        beams whatever their level.
        """
        counts = [len(t) for t in self.level_tables]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        width = max(self.codebook_sizes)
        table = np.full((int(offsets[-1]), width), -1, dtype=np.int64)
        for level, level_table in enumerate(self.level_tables):
            block = level_table.copy()
            if level < self.num_levels - 1:
                # local child index at level+1 -> global row
                block[block >= 0] += offsets[level + 1]
            table[offsets[level] : offsets[level + 1], : level_table.shape[1]] = block
        return table, offsets

    def equals(self, other: PrefixTrie) -> bool:
        """True when both tries hold the same codebook sizes and tables."""
        return self.codebook_sizes == other.codebook_sizes and all(
            a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(self.level_tables, other.level_tables, strict=True)
        )

    # -- persistence ------------------------------------------------------------------------
    def tensors(self) -> dict[str, np.ndarray]:
        """Arrays to store (e.g. with safetensors); inverse of :meth:`from_tensors`."""
        out = {f"trie_level_{i}": t for i, t in enumerate(self.level_tables)}
        out["trie_codebook_sizes"] = np.asarray(self.codebook_sizes, dtype=np.int64)
        return out

    @classmethod
    def from_tensors(cls, arrays: dict[str, np.ndarray]) -> PrefixTrie:
        sizes = tuple(int(s) for s in arrays["trie_codebook_sizes"])
        tables = tuple(
            np.asarray(arrays[f"trie_level_{i}"], dtype=np.int64) for i in range(len(sizes))
        )
        return cls(codebook_sizes=sizes, level_tables=tables)
