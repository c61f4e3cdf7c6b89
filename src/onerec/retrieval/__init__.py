"""CRM: controllable two-tower retrieval conditioned on a regression target (see docs/crm.md).

- :class:`TwoTowerConfig` / :class:`CRMModel` — user tower (history + condition + user
  features), item tower (id + semantic-ID codes + item features); ``condition`` is ``"none"``
  (baseline), ``"nn"`` (CRM-NN) or ``"transformer"`` (CRM-Transformer).
- :func:`sampled_softmax_logq_loss` — in-batch + sampled softmax with log-Q correction.
- :class:`ConditionNormalizer` — quantile / equal-frequency-bucket normalisation of the target.
- :class:`ConditionPlanner` — serving strategies ``fixed | max | mean | tdm``.
- :class:`ItemIndex` / :class:`IndexConfig` — faiss flat / HNSW / IVF over item vectors.
- :func:`train_retrieval` / :class:`CRMTrainConfig` — the ``onerec train-retrieval`` pipeline.
- :class:`Retriever` — serves a saved model directory (``onerec retrieve``).
"""

from onerec.retrieval.artifact import RetrievalResult, Retriever
from onerec.retrieval.condition import ConditionError, ConditionNormalizer, condition_values
from onerec.retrieval.index import IndexConfig, ItemIndex, recall_vs_exact
from onerec.retrieval.loss import sampled_softmax_logq_loss
from onerec.retrieval.model import CRMModel, TwoTowerConfig
from onerec.retrieval.strategies import STRATEGIES, ConditionPlanner
from onerec.retrieval.train import CRMTrainConfig, RetrievalRun, train_retrieval

__all__ = [
    "STRATEGIES",
    "CRMModel",
    "CRMTrainConfig",
    "ConditionError",
    "ConditionNormalizer",
    "ConditionPlanner",
    "IndexConfig",
    "ItemIndex",
    "RetrievalResult",
    "RetrievalRun",
    "Retriever",
    "TwoTowerConfig",
    "condition_values",
    "recall_vs_exact",
    "sampled_softmax_logq_loss",
    "train_retrieval",
]
