"""onerec.tokenizer: semantic IDs — balanced residual k-means, unique IDs, prefix trie,
diagnostics, and item-embedding builders (text, collaborative, user-given matrices)."""

from onerec.tokenizer.config import EmbeddingSourceConfig, TokenizerConfig, TokenizeRunConfig
from onerec.tokenizer.diagnostics import compute_diagnostics, diagnostics_table
from onerec.tokenizer.embeddings import (
    collaborative_embeddings,
    item_texts,
    load_embedding_matrix,
    read_embedding_file,
    text_embeddings,
)
from onerec.tokenizer.kmeans import balanced_assign, fit_residual_kmeans
from onerec.tokenizer.semantic import FORMAT_VERSION, SemanticTokenizer, disambiguate
from onerec.tokenizer.trie import PrefixTrie

__all__ = [
    "FORMAT_VERSION",
    "EmbeddingSourceConfig",
    "PrefixTrie",
    "SemanticTokenizer",
    "TokenizeRunConfig",
    "TokenizerConfig",
    "balanced_assign",
    "collaborative_embeddings",
    "compute_diagnostics",
    "diagnostics_table",
    "disambiguate",
    "fit_residual_kmeans",
    "item_texts",
    "load_embedding_matrix",
    "read_embedding_file",
    "text_embeddings",
]
