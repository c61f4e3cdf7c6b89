"""Configuration of the ground-truth user simulator.

The structural parameters (world size, latent geometry, how strongly affinity, duration,
position and tag repetition act) are chosen by hand; the global intercepts and spreads marked
"calibrated" are fitted by :func:`onerec.sim.calibrate.calibrate` so that the simulator's
marginals under uniformly random exposure match the KuaiRand-1K random-exposure log. The
defaults below are the output of that fit (``onerec sim --compare-kuairand --calibrate``; the
table is in ``docs/reward_and_alignment.md``).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from onerec.config import StrictModel

SESSION_TARGETS = ("swt", "vtr", "wtr", "ltr")
"""Session-level targets: session watch time (seconds), view-through (long-view) rate,
follow rate and like rate, as in the OneRec paper."""


class LoggingPolicyConfig(StrictModel):
    """The policy whose exposures the logs record: a mix of uniform and personalised picks.

    Each slot of a logged session is drawn (without repeats inside the session) from
    ``epsilon / num_items + (1 - epsilon) * softmax(temperature_inverse * affinity)``.
    """

    epsilon: float = Field(default=0.3, ge=0.0, le=1.0)
    temperature_inverse: float = Field(default=1.0, ge=0.0)
    sessions_per_user: int = Field(default=12, ge=1)
    session_length: int = Field(default=5, ge=1)
    start_timestamp_s: int = 1_650_585_600  # 2022-04-22 00:00 UTC, the KuaiRand-1K window
    mean_gap_between_sessions_s: float = Field(default=6 * 3600.0, gt=0)


class SimConfig(StrictModel):
    """A synthetic world of users and items with known expected feedback."""

    seed: int = 0
    num_users: int = Field(default=1000, ge=1)
    num_items: int = Field(default=2000, ge=2)
    num_tags: int = Field(default=24, ge=1)
    latent_dim: int = Field(default=16, ge=1)
    tag_spread: float = Field(default=0.6, ge=0.0)  # item noise around its tag centroid
    interests_per_user: int = Field(default=2, ge=1)  # tag centroids mixed into a user vector
    user_spread: float = Field(default=0.5, ge=0.0)
    affinity_scale: float = Field(default=1.5, gt=0.0)  # std of the personal part of affinity
    item_quality_std: float = Field(default=0.5, ge=0.0)  # std of the item-only part of affinity

    # Durations: log-normal (calibrated to KuaiRand-1K durations > 0).
    duration_log_mean: float = 11.1364
    duration_log_std: float = Field(default=1.0335, gt=0.0)
    min_duration_ms: float = Field(default=3000.0, gt=0.0)
    max_duration_ms: float = Field(default=1_200_000.0, gt=0.0)

    # Engagement (a "click": the user stays on the video).
    click_bias: float = -2.166  # calibrated
    click_affinity: float = 1.0
    position_fatigue: float = Field(
        default=0.1, ge=0.0
    )  # logit penalty per earlier item in the session
    repeat_tag_penalty: float = Field(
        default=0.7, ge=0.0
    )  # logit penalty per earlier item with the same tag

    # Watch ratio when engaged: log(play / duration) ~ N(mean, std), capped at watch_ratio_cap.
    engaged_log_ratio_bias: float = -2.066  # calibrated
    engaged_log_ratio_affinity: float = 0.4
    engaged_log_ratio_duration_slope: float = -0.6  # per unit of standardised log-duration
    engaged_log_ratio_std: float = Field(default=0.8716, gt=0.0)  # calibrated
    watch_ratio_cap: float = Field(default=2.5, ge=1.0)

    # Play time when the user skips: log(play_ms) ~ N(mean, std), capped at the duration.
    skip_log_play_mean: float = 7.4702  # calibrated
    skip_log_play_std: float = Field(default=0.5968, gt=0.0)  # calibrated

    # KuaiRand's rule: a long view is a play of at least 18 s or of the whole video.
    long_view_threshold_ms: float = Field(default=18_000.0, gt=0.0)

    # Like and follow happen only after engagement, logistic in affinity.
    like_bias: float = -5.9711  # calibrated
    like_affinity: float = 1.0
    follow_bias: float = -9.6196  # calibrated
    follow_affinity: float = 1.0

    logging: LoggingPolicyConfig = Field(
        default_factory=lambda: LoggingPolicyConfig.model_validate({})
    )

    @model_validator(mode="after")
    def _check_ranges(self) -> SimConfig:
        if self.min_duration_ms >= self.max_duration_ms:
            raise ValueError("min_duration_ms must be below max_duration_ms")
        if self.logging.session_length > self.num_items:
            raise ValueError("logging.session_length cannot exceed num_items")
        return self
