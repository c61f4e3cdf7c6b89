"""Session generation: trie-constrained, KV-cached beam search and its plain reference."""

from onerec.generation.beam_search import (
    SearchResult,
    TrieTensors,
    beam_search,
    exclusion_mask,
    generate_session,
    search,
)
from onerec.generation.recommend import recommend_topk
from onerec.generation.reference import reference_beam_search

__all__ = [
    "SearchResult",
    "TrieTensors",
    "beam_search",
    "exclusion_mask",
    "generate_session",
    "recommend_topk",
    "reference_beam_search",
    "search",
]
