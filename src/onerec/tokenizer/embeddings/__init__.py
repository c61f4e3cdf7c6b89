"""Item-embedding builders for the tokenizer: text (MiniLM), collaborative (PPMI + SVD), files."""

from onerec.tokenizer.embeddings.collab import collaborative_embeddings, cooccurrence_counts
from onerec.tokenizer.embeddings.matrix import load_embedding_matrix, read_embedding_file
from onerec.tokenizer.embeddings.text import MODEL_NAME, cache_key, item_texts, text_embeddings

__all__ = [
    "MODEL_NAME",
    "cache_key",
    "collaborative_embeddings",
    "cooccurrence_counts",
    "item_texts",
    "load_embedding_matrix",
    "read_embedding_file",
    "text_embeddings",
]
