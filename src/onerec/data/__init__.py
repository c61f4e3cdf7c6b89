"""onerec.data."""
