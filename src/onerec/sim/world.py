"""The ground-truth world: latent users and items, exact expected feedback, sampled feedback.

Feedback model for user ``u`` shown item ``i`` at position ``p`` of a session ``S``
(``aff`` = personal affinity + item quality, see :meth:`UserSimulator.affinity`):

- engagement ("click"): ``P = σ(click_bias + click_affinity·aff − position_fatigue·p
  − repeat_tag_penalty·#{earlier items in S with i's tag})``;
- play time if engaged: ``duration · min(exp(Y), cap)`` with
  ``Y ~ N(engaged_log_ratio_bias + engaged_log_ratio_affinity·aff
  + engaged_log_ratio_duration_slope·z_dur, engaged_log_ratio_std)`` (a watch-ratio model;
  ``z_dur`` is the standardised log-duration, so long videos are watched to a smaller fraction);
- play time if skipped: ``min(exp(Z), duration)``, ``Z ~ N(skip_log_play_mean, skip_log_play_std)``;
- long view: play ≥ min(18 s, duration) (KuaiRand's definition);
- like / follow: only after engagement, ``σ(bias + affinity_weight·aff)``.

Because every random part is Gaussian or Bernoulli given (u, S), the expectations of play time
and long view have closed forms (log-normal partial expectations), so
:meth:`UserSimulator.true_session_rewards` is exact — no sampling noise in the ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from onerec.errors import CheckpointError
from onerec.io import atomic_dir
from onerec.sim.config import SESSION_TARGETS, SimConfig

ITEM_FEEDBACK = ("click", "play_time_ms", "long_view", "like", "follow")


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF Φ(x), float64, elementwise."""
    return torch.special.ndtr(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def lognormal_capped_mean(
    mu: np.ndarray, sigma: np.ndarray | float, cap: np.ndarray | float
) -> np.ndarray:
    """``E[min(exp(Y), cap)]`` for ``Y ~ N(mu, sigma²)``, elementwise.

    ``= exp(mu + σ²/2)·Φ((ln cap − mu − σ²)/σ) + cap·(1 − Φ((ln cap − mu)/σ))``.
    """
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    log_cap = np.log(np.asarray(cap, dtype=np.float64))
    below = np.exp(mu + 0.5 * sigma**2) * normal_cdf((log_cap - mu - sigma**2) / sigma)
    above = np.exp(log_cap) * (1.0 - normal_cdf((log_cap - mu) / sigma))
    return below + above


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


class UserSimulator:
    """A synthetic world with known ground truth (see the module docstring for the model).

    Build it from a :class:`SimConfig` (deterministic in ``config.seed``) or :meth:`load` it.
    Users and items are dense indices ``0..num_users-1`` / ``0..num_items-1``.
    """

    def __init__(self, config: SimConfig, arrays: dict[str, np.ndarray] | None = None) -> None:
        self.config = config
        arrays = arrays if arrays is not None else self._build_arrays(config)
        self.user_vectors = arrays["user_vectors"]  # [U, k]
        self.item_vectors = arrays["item_vectors"]  # [I, k]
        self.item_tags = arrays["item_tags"].astype(np.int64)  # [I]
        self.item_quality = arrays["item_quality"]  # [I]
        self.duration_noise = arrays["duration_noise"]  # [I] standard normal draws
        self.affinity_shift = float(arrays["affinity_norm"][0])
        self.affinity_div = float(arrays["affinity_norm"][1])

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _build_arrays(config: SimConfig) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(config.seed)
        k = config.latent_dim
        centroids = rng.standard_normal((config.num_tags, k))  # [T, k]
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        item_tags = rng.integers(0, config.num_tags, size=config.num_items)  # [I]
        item_vectors = centroids[item_tags] + config.tag_spread * rng.standard_normal(
            (config.num_items, k)
        ) / np.sqrt(k)  # [I, k]
        interests = rng.integers(
            0, config.num_tags, size=(config.num_users, config.interests_per_user)
        )
        user_vectors = centroids[interests].mean(axis=1) + config.user_spread * rng.standard_normal(
            (config.num_users, k)
        ) / np.sqrt(k)  # [U, k]
        item_quality = config.item_quality_std * rng.standard_normal(config.num_items)  # [I]
        duration_noise = rng.standard_normal(config.num_items)  # [I]
        # Standardise the dot product over random (user, item) pairs so affinity_scale is its std.
        pair_users = rng.integers(0, config.num_users, size=20_000)
        pair_items = rng.integers(0, config.num_items, size=20_000)
        dots = np.einsum("bk,bk->b", user_vectors[pair_users], item_vectors[pair_items])
        affinity_norm = np.array([dots.mean(), dots.std() + 1e-12])
        return {
            "user_vectors": user_vectors,
            "item_vectors": item_vectors,
            "item_tags": item_tags,
            "item_quality": item_quality,
            "duration_noise": duration_noise,
            "affinity_norm": affinity_norm,
        }

    @property
    def num_users(self) -> int:
        return int(self.user_vectors.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.item_vectors.shape[0])

    @property
    def item_duration_ms(self) -> np.ndarray:
        """``[I]`` durations; recomputed from the config so calibration can move them."""
        cfg = self.config
        log_d = cfg.duration_log_mean + cfg.duration_log_std * self.duration_noise
        return np.clip(np.exp(log_d), cfg.min_duration_ms, cfg.max_duration_ms)

    def with_config(self, config: SimConfig) -> UserSimulator:
        """The same latent world under new global parameters (used by calibration)."""
        return UserSimulator(config, self._arrays())

    # ------------------------------------------------------------------ ground truth
    def affinity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Affinity of ``users[b]`` for ``items[b, j]``: ``[B]`` × ``[B, m]`` → ``[B, m]``."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        dots = np.einsum("bk,bmk->bm", self.user_vectors[users], self.item_vectors[items])  # [B, m]
        personal = self.config.affinity_scale * (dots - self.affinity_shift) / self.affinity_div
        return personal + self.item_quality[items]

    def _session_offsets(self, items: np.ndarray) -> np.ndarray:
        """Position and tag-repetition penalty on the engagement logit: ``[B, m]``."""
        cfg = self.config
        tags = self.item_tags[items]  # [B, m]
        positions = np.arange(items.shape[1], dtype=np.float64)[None, :]  # [1, m]
        same_tag = tags[:, :, None] == tags[:, None, :]  # [B, m(current), m(earlier)]
        earlier = np.tril(np.ones((items.shape[1], items.shape[1]), dtype=bool), k=-1)
        repeats = (same_tag & earlier[None]).sum(axis=2)  # [B, m]
        return -cfg.position_fatigue * positions - cfg.repeat_tag_penalty * repeats

    def _item_model(self, users: np.ndarray, items: np.ndarray) -> dict[str, np.ndarray]:
        """Per-exposure model quantities: click prob, engaged log-ratio mean, durations."""
        cfg = self.config
        items = np.asarray(items, dtype=np.int64)
        aff = self.affinity(users, items)  # [B, m]
        click_prob = _sigmoid(
            cfg.click_bias + cfg.click_affinity * aff + self._session_offsets(items)
        )
        duration = self.item_duration_ms[items]  # [B, m]
        z_dur = (np.log(duration) - cfg.duration_log_mean) / cfg.duration_log_std
        ratio_mean = (
            cfg.engaged_log_ratio_bias
            + cfg.engaged_log_ratio_affinity * aff
            + cfg.engaged_log_ratio_duration_slope * z_dur
        )
        return {
            "aff": aff,
            "click_prob": click_prob,
            "duration": duration,
            "ratio_mean": ratio_mean,
        }

    def expected_item_feedback(
        self, users: np.ndarray, sessions: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Exact expectations per shown item: keys ``ITEM_FEEDBACK``, each ``[B, m]``.

        ``users``: ``[B]`` user indices; ``sessions``: ``[B, m]`` item indices in display order.
        """
        cfg = self.config
        q = self._item_model(users, sessions)
        click, duration, ratio_mean = q["click_prob"], q["duration"], q["ratio_mean"]
        engaged_play = duration * lognormal_capped_mean(
            ratio_mean, cfg.engaged_log_ratio_std, cfg.watch_ratio_cap
        )
        skip_play = lognormal_capped_mean(
            np.full_like(duration, cfg.skip_log_play_mean), cfg.skip_log_play_std, duration
        )
        long_view_ms = np.minimum(cfg.long_view_threshold_ms, duration)
        engaged_long = 1.0 - normal_cdf(
            (np.log(long_view_ms / duration) - ratio_mean) / cfg.engaged_log_ratio_std
        )
        skip_long = 1.0 - normal_cdf(
            (np.log(long_view_ms) - cfg.skip_log_play_mean) / cfg.skip_log_play_std
        )
        return {
            "click": click,
            "play_time_ms": click * engaged_play + (1.0 - click) * skip_play,
            "long_view": click * engaged_long + (1.0 - click) * skip_long,
            "like": click * _sigmoid(cfg.like_bias + cfg.like_affinity * q["aff"]),
            "follow": click * _sigmoid(cfg.follow_bias + cfg.follow_affinity * q["aff"]),
        }

    def true_session_rewards(
        self, users: np.ndarray, sessions: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Exact expected session rewards, each ``[B]``: swt (seconds), vtr, wtr, ltr."""
        per_item = self.expected_item_feedback(users, sessions)
        return {
            "swt": per_item["play_time_ms"].sum(axis=1) / 1000.0,
            "vtr": per_item["long_view"].mean(axis=1),
            "wtr": per_item["follow"].mean(axis=1),
            "ltr": per_item["like"].mean(axis=1),
        }

    def true_session_reward(self, user: int, items: Sequence[int]) -> dict[str, float]:
        """Exact expected rewards of showing ``items`` (in order) to ``user``."""
        rewards = self.true_session_rewards(
            np.array([user]), np.asarray([list(items)], dtype=np.int64)
        )
        return {name: float(rewards[name][0]) for name in SESSION_TARGETS}

    # ------------------------------------------------------------------ sampling
    def sample_feedback(
        self, users: np.ndarray, sessions: np.ndarray, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """One random draw of feedback for each shown item (same keys as the expectations)."""
        cfg = self.config
        q = self._item_model(users, sessions)
        shape = q["click_prob"].shape
        engaged = rng.random(shape) < q["click_prob"]
        log_ratio = q["ratio_mean"] + cfg.engaged_log_ratio_std * rng.standard_normal(shape)
        engaged_play = q["duration"] * np.minimum(np.exp(log_ratio), cfg.watch_ratio_cap)
        skip_play = np.minimum(
            np.exp(cfg.skip_log_play_mean + cfg.skip_log_play_std * rng.standard_normal(shape)),
            q["duration"],
        )
        play = np.where(engaged, engaged_play, skip_play)
        long_view = play >= np.minimum(cfg.long_view_threshold_ms, q["duration"])
        like = engaged & (
            rng.random(shape) < _sigmoid(cfg.like_bias + cfg.like_affinity * q["aff"])
        )
        follow = engaged & (
            rng.random(shape) < _sigmoid(cfg.follow_bias + cfg.follow_affinity * q["aff"])
        )
        return {
            "click": engaged.astype(np.int8),
            "play_time_ms": play,
            "long_view": long_view.astype(np.int8),
            "like": like.astype(np.int8),
            "follow": follow.astype(np.int8),
        }

    # ------------------------------------------------------------------ persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_vectors": self.user_vectors,
            "item_vectors": self.item_vectors,
            "item_tags": self.item_tags,
            "item_quality": self.item_quality,
            "duration_noise": self.duration_noise,
            "affinity_norm": np.array([self.affinity_shift, self.affinity_div]),
        }

    def save(self, path: str | Path) -> None:
        """Write ``sim_config.json`` + ``world.safetensors`` atomically into directory ``path``."""
        with atomic_dir(path) as tmp:
            (tmp / "sim_config.json").write_text(
                json.dumps(self.config.model_dump(), indent=2, sort_keys=True) + "\n",
                encoding="utf-8",
            )
            save_file(
                {k: np.ascontiguousarray(v) for k, v in self._arrays().items()},
                str(tmp / "world.safetensors"),
            )

    @classmethod
    def load(cls, path: str | Path) -> UserSimulator:
        """Load a world written by :meth:`save`."""
        path = Path(path)
        config_file, arrays_file = path / "sim_config.json", path / "world.safetensors"
        if not config_file.is_file() or not arrays_file.is_file():
            raise CheckpointError(
                f"{path} is not a saved simulator (needs sim_config.json and world.safetensors); "
                "write one with `onerec sim --out DIR`"
            )
        config = SimConfig.model_validate(json.loads(config_file.read_text(encoding="utf-8")))
        return cls(config, load_file(str(arrays_file)))
