"""The ``onerec`` command line. Each verb lives in its own module under ``onerec.cli``."""

import os

# torch and faiss each start an OpenMP pool; with the default active wait their idle threads
# spin and steal the cores the other pool needs (5x slower k-means on a 2-core machine).
# Set before torch is imported; a value the user exported wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from onerec.cli.app import app, main  # noqa: E402

__all__ = ["app", "main"]
