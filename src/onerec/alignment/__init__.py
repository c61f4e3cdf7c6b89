"""onerec.alignment."""
