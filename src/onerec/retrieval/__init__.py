"""onerec.retrieval."""
