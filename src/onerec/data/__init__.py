"""onerec.data: canonical tables, readers, validation, splits and sessions.

Main entry points:

- :func:`load_dataset` — a :class:`PreparedDataset` from a prepared directory or a named data
  set (``kuairand-demo`` is embedded; ``amazon-beauty``, ``amazon-sports``, ``kuairand-1k``,
  ``ml-100k``, ``ml-1m`` are read from the data root).
- :func:`prepare_dataset` — read, validate, index and write a prepared directory atomically.
- :func:`leave_one_out`, :func:`temporal_split`, :func:`build_sessions`.
"""

from onerec.data.datasets import NAMED_DATASETS, resolve_data_root
from onerec.data.pipeline import (
    DataSource,
    build_dataset,
    load_dataset,
    prepare_dataset,
    read_source,
)
from onerec.data.prepared import PreparedDataset
from onerec.data.schema import FEEDBACK_COLUMNS, SCHEMA_VERSION
from onerec.data.sessions import PositiveRule, SessionConfig, SessionExamples, build_sessions
from onerec.data.splits import (
    EvalExamples,
    LeaveOneOutSplit,
    TemporalSplit,
    cutoff_at_fraction,
    leave_one_out,
    temporal_split,
)

__all__ = [
    "FEEDBACK_COLUMNS",
    "NAMED_DATASETS",
    "SCHEMA_VERSION",
    "DataSource",
    "EvalExamples",
    "LeaveOneOutSplit",
    "PositiveRule",
    "PreparedDataset",
    "SessionConfig",
    "SessionExamples",
    "TemporalSplit",
    "build_dataset",
    "build_sessions",
    "cutoff_at_fraction",
    "leave_one_out",
    "load_dataset",
    "prepare_dataset",
    "read_source",
    "resolve_data_root",
    "temporal_split",
]
