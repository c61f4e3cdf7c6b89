"""onerec.eval."""
