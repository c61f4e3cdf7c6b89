"""onerec.serve: the HTTP service (FastAPI + uvicorn) over a service bundle.

- :func:`build_bundle` assembles a bundle directory from trained parts (layout:
  :mod:`onerec.serve.layout`); :func:`load_bundle` reads one.
- :func:`create_app` builds the FastAPI app; ``onerec serve MODEL_DIR`` runs it with uvicorn.
"""

from onerec.serve.app import create_app
from onerec.serve.bundle import SemanticIds, build_bundle, read_generator_config
from onerec.serve.config import ServeConfig
from onerec.serve.loader import ServiceBundle, load_bundle

__all__ = [
    "SemanticIds",
    "ServeConfig",
    "ServiceBundle",
    "build_bundle",
    "create_app",
    "load_bundle",
    "read_generator_config",
]
