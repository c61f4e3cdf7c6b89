"""onerec.generation."""
