"""Named data sets on the real files in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onerec.data import leave_one_out, load_dataset
from onerec.data.sessions import PositiveRule, SessionConfig, build_sessions
from onerec.data.validation import DuplicateRowsWarning

pytestmark = pytest.mark.shared_data


def test_amazon_beauty_counts_text_and_leave_one_out(shared_data_dir: Path) -> None:
    data = load_dataset("amazon-beauty", data_root=shared_data_dir)
    assert (data.num_users, data.num_items, data.interactions.height) == (22_363, 12_101, 198_502)
    # P5 item k → item_idx k-1
    assert data.items["item_id"][5] == "6"
    assert (
        data.items["text"][5]
        == "cococare coconut oil 100 pure 4 oz | Cococare | Skin Care | Body | Moisturizers | Oils"
    )
    assert (
        data.items["text"][10204]
        == "KONAD Nail Art | Tools & Accessories | Nail Tools | Nail Art Equipment"
    )
    assert data.manifest["stats"]["items_without_textual_id"] == 1
    assert data.manifest["stats"]["items_without_text"] == 0
    split = leave_one_out(data.sequences(), max_history=20)
    assert len(split.test) == 22_363 and split.num_short_users == 0
    # last line of sequences.txt: "22363 6466 9744 3025 10607 10487"
    assert split.test.targets[-1] == 10487 - 1 and split.valid.targets[-1] == 10607 - 1
    assert split.test.histories[-1].tolist() == [6465, 9743, 3024, 10606]
    assert max(len(h) for h in split.test.histories) == 20


def test_amazon_sports_counts(shared_data_dir: Path) -> None:
    data = load_dataset("amazon-sports", data_root=shared_data_dir)
    assert (data.num_users, data.num_items, data.interactions.height) == (35_598, 18_357, 296_337)
    assert (
        data.items["text"][0]
        == "ghost armorers tool 332 punch hunting fishing | Ghost | Hunting & Fishing | Hunting | Gun Maintenance | Gunsmithing Tools"
    )


def test_kuairand_1k_matches_embedded_demo(shared_data_dir: Path) -> None:
    with pytest.warns(DuplicateRowsWarning):
        real = load_dataset("kuairand-1k", data_root=shared_data_dir)
    with pytest.warns(DuplicateRowsWarning):
        demo = load_dataset("kuairand-demo")
    assert (real.num_users, real.num_items) == (1_000, 7_388)
    # 43,028 log rows, one exact duplicate (lines 40,984-40,985) dropped
    assert real.interactions.height == 43_027
    assert real.manifest["validation"]["dropped_duplicate_rows"] == 1
    assert real.manifest["validation"]["duplicate_lines_first_10"] == [40_985]
    assert real.items["item_id"].to_list() == [str(k) for k in range(7_388)]
    assert real.interactions.equals(demo.interactions) and real.items.equals(demo.items)
    sessions = build_sessions(
        real.interactions, SessionConfig(positive=PositiveRule.kuairand_default())
    )
    assert len(sessions) > 0 and sessions.targets.shape[1] == 5


def test_movielens(shared_data_dir: Path) -> None:
    small = load_dataset("ml-100k", data_root=shared_data_dir)
    assert (small.num_users, small.num_items, small.interactions.height) == (943, 1_682, 100_000)
    assert small.manifest["timestamp_unit"] == "s"
    big = load_dataset("ml-1m", data_root=shared_data_dir)
    assert big.interactions.height == 200_042
    assert big.items["text"][0] == "Toy Story (1995) | Animation, Children's, Comedy"
    lengths = np.bincount(big.interactions["user_idx"].to_numpy())
    assert big.manifest["sequence_lengths"]["users_with_one_interaction"] == int(
        (lengths == 1).sum()
    )
