"""onerec.serve."""
