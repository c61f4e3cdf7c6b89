"""The one training loop (``Trainer``), its config, optimiser/schedule, checkpoints and devices.

Every onerec model trains through :class:`Trainer`; see ``docs/ARCHITECTURE.md``.
"""

from onerec.training.checkpoint import load_checkpoint, save_checkpoint
from onerec.training.config import TrainConfig
from onerec.training.device import resolve_device, to_device
from onerec.training.distributed import is_main_process, unwrap_model
from onerec.training.loop import LossOutput, NonFiniteLossError, Trainer, TrainResult
from onerec.training.model_dir import load_state_into, read_model_config, save_model_dir
from onerec.training.optim import WarmupCosineSchedule, build_optimizer, warmup_cosine_factor
from onerec.training.seed import epoch_seed, seed_everything

__all__ = [
    "LossOutput",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "WarmupCosineSchedule",
    "build_optimizer",
    "epoch_seed",
    "is_main_process",
    "load_checkpoint",
    "load_state_into",
    "read_model_config",
    "resolve_device",
    "save_checkpoint",
    "save_model_dir",
    "seed_everything",
    "to_device",
    "unwrap_model",
    "warmup_cosine_factor",
]
