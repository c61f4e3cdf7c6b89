"""Ground-truth user simulator: writes logs in the canonical schema and scores any session
with its exact expected rewards (see :mod:`onerec.sim.world`)."""

from onerec.sim.calibrate import calibrate, marginals, read_kuairand_feedback
from onerec.sim.config import SESSION_TARGETS, LoggingPolicyConfig, SimConfig
from onerec.sim.logs import simulate_logs, write_simulated_dataset
from onerec.sim.world import UserSimulator

__all__ = [
    "SESSION_TARGETS",
    "LoggingPolicyConfig",
    "SimConfig",
    "UserSimulator",
    "calibrate",
    "marginals",
    "read_kuairand_feedback",
    "simulate_logs",
    "write_simulated_dataset",
]
