"""onerec.model."""
