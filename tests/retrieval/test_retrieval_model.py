"""CRM model: config rules, shapes for every variant, the condition path, padding."""

from __future__ import annotations

import pytest
import torch

from onerec.config import ConfigError, build_config
from onerec.retrieval.model import ConditionEmbedding, CRMModel, TwoTowerConfig

N_ITEMS = 30


def _model(**kwargs: object) -> CRMModel:
    torch.manual_seed(0)
    cfg = TwoTowerConfig(
        num_items=N_ITEMS,
        embed_dim=16,
        hidden_dim=32,
        max_history=6,
        num_condition_levels=5,
        dropout=0.0,
        **kwargs,
    )  # type: ignore[arg-type]
    return CRMModel(cfg).eval()


def _history() -> torch.Tensor:
    pad = N_ITEMS
    return torch.tensor([[pad, pad, 1, 2, 3, 4], [pad, pad, pad, pad, pad, 7], [pad] * 6])


def test_transformer_condition_implies_transformer_encoder() -> None:
    assert TwoTowerConfig(condition="transformer").history_encoder == "transformer"
    with pytest.raises(ConfigError, match="needs history_encoder='transformer'"):
        build_config(TwoTowerConfig, {"condition": "transformer", "history_encoder": "mean"})
    with pytest.raises(ValueError, match="num_items"):
        CRMModel(TwoTowerConfig())


VARIANTS = [
    {"condition": "none", "history_encoder": "mean"},
    {"condition": "none", "history_encoder": "attention"},
    {"condition": "none", "history_encoder": "transformer"},
    {"condition": "nn", "history_encoder": "mean"},
    {"condition": "nn", "history_encoder": "attention"},
    {"condition": "transformer"},
]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()))
def test_shapes_and_unit_norm(variant: dict[str, str]) -> None:
    model = _model(**variant)
    cond = torch.tensor([0.0, 2.5, 4.0]) if variant["condition"] != "none" else None
    users = model.user_vectors(_history(), cond)
    items = model.item_vectors(torch.arange(N_ITEMS))
    assert users.shape == (3, 16) and items.shape == (N_ITEMS, 16)
    assert torch.allclose(users.norm(dim=-1), torch.ones(3), atol=1e-5)  # empty history row too
    assert torch.isfinite(users).all()
    assert model.score(users, items).shape == (3, N_ITEMS)
    assert torch.allclose(model.all_item_vectors(batch_size=7), items, atol=1e-6)


@pytest.mark.parametrize("condition", ["nn", "transformer"])
def test_condition_changes_the_user_vector_and_ranking(condition: str) -> None:
    model = _model(condition=condition)
    hist = _history()[:1].expand(2, -1)
    users = model.user_vectors(hist, torch.tensor([0.0, 4.0]))
    assert not torch.allclose(users[0], users[1])
    ranking = model.score(users, model.all_item_vectors()).argsort(dim=1, descending=True)
    assert not torch.equal(ranking[0], ranking[1])


def test_conditioned_model_requires_a_condition() -> None:
    with pytest.raises(ValueError, match="pass one"):
        _model(condition="nn").user_vectors(_history())


def test_unconditioned_model_ignores_a_condition() -> None:
    model = _model(condition="none")
    a = model.user_vectors(_history(), torch.zeros(3))
    b = model.user_vectors(_history(), torch.full((3,), 4.0))
    assert torch.equal(a, b)
    assert model.condition_embedding is None


@pytest.mark.parametrize("encoder", ["mean", "attention", "transformer"])
def test_padding_does_not_leak_into_the_user_vector(encoder: str) -> None:
    model = _model(condition="none", history_encoder=encoder)
    pad = N_ITEMS
    short = torch.tensor([[pad, pad, pad, pad, 5, 6]])
    with torch.no_grad():  # scribble on the padding row: the result must not move
        before = model.user_vectors(short)
        model.item_encoder.id_embedding.weight[pad] = 3.0
        after = model.user_vectors(short)
    assert torch.allclose(before, after, atol=1e-6)


def test_condition_embedding_interpolates_between_anchors() -> None:
    emb = ConditionEmbedding(4, 3)
    at = emb(torch.tensor([1.0, 2.0, 1.25, 9.0, -1.0]))
    a = emb.anchors.weight
    assert torch.allclose(at[0], a[1]) and torch.allclose(at[1], a[2])
    assert torch.allclose(at[2], 0.75 * a[1] + 0.25 * a[2])
    assert torch.allclose(at[3], a[3]) and torch.allclose(at[4], a[0])  # clamped


def test_item_side_data_and_user_features_enter_the_towers() -> None:
    model = _model(
        condition="none",
        semantic_codebook_sizes=[4, 3],
        num_item_dense_features=2,
        num_users=5,
        num_user_dense_features=1,
        user_categorical_cardinalities=[3],
    )
    before = model.item_vectors(torch.arange(4))
    model.item_encoder.set_side_data(torch.randint(0, 3, (N_ITEMS, 2)), torch.randn(N_ITEMS, 2))
    assert not torch.allclose(before, model.item_vectors(torch.arange(4)))
    hist = _history()[:1].expand(2, -1)
    model.set_user_features(torch.tensor([[1], [2], [0], [0], [3]]), torch.randn(5, 1))
    users = model.user_vectors(hist, user_idx=torch.tensor([0, 1]))
    assert not torch.allclose(users[0], users[1])  # same history, different features
    unknown = model.user_vectors(hist[:1])  # no user index: the all-zero "unknown" row
    assert torch.isfinite(unknown).all()


def test_user_residual_adds_the_history_summary() -> None:
    plain, residual = _model(condition="nn"), _model(condition="nn", user_residual=True)
    residual.load_state_dict(plain.state_dict())  # same weights, only the residual differs
    hist, cond = _history()[:2], torch.tensor([1.0, 3.0])
    with torch.no_grad():
        summary = plain.history_encoder(
            plain.history_item_encoder(hist), hist != N_ITEMS, None
        )  # [2, d]
        expected = torch.nn.functional.normalize(
            plain.user_mlp(torch.cat([summary, plain.condition_embedding(cond)], dim=-1)) + summary,  # type: ignore[misc]
            dim=-1,
        )
        assert torch.allclose(residual.user_vectors(hist, cond), expected, atol=1e-6)
        assert not torch.allclose(plain.user_vectors(hist, cond), expected, atol=1e-4)
