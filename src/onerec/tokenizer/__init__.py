"""onerec.tokenizer."""
