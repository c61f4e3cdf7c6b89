"""End to end on a synthetic world: training, control, the saved directory and the Retriever."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from onerec.config import apply_overrides, build_config
from onerec.errors import CheckpointError, OnerecError
from onerec.retrieval.artifact import Retriever
from onerec.retrieval.condition import ConditionError
from onerec.retrieval.eval_control import mixture_topk
from onerec.retrieval.mixture import level_prior
from onerec.retrieval.train import CRMTrainConfig, RetrievalRun, train_retrieval

SMALL = [
    "train.epochs=8",
    "train.batch_size=128",
    "train.progress=false",
    "train.early_stopping_patience=null",
    "model.embed_dim=24",
    "model.hidden_dim=48",
    "model.dropout=0.0",
    "loss.num_sampled_negatives=32",
    "eval.level_quantiles=[0.1,0.5,0.9]",
    "index.kind=flat",
    "num_threads=1",
]


def _config(out_dir: Path, *extra: str) -> CRMTrainConfig:
    return build_config(CRMTrainConfig, apply_overrides({}, [*SMALL, f"out_dir={out_dir}", *extra]))


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, make_synthetic: Callable[..., Any]
) -> RetrievalRun:
    out = tmp_path_factory.mktemp("crm")
    return train_retrieval(_config(out), dataset=make_synthetic())


def _long_share(retriever: Retriever, dataset: object, value: float, users: range) -> float:
    item_long = dataset.item_long  # type: ignore[attr-defined]
    shares = [
        item_long[
            retriever.retrieve(f"u{u}", 10, "fixed", value, exclude_seen=False).item_idx
        ].mean()
        for u in users
    ]
    return float(np.mean(shares))


def test_condition_steers_retrieval_towards_long_items(trained: RetrievalRun) -> None:
    retriever = Retriever(trained.out_dir / "model")
    dataset = trained.data.dataset
    low = _long_share(retriever, dataset, 5_000.0, range(40))
    high = _long_share(retriever, dataset, 60_000.0, range(40))
    assert high > low + 0.3, (low, high)  # the condition, not only the history, picks items
    first = retriever.retrieve("u0", 10, "fixed", 5_000.0).item_idx
    assert first != retriever.retrieve("u0", 10, "fixed", 60_000.0).item_idx


def test_control_table_target_auc_rises_with_the_condition(trained: RetrievalRun) -> None:
    fixed = [row for row in trained.summary["control"]["test"] if row["strategy"] == "fixed"]
    assert len(fixed) == 3
    assert fixed[-1]["target_auc"] > fixed[0]["target_auc"] + 0.1
    strategies = {row["strategy"] for row in trained.summary["control"]["test"]}
    assert strategies == {"fixed", "max", "mean", "tdm", "mix"}
    assert 0.0 < trained.summary["validation"]["recall@100"] <= 1.0


def test_saved_directory_round_trip(trained: RetrievalRun) -> None:
    model_dir = trained.out_dir / "model"
    for name in (
        "config.json",
        "model.safetensors",
        "condition.json",
        "item_index.faiss",
        "user_state.safetensors",
        "ids.json",
        "summary.json",
    ):
        assert (model_dir / name).is_file(), name
    retriever = Retriever(trained.out_dir)  # the run directory works too
    hist = torch.as_tensor(retriever.history[:3])
    cond = torch.tensor([1.0, 5.0, 9.0])
    with torch.no_grad():
        ours = trained.model.user_vectors(hist, cond)
        theirs = retriever.model.user_vectors(hist, cond)
    assert torch.allclose(ours, theirs, atol=1e-6)
    # Through the index (flat here) = exact scores of the reloaded model, minus seen items.
    result = retriever.retrieve("u3", 5, "fixed", 30_000.0)
    seen = set(retriever.seen(3).tolist())
    assert not seen & set(result.item_idx)
    assert result.scores == sorted(result.scores, reverse=True)
    assert result.item_ids == [f"v{i}" for i in result.item_idx]


def test_strategies_through_the_retriever(trained: RetrievalRun) -> None:
    retriever = Retriever(trained.out_dir / "model")
    positions = [
        retriever.retrieve("u1", 5, "tdm", tdm_values=[2_000.0, 60_000.0]).condition_position
        for _ in range(4)
    ]
    assert (
        positions[0] == positions[2]
        and positions[1] == positions[3]
        and positions[0] != positions[1]
    )
    other = retriever.retrieve("u2", 5, "tdm", tdm_values=[2_000.0, 60_000.0]).condition_position
    assert other == positions[0]  # a different user starts its own cycle
    top = retriever.retrieve("u1", 5, "max")
    mean = retriever.retrieve("u1", 5, "mean")
    assert top.condition_position is not None and mean.condition_position is not None
    assert top.condition_position >= mean.condition_position
    assert top.condition_value is not None and top.condition_value > 0
    with pytest.raises(ConditionError, match="needs a condition"):
        retriever.retrieve("u1", 5, "fixed")
    with pytest.raises(OnerecError, match="unknown user"):
        retriever.retrieve("nobody", 5, "max")


def test_unconditioned_baseline_is_the_same_code(
    tmp_path: Path, make_synthetic: Callable[..., Any]
) -> None:
    run = train_retrieval(
        _config(tmp_path, "model.condition=none", "train.epochs=2"), dataset=make_synthetic()
    )
    rows = run.summary["control"]["test"]
    assert [row["strategy"] for row in rows] == ["none"]
    retriever = Retriever(tmp_path / "model")
    assert not retriever.conditioned
    result = retriever.retrieve("u0", 5)
    assert result.condition_position is None and len(result.item_idx) == 5


def test_transformer_variant_trains(tmp_path: Path, make_synthetic: Callable[..., Any]) -> None:
    run = train_retrieval(
        _config(
            tmp_path,
            "model.condition=transformer",
            "train.epochs=2",
            "data.condition_target=watch_ratio",
        ),
        dataset=make_synthetic(num_users=60),
        save=False,
    )
    assert run.model.config.history_encoder == "transformer"
    assert np.isfinite(run.summary["control"]["test"][0]["recall@50"])


def test_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a retrieval model directory"):
        Retriever(tmp_path)


def test_semantic_ids_item_and_user_features_enter_the_towers(
    tmp_path: Path, make_synthetic: Callable[..., Any]
) -> None:
    from onerec.tokenizer import SemanticTokenizer, TokenizerConfig

    dataset = make_synthetic(num_users=60)
    embeddings = np.random.default_rng(0).standard_normal((dataset.num_items, 8)).astype(np.float32)
    tokenizer = SemanticTokenizer.fit(embeddings, config=TokenizerConfig(levels=2, codebook_size=4))
    tokenizer.save(tmp_path / "sid")
    cfg = _config(
        tmp_path,
        "train.epochs=1",
        f"data.semantic_ids_dir={tmp_path / 'sid'}",
        "data.item_feature_columns=[duration_ms]",
        "data.user_feature_columns=[gender,age]",
    )
    run = train_retrieval(cfg, dataset=dataset, save=False)
    encoder = run.model.item_encoder
    assert run.model.config.semantic_codebook_sizes == tokenizer.codebook_sizes
    assert torch.equal(encoder.item_codes[: dataset.num_items], torch.from_numpy(tokenizer.codes))
    assert run.model.config.num_item_dense_features == 1
    assert encoder.item_dense[:, 0].std() > 0  # standardised log-duration installed
    assert run.model.config.user_categorical_cardinalities == [2]  # gender: f, m
    assert run.model.user_cat_table[:4, 0].tolist() == [2, 1, 2, 1]  # m, f, m, f (1-based)
    assert run.model.config.num_user_dense_features == 1  # age


def _reference_mixture_ranking(
    retriever: Retriever, history: np.ndarray, user_idx: int, exclude: np.ndarray, k: int
) -> tuple[list[int], list[float]]:
    """Plain loop: p(i | u) = Σ_c p(c) softmax_c(i), one level at a time, in float64."""
    positions, weights = level_prior(retriever.normalizer)
    items = retriever.model.all_item_vectors().double()
    prob = np.zeros(items.shape[0])
    for position, weight in zip(positions, weights, strict=True):
        query = retriever.model.user_vectors(
            torch.as_tensor(history)[None],
            torch.tensor([float(position)]),
            torch.tensor([user_idx]),
        )[0].double()
        logits = (items @ query / retriever.config.temperature).numpy()
        level = np.exp(logits - logits.max())
        prob += weight * level / level.sum()
    prob[exclude] = 0.0
    order = np.argsort(-prob, kind="stable")[:k]
    return order.tolist(), np.log(prob[order]).tolist()


def test_mix_strategy_matches_the_plain_mixture(trained: RetrievalRun) -> None:
    retriever = Retriever(trained.out_dir / "model")
    none = np.zeros(0, dtype=np.int64)
    with torch.no_grad():
        for user in ("u1", "u7"):
            user_idx = retriever.user_index(user)
            for exclude_seen in (True, False):
                got = retriever.retrieve(user, 10, "mix", exclude_seen=exclude_seen)
                exclude = retriever.seen(user_idx) if exclude_seen else none
                items, scores = _reference_mixture_ranking(
                    retriever, retriever.history[user_idx], user_idx, exclude, 10
                )
                assert got.strategy == "mix" and got.condition_position is None
                assert got.item_idx == items
                np.testing.assert_allclose(got.scores, scores, rtol=1e-4, atol=1e-4)
                assert not set(got.item_idx) & set(exclude.tolist())
        # The control table's mix row ranks held-out users the same way.
        held = trained.data.test
        topk = mixture_topk(
            retriever.model, held, retriever.normalizer, retriever.model.all_item_vectors(), 10
        )
        for row in (0, len(held) - 1):
            items, _ = _reference_mixture_ranking(
                retriever, held.history[row], int(held.user_idx[row]), held.seen[row], 10
            )
            assert topk[row].tolist() == items
    with pytest.raises(ConditionError, match="no single position"):
        retriever.planner.position(1, "mix")
