"""Calibration recovers known marginals; the shipped defaults match KuaiRand-1K."""

from __future__ import annotations

import pytest

from onerec.sim import SimConfig, UserSimulator, calibrate, marginals, read_kuairand_feedback
from onerec.sim.calibrate import (
    KUAIRAND_1K_LOG,
    comparison_markdown,
    comparison_rows,
    simulated_random_exposure,
)


def test_calibrate_recovers_the_rates_of_a_known_world() -> None:
    small = dict(num_users=60, num_items=300, num_tags=6, seed=2)
    truth = SimConfig(
        **small, click_bias=-1.0, like_bias=-3.0, follow_bias=-4.0, engaged_log_ratio_bias=-1.5
    )
    target = marginals(simulated_random_exposure(UserSimulator(truth), num_pairs=40_000, seed=9))
    fitted = calibrate(SimConfig(**small), target, num_pairs=8_000, rounds=2)
    got = marginals(simulated_random_exposure(UserSimulator(fitted), num_pairs=40_000, seed=10))
    for name in ("click rate", "long-view rate", "like rate"):
        assert got[name] == pytest.approx(target[name], rel=0.1), name
    assert fitted.click_bias == pytest.approx(-1.0, abs=0.15)


def test_comparison_table_lists_every_statistic() -> None:
    stats = {"click rate": 0.17, "play ms p50": 2082.0}
    table = comparison_markdown(comparison_rows(stats, {"click rate": 0.16, "play ms p50": 2000.0}))
    assert "| click rate | 0.17 | 0.16 | yes |" in table
    assert "| play ms p50 | 2,082 | 2,000 |  |" in table


@pytest.mark.shared_data
def test_default_config_matches_kuairand_rates(shared_data_dir) -> None:
    path = shared_data_dir / KUAIRAND_1K_LOG
    if not path.is_file():
        pytest.skip(f"{path} missing")
    real = marginals(read_kuairand_feedback(path))
    simulated = marginals(simulated_random_exposure(UserSimulator(SimConfig()), num_pairs=100_000))
    for name, rel in (
        ("click rate", 0.05),
        ("long-view rate", 0.05),
        ("like rate", 0.15),
        ("play ms p50", 0.1),
    ):
        assert simulated[name] == pytest.approx(real[name], rel=rel), name
    assert simulated["follow rate"] < 5 * real["follow rate"] + 1e-4
