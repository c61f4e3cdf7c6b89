"""``ServeConfig``: the limits and run-time choices of the HTTP service.

The request schemas (``onerec.serve.schemas``) carry the hard ceilings that appear in the
OpenAPI document (``k ≤ 1000``, ``beam_width ≤ 256``, ``m ≤ 50``, history ≤ 1000 ids); the
values here may only tighten them, and the service checks them per request with a 422 that
names the configured limit.
"""

from __future__ import annotations

from pydantic import Field

from onerec.config import StrictModel

# Ceilings baked into the request schemas (and so into /docs).
HARD_MAX_HISTORY = 1000
HARD_MAX_K = 1000
HARD_MAX_BEAM_WIDTH = 256
HARD_MAX_SESSION_ITEMS = 50
HARD_MAX_TDM_VALUES = 32

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class ServeConfig(StrictModel):
    """What ``onerec serve`` / :func:`onerec.serve.create_app` accept."""

    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="larger bodies get 413")
    max_history_items: int = Field(
        default=200, ge=1, le=HARD_MAX_HISTORY, description="longest explicit history accepted"
    )
    max_k: int = Field(default=HARD_MAX_K, ge=1, le=HARD_MAX_K, description="largest retrieve k")
    max_beam_width: int = Field(
        default=HARD_MAX_BEAM_WIDTH, ge=1, le=HARD_MAX_BEAM_WIDTH, description="widest beam search"
    )
    max_session_items: int = Field(
        default=HARD_MAX_SESSION_ITEMS,
        ge=1,
        le=HARD_MAX_SESSION_ITEMS,
        description="largest m (the generator's own max_session_items also applies)",
    )
    verify_files: bool = Field(default=True, description="check bundle file hashes at start-up")
    torch_threads: int = Field(
        default=1,
        ge=0,
        description="torch intra-op threads of a server process (0 = torch's default). One "
        "is the default: a request's small matmuls gain nothing from more, and spinning "
        "OpenMP threads wreck tail latency when cores are shared; scale with --workers.",
    )
