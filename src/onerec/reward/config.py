"""Configs of the reward model: targets, model sizes, session building and the training recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from onerec.config import StrictModel
from onerec.training import TrainConfig


class TargetSpec(StrictModel):
    """One predicted target, read from one feedback column of the interactions.

    ``kind="regression"`` learns ``log1p(column / scale)`` with squared error (watch time in
    seconds for ``play_time_ms`` with ``scale=1000``); the session value is the sum over the
    session's items of ``expm1(prediction) · scale / 1000`` (seconds). ``kind="binary"`` learns
    the 0/1 column with cross-entropy; the session value is the mean probability over items.
    """

    name: str
    column: str
    kind: Literal["binary", "regression"] = "binary"
    scale: float = Field(
        default=1000.0, gt=0, description="regression: column units per model unit"
    )
    loss_weight: float = Field(default=1.0, ge=0)


def default_targets() -> list[TargetSpec]:
    """The OneRec paper's four targets, mapped onto KuaiRand's feedback columns."""
    return [
        TargetSpec(name="swt", column="play_time_ms", kind="regression"),
        TargetSpec(name="vtr", column="long_view"),
        TargetSpec(name="wtr", column="follow"),
        TargetSpec(name="ltr", column="like"),
    ]


class RewardConfig(StrictModel):
    """Sizes of a :class:`onerec.reward.RewardModel`.

    ``num_users``/``num_items`` and ``feature_cardinalities`` are filled from the data set when
    training starts and saved with the model, so a loaded model rebuilds the same tables.
    """

    targets: list[TargetSpec] = Field(default_factory=default_targets)
    num_users: int = Field(default=0, ge=0)
    num_items: int = Field(default=0, ge=0)
    item_features: list[str] = Field(
        default_factory=lambda: ["duration_ms", "tags", "author_id"],
        description="item side columns embedded beside the item id (missing ones are skipped)",
    )
    feature_cardinalities: dict[str, int] = Field(default_factory=dict)
    use_user_id: bool = True
    use_history: bool = True
    max_history: int = Field(default=20, ge=1)
    max_session_items: int = Field(default=5, ge=1)
    d_model: int = Field(default=64, ge=8)
    num_heads: int = Field(default=4, ge=1)
    num_layers: int = Field(default=1, ge=0)
    tower_hidden: int = Field(default=64, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> RewardConfig:
        if self.d_model % self.num_heads:
            raise ValueError("d_model must be divisible by num_heads")
        names = [t.name for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique, got {names}")
        if not self.targets:
            raise ValueError("at least one target is needed")
        return self


class SessionRule(StrictModel):
    """How a user's impressions are grouped into sessions (reward-model examples).

    Consecutive impressions of a user belong to one session while the gap between them is at
    most ``gap_minutes``; a session longer than ``max_items`` is cut into chunks of
    ``max_items``. ``history_column`` marks the impressions that count as positive history.
    """

    gap_minutes: float = Field(default=30.0, gt=0)
    max_items: int = Field(default=5, ge=1)
    history_column: str = "click"


class RewardDataConfig(StrictModel):
    """Which data, how sessions are built, and the temporal split."""

    dataset: str = "kuairand-1k"
    data_root: str | None = None
    sessions: SessionRule = Field(default_factory=lambda: SessionRule.model_validate({}))
    valid_fraction: float = Field(default=0.1, gt=0, lt=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _check(self) -> RewardDataConfig:
        if self.valid_fraction + self.test_fraction >= 1.0:
            raise ValueError("valid_fraction + test_fraction must leave some training data")
        return self


class RewardRecipe(StrictModel):
    """Everything ``onerec train-reward CONFIG`` needs (sections ``data``, ``model``, ``train``)."""

    data: RewardDataConfig = Field(default_factory=lambda: RewardDataConfig.model_validate({}))
    model: RewardConfig = Field(default_factory=lambda: RewardConfig.model_validate({}))
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(
            epochs=10, batch_size=256, lr=2e-3, monitor="valid_loss", monitor_mode="min"
        )
    )
    out_dir: str = "runs/reward"
