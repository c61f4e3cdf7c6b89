"""onerec.baselines."""
