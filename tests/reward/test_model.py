"""RewardModel: shapes, padding, attention across the session, save/load, and learning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from onerec.reward import (
    RewardConfig,
    RewardModel,
    RewardRecipe,
    load_reward_model,
    save_reward_model,
)
from onerec.reward.train import prepare_reward_data, train_reward
from onerec.sim import LoggingPolicyConfig, SimConfig, UserSimulator, simulate_logs
from onerec.sim.logs import as_prepared_dataset


def _model(num_layers: int = 1) -> RewardModel:
    torch.manual_seed(0)
    config = RewardConfig(
        num_users=4,
        num_items=10,
        feature_cardinalities={"duration_ms": 13},
        d_model=16,
        num_heads=2,
        num_layers=num_layers,
        dropout=0.0,
    )
    features = torch.randint(0, 13, (11, 1))
    features[10] = 0
    return RewardModel(config, features).eval()


def _batch(items: list[list[int]]) -> dict[str, torch.Tensor]:
    return {
        "user_idx": torch.tensor([1] * len(items)),
        "history": torch.tensor([[2, 3, 10]] * len(items)),
        "items": torch.tensor(items),
    }


def test_shapes_and_session_values() -> None:
    model = _model()
    batch = _batch([[0, 1, 2, 10, 10], [4, 5, 6, 7, 8]])
    raw = model.item_predictions(batch)
    assert set(raw) == {"swt", "vtr", "wtr", "ltr"} and raw["vtr"].shape == (2, 5)
    session = model(batch)
    assert session["vtr"].shape == (2,)
    # Session values aggregate the real items only: mean probability / sum of expm1 seconds.
    expected_vtr = torch.sigmoid(raw["vtr"][0, :3]).mean()
    torch.testing.assert_close(session["vtr"][0], expected_vtr)
    expected_swt = torch.expm1(raw["swt"][0, :3].clamp(min=0)).sum()
    torch.testing.assert_close(session["swt"][0], expected_swt)


def test_padding_does_not_change_real_items() -> None:
    model = _model()
    short = model.item_predictions(_batch([[0, 1, 2]]))
    padded = model.item_predictions(_batch([[0, 1, 2, 10, 10]]))
    torch.testing.assert_close(short["vtr"], padded["vtr"][:, :3])


def test_self_attention_lets_session_neighbours_matter() -> None:
    model = _model(num_layers=1)
    a = model.item_predictions(_batch([[0, 1, 2]]))["vtr"][0, 0]
    b = model.item_predictions(_batch([[0, 7, 8]]))["vtr"][0, 0]
    assert not torch.isclose(a, b)
    flat = _model(num_layers=0)
    a0 = flat.item_predictions(_batch([[0, 1, 2]]))["vtr"][0, 0]
    b0 = flat.item_predictions(_batch([[0, 7, 8]]))["vtr"][0, 0]
    torch.testing.assert_close(a0, b0)  # without attention each item stands alone


def test_target_aware_user_features_matter() -> None:
    model = _model()
    batch = _batch([[0, 1, 2]])
    other = dict(batch, user_idx=torch.tensor([2]), history=torch.tensor([[5, 6, 7]]))
    assert not torch.allclose(
        model.item_predictions(batch)["vtr"], model.item_predictions(other)["vtr"]
    )
    unseen = dict(batch, user_idx=torch.tensor([99]))  # unknown users share one row, no crash
    assert torch.isfinite(model(unseen)["swt"]).all()


def test_save_and_load_round_trip(tmp_path) -> None:
    model = _model()
    save_reward_model(tmp_path / "rm", model)
    loaded = load_reward_model(tmp_path / "rm")
    batch = _batch([[0, 1, 2, 10, 10]])
    torch.testing.assert_close(model(batch)["swt"], loaded(batch)["swt"])
    assert torch.equal(loaded.item_feature_ids, model.item_feature_ids)


def _sim_dataset():
    sim = UserSimulator(
        SimConfig(
            num_users=300,
            num_items=300,
            num_tags=8,
            seed=4,
            logging=LoggingPolicyConfig(sessions_per_user=10, epsilon=0.5),
        )
    )
    return sim, as_prepared_dataset(sim, simulate_logs(sim))


def test_reward_model_learns_the_simulated_truth(tmp_path) -> None:
    sim, dataset = _sim_dataset()
    recipe = RewardRecipe.model_validate(
        {
            "data": {"dataset": "unused"},
            "model": {"d_model": 32, "num_heads": 2, "tower_hidden": 32, "dropout": 0.0},
            "train": {
                "epochs": 5,
                "batch_size": 128,
                "lr": 3e-3,
                "monitor": "valid_loss",
                "monitor_mode": "min",
                "progress": False,
            },
            "out_dir": str(tmp_path / "run"),
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = train_reward(recipe, dataset)
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "report.md").read_text().startswith("| target |")
    assert run.results["vtr"]["model_auc"] > 0.68
    # The model's session scores rank random sessions like the simulator's exact rewards do
    # (users from held-out sessions, with the history they had there).
    rng = np.random.default_rng(0)
    test = run.data.test
    pick = rng.integers(0, len(test), 600)
    users, history = test.user_idx[pick], test.history[pick]
    sessions = np.stack([rng.choice(sim.num_items, 5, replace=False) for _ in users])
    truth = sim.true_session_rewards(users, sessions)["vtr"]
    batch = {
        "user_idx": torch.from_numpy(users),
        "history": torch.from_numpy(history),
        "items": torch.from_numpy(sessions),
    }
    with torch.no_grad():
        predicted = run.model.eval()(batch)["vtr"].numpy()
    spearman = np.corrcoef(np.argsort(np.argsort(truth)), np.argsort(np.argsort(predicted)))[0, 1]
    assert spearman > 0.15  # significant at p < 1e-3 for 600 sessions


def test_targets_without_columns_are_dropped_with_a_warning() -> None:
    _, dataset = _sim_dataset()
    frame = dataset.interactions.drop("follow")
    dataset.interactions = frame
    recipe = RewardRecipe()
    with pytest.warns(UserWarning, match="wtr"):
        data = prepare_reward_data(dataset, recipe)
    assert [t.name for t in data.config.targets] == ["swt", "vtr", "ltr"]
