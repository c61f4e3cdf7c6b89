"""onerec.reward."""
