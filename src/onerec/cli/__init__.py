"""The ``onerec`` command line. Each verb lives in its own module under ``onerec.cli``."""

from onerec.cli.app import app, main

__all__ = ["app", "main"]
