"""onerec.sim."""
