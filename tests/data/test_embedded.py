"""The embedded KuaiRand data ships inside the package and prepares with no path given."""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

import pytest

from onerec.data import load_dataset
from onerec.data.validation import DuplicateRowsWarning

LOG_SHA256 = "e98841eabb3b078c812c4646bf0c5e3f0c947a4183dd950cb091e32377b9a849"  # decompressed log


def test_embedded_files_are_package_resources() -> None:
    folder = resources.files("onerec.data") / "embedded" / "kuairand"
    names = {p.name for p in folder.iterdir()}
    assert {
        "log_random_4_22_to_5_08_1k.csv.gz",
        "video_features_basic_pure.csv.gz",
        "ATTRIBUTION.md",
        "LICENSE-DATA.md",
    } <= names
    log = gzip.decompress((folder / "log_random_4_22_to_5_08_1k.csv.gz").read_bytes())
    assert hashlib.sha256(log).hexdigest() == LOG_SHA256
    attribution = (folder / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert (
        "CC BY-SA 4.0" in attribution
        and "https://kuairand.com" in attribution
        and "CIKM 2022" in attribution
    )


def test_kuairand_demo_loads_without_a_path() -> None:
    with pytest.warns(DuplicateRowsWarning, match="line 40985"):
        data = load_dataset("kuairand-demo")
    assert (data.num_users, data.num_items, data.interactions.height) == (1_000, 7_388, 43_027)
    assert data.feedback_columns == [
        "play_time_ms",
        "duration_ms",
        "click",
        "like",
        "follow",
        "long_view",
        "comment",
        "forward",
        "hate",
    ]
    assert data.items["text"][0] == "author 7349781 music 9155697141 tags 39 duration 87s"
    assert "CC BY-SA 4.0" in data.manifest["source"]["description"]
