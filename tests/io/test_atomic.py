import os
import stat

import pytest

from onerec.io import atomic_dir, atomic_write_json, read_json


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_old_content_and_is_not_private(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    mode = stat.S_IMODE(os.stat(target).st_mode)
    assert mode & stat.S_IRGRP, oct(mode)


def test_atomic_write_json_round_trip(tmp_path):
    path = tmp_path / "x" / "m.json"
    atomic_write_json(path, {"a": 1, "b": [1.5]})
    assert read_json(path) == {"a": 1, "b": [1.5]}
    assert stat.S_IMODE(os.stat(path).st_mode) & stat.S_IRGRP
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]
