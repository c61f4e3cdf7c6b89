"""onerec.training."""
