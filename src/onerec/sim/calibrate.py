"""Calibrate the simulator's global parameters to KuaiRand-1K and compare the two side by side.

KuaiRand-1K's log holds *randomly exposed* impressions (one random video inserted in a feed),
so its marginals are those of uniform exposure at the first position with no session context.
The simulator is therefore measured the same way: uniformly random (user, item) pairs shown
alone. Fitted, in order (each a 1-D monotone root find by bisection):

1. duration log-mean / log-std  ← mean and std of log(duration_ms) over rows with duration > 0;
2. skip play log-mean / log-std ← median and p10–p90 spread of play time of non-clicked rows;
3. click_bias                   ← click rate;
4. engaged log-ratio bias / std ← long-view rate and the p90 of clicked play time (alternated);
5. like_bias, follow_bias       ← like and follow rates.

Everything else in the comparison table (overall play-time and watch-ratio quantiles, clicked
p10/p50, …) is *not* fitted and shows how well the model's shape matches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from onerec.errors import DataValidationError
from onerec.sim.config import SimConfig
from onerec.sim.world import UserSimulator

KUAIRAND_1K_LOG = Path("kuairand/random_1k/log_random_4_22_to_5_08_1k.csv.gz")
Z90 = 1.2815515655446004  # Φ⁻¹(0.9)
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
FITTED = {
    "click rate",
    "long-view rate",
    "like rate",
    "follow rate",
    "duration log-mean",
    "duration log-std",
    "play ms, not clicked, p10",
    "play ms, not clicked, p50",
    "play ms, not clicked, p90",
    "play ms, clicked, p90",
}


@dataclass(frozen=True)
class FeedbackSample:
    """Per-impression feedback arrays (KuaiRand rows, or simulated random exposures)."""

    click: np.ndarray
    long_view: np.ndarray
    like: np.ndarray
    follow: np.ndarray
    play_time_ms: np.ndarray
    duration_ms: np.ndarray


def read_kuairand_feedback(path: str | Path) -> FeedbackSample:
    """Read the KuaiRand-1K random-exposure log (``log_random_4_22_to_5_08_1k.csv[.gz]``)."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(
            "file not found", path=str(path), hint="point --kuairand at the 1K random log"
        )
    frame = pl.read_csv(path)
    needed = ("is_click", "long_view", "is_like", "is_follow", "play_time_ms", "duration_ms")
    for column in needed:
        if column not in frame.columns:
            raise DataValidationError(
                "missing column",
                path=str(path),
                field=column,
                hint="expected the KuaiRand log format",
            )
    return FeedbackSample(*(frame[c].to_numpy().astype(np.float64) for c in needed))


def marginals(sample: FeedbackSample) -> dict[str, float]:
    """The summary statistics compared between KuaiRand and the simulator."""
    out = {
        "click rate": sample.click.mean(),
        "long-view rate": sample.long_view.mean(),
        "like rate": sample.like.mean(),
        "follow rate": sample.follow.mean(),
    }
    has_duration = sample.duration_ms > 0
    log_duration = np.log(sample.duration_ms[has_duration])
    out["duration log-mean"] = log_duration.mean()
    out["duration log-std"] = log_duration.std()
    for q in (0.1, 0.5, 0.9):
        out[f"duration ms p{round(q * 100)}"] = np.quantile(sample.duration_ms[has_duration], q)
    for q in QUANTILES:
        out[f"play ms p{round(q * 100)}"] = np.quantile(sample.play_time_ms, q)
    clicked = sample.click > 0.5
    for label, mask in (("not clicked", ~clicked), ("clicked", clicked)):
        for q in (0.1, 0.5, 0.9):
            out[f"play ms, {label}, p{round(q * 100)}"] = np.quantile(sample.play_time_ms[mask], q)
    ratio = sample.play_time_ms[has_duration] / sample.duration_ms[has_duration]
    for q in (0.25, 0.5, 0.75, 0.9):
        out[f"watch ratio p{round(q * 100)}"] = np.quantile(ratio, q)
    out["watch ratio >= 1 share"] = (ratio >= 1.0).mean()
    return {k: float(v) for k, v in out.items()}


def random_exposure_pairs(
    simulator: UserSimulator, num_pairs: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Uniformly random (user ``[N]``, single-item session ``[N, 1]``) pairs."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, simulator.num_users, size=num_pairs)
    items = rng.integers(0, simulator.num_items, size=(num_pairs, 1))
    return users, items


def simulated_random_exposure(
    simulator: UserSimulator, num_pairs: int = 100_000, seed: int = 0
) -> FeedbackSample:
    """Sampled feedback of ``num_pairs`` uniformly random single-item exposures."""
    users, items = random_exposure_pairs(simulator, num_pairs, seed)
    fb = simulator.sample_feedback(users, items, np.random.default_rng(seed + 1))
    return FeedbackSample(
        click=fb["click"][:, 0].astype(np.float64),
        long_view=fb["long_view"][:, 0].astype(np.float64),
        like=fb["like"][:, 0].astype(np.float64),
        follow=fb["follow"][:, 0].astype(np.float64),
        play_time_ms=np.rint(fb["play_time_ms"][:, 0]),
        duration_ms=np.rint(simulator.item_duration_ms[items[:, 0]]),
    )


def _bisect(
    fn: Callable[[float], float], target: float, lo: float, hi: float, iters: int = 40
) -> float:
    """Solve ``fn(x) = target`` for increasing ``fn`` on ``[lo, hi]`` (clamped at the ends)."""
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if fn(mid) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def calibrate(
    config: SimConfig,
    target: dict[str, float],
    num_pairs: int = 50_000,
    rounds: int = 3,
    seed: int = 0,
) -> SimConfig:
    """Return ``config`` with its global parameters fitted to ``target`` (see module docstring).

    ``target`` is :func:`marginals` of the real log. Rates are matched with the simulator's
    exact expectations; the clicked-play p90 with fixed normal draws (common random numbers),
    so every objective is deterministic and monotone in its parameter.
    """
    base = UserSimulator(config)
    users, items = random_exposure_pairs(base, num_pairs, seed)
    normals = np.random.default_rng(seed + 1).standard_normal(num_pairs)
    skip_sigma = (
        np.log(target["play ms, not clicked, p90"]) - np.log(target["play ms, not clicked, p10"])
    ) / (2 * Z90)
    cfg = config.model_copy(
        update={
            "duration_log_mean": target["duration log-mean"],
            "duration_log_std": target["duration log-std"],
            "skip_log_play_mean": float(np.log(target["play ms, not clicked, p50"])),
            "skip_log_play_std": float(skip_sigma),
        }
    )

    def expected(update: dict[str, float], key: str) -> float:
        sim = base.with_config(cfg.model_copy(update=update))
        return float(sim.expected_item_feedback(users, items)[key].mean())

    def clicked_play_p90(update: dict[str, float]) -> float:
        sim = base.with_config(cfg.model_copy(update=update))
        q = sim._item_model(users, items)
        log_ratio = q["ratio_mean"][:, 0] + sim.config.engaged_log_ratio_std * normals
        play = q["duration"][:, 0] * np.minimum(np.exp(log_ratio), sim.config.watch_ratio_cap)
        # Weight each pair by its click probability: the clicked rows' play-time distribution.
        weights = q["click_prob"][:, 0]
        order = np.argsort(play)
        cumulative = np.cumsum(weights[order]) / weights.sum()
        return float(play[order][np.searchsorted(cumulative, 0.9)])

    click_bias = _bisect(
        lambda b: expected({"click_bias": b}, "click"), target["click rate"], -15.0, 10.0
    )
    cfg = cfg.model_copy(update={"click_bias": click_bias})
    for _ in range(rounds):
        ratio_bias = _bisect(
            lambda b: expected({"engaged_log_ratio_bias": b}, "long_view"),
            target["long-view rate"],
            -10.0,
            5.0,
        )
        cfg = cfg.model_copy(update={"engaged_log_ratio_bias": ratio_bias})
        ratio_std = _bisect(
            lambda s: clicked_play_p90({"engaged_log_ratio_std": s}),
            target["play ms, clicked, p90"],
            0.05,
            4.0,
        )
        cfg = cfg.model_copy(update={"engaged_log_ratio_std": ratio_std})
    like_bias = _bisect(
        lambda b: expected({"like_bias": b}, "like"), target["like rate"], -20.0, 10.0
    )
    follow_bias = _bisect(
        lambda b: expected({"follow_bias": b}, "follow"), target["follow rate"], -20.0, 10.0
    )
    return SimConfig.model_validate(
        cfg.model_copy(update={"like_bias": like_bias, "follow_bias": follow_bias}).model_dump()
    )


def comparison_rows(
    real: dict[str, float], simulated: dict[str, float]
) -> list[tuple[str, float, float, bool]]:
    """``(statistic, KuaiRand, simulator, fitted?)`` for every statistic in both."""
    return [
        (name, real[name], simulated[name], name in FITTED) for name in real if name in simulated
    ]


def _fmt(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.3f}"
    return f"{value:.4g}"


def comparison_markdown(rows: list[tuple[str, float, float, bool]]) -> str:
    """The side-by-side table as Markdown."""
    lines = ["| statistic | KuaiRand-1K | simulator | fitted |", "|---|---:|---:|:---:|"]
    lines += [
        f"| {name} | {_fmt(real)} | {_fmt(sim)} | {'yes' if fitted else ''} |"
        for name, real, sim, fitted in rows
    ]
    return "\n".join(lines) + "\n"
