"""Service bundle: build -> load round trip, integrity checks, refusal of inconsistent parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from onerec.errors import CheckpointError
from onerec.io import atomic_write_json, read_json
from onerec.model import GeneratorConfig, OneRecGenerator
from onerec.serve import (
    SemanticIds,
    ServeConfig,
    build_bundle,
    layout,
    load_bundle,
    read_generator_config,
)
from onerec.serve.smoke import random_generator_dir, random_retrieval_dir
from onerec.training import save_model_dir

from .tiny_world import CODEBOOK_SIZES, GENERATOR_OVERRIDES, NUM_ITEMS, make_dataset


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory, tiny_dataset):  # type: ignore[no-untyped-def]
    """A generator dir (+ its semantic ids) and a CRM dir for the tiny data set."""
    root = tmp_path_factory.mktemp("parts")
    ids = random_generator_dir(
        root / "gen", NUM_ITEMS, "tiny", CODEBOOK_SIZES, **GENERATOR_OVERRIDES
    )
    crm = random_retrieval_dir(root / "crm", tiny_dataset, max_history=8)
    return root / "gen", ids, crm


def test_round_trip_holds_tables_models_and_hashes(bundle_dir: Path, tiny_dataset) -> None:  # type: ignore[no-untyped-def]
    manifest = read_json(bundle_dir / layout.MANIFEST_FILE)
    assert manifest["format"] == layout.BUNDLE_FORMAT
    assert set(manifest["parts"]) == {"generator", "retrieval"}
    for name in (
        "items.parquet",
        "user_histories.parquet",
        "generator/model.safetensors",
        "generator/semantic_ids.safetensors",
        "retrieval/item_index.faiss",
    ):
        assert name in manifest["files"], name
    bundle = load_bundle(bundle_dir)
    assert bundle.items.item_ids == tiny_dataset.items["item_id"].to_list()
    for user_idx, seq in enumerate(tiny_dataset.sequences()):
        np.testing.assert_array_equal(bundle.users.history(user_idx), seq)
    assert bundle.generator is not None and bundle.retrieval is not None
    assert bundle.semantic_codes is not None and bundle.semantic_codes.shape == (NUM_ITEMS, 3)
    # Every item's code tuple walks the trie back to that item.
    trie_last = bundle.generator.trie.tables
    for item, codes in enumerate(bundle.semantic_codes):
        node = 0
        for level, code in enumerate(codes):
            node = int(trie_last[level][node, code])
        assert node == item
    assert not bundle.generator.model.training


def test_user_histories_can_be_given(tmp_path: Path, parts) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset()
    gen_dir, ids, _ = parts
    custom = [np.array([u % NUM_ITEMS, (u + 1) % NUM_ITEMS]) for u in range(dataset.num_users)]
    custom[0] = np.array([], dtype=np.int64)  # a user with no engaged item
    out = build_bundle(
        tmp_path / "b", dataset, generator_dir=gen_dir, semantic_ids=ids, user_histories=custom
    )
    bundle = load_bundle(out)
    np.testing.assert_array_equal(bundle.users.history(3), [3, 4])
    assert bundle.retrieval is None and bundle.generator is not None
    # Cold start: an empty stored history still yields a session (the encoder's context token).
    session = bundle.generator.recommend(bundle.users.history(0), 3, 5, None, 0)
    assert len(set(session.items)) == 3 and session.history_length == 0


def test_tampered_file_is_refused_unless_verification_is_off(tmp_path: Path, parts) -> None:  # type: ignore[no-untyped-def]
    gen_dir, ids, _ = parts
    out = build_bundle(tmp_path / "b", make_dataset(), generator_dir=gen_dir, semantic_ids=ids)
    items_path = out / "items.parquet"
    items = pl.read_parquet(items_path)
    items.with_columns(pl.col("text").str.to_uppercase()).write_parquet(items_path)
    with pytest.raises(CheckpointError, match="sha256"):
        load_bundle(out)
    unchecked = load_bundle(out, ServeConfig(verify_files=False))
    assert unchecked.items.describe(1)["text"] == "VIDEO NUMBER 1"
    items_path.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_bundle(out)


def test_not_a_bundle_and_wrong_version(tmp_path: Path, bundle_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="not a service bundle"):
        load_bundle(tmp_path)
    manifest = read_json(bundle_dir / layout.MANIFEST_FILE)
    (tmp_path / layout.MANIFEST_FILE).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(CheckpointError, match="version 99"):
        load_bundle(tmp_path)


def test_semantic_ids_must_match_items_and_generator(tmp_path: Path, parts) -> None:  # type: ignore[no-untyped-def]
    gen_dir, ids, _ = parts
    dataset = make_dataset()
    short = SemanticIds(ids.codes[:-1], ids.codebook_sizes)
    with pytest.raises(CheckpointError, match="cover 49 items"):
        build_bundle(tmp_path / "a", dataset, generator_dir=gen_dir, semantic_ids=short)
    duplicated = SemanticIds(np.concatenate([ids.codes[:-1], ids.codes[:1]]), ids.codebook_sizes)
    with pytest.raises(CheckpointError, match="not unique"):
        build_bundle(tmp_path / "b", dataset, generator_dir=gen_dir, semantic_ids=duplicated)
    other_sizes = SemanticIds(ids.codes, [4, 4, 5])
    with pytest.raises(CheckpointError, match="codebook sizes"):
        build_bundle(tmp_path / "c", dataset, generator_dir=gen_dir, semantic_ids=other_sizes)
    with pytest.raises(CheckpointError, match="no tokenizer directory"):
        build_bundle(tmp_path / "d", dataset, generator_dir=gen_dir)
    assert not any(p.name in "abcd" for p in tmp_path.iterdir())  # nothing half-written


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path, parts) -> None:  # type: ignore[no-untyped-def]
    _, ids, _ = parts
    wrong = GeneratorConfig.named("tiny", CODEBOOK_SIZES, d_model=16, **GENERATOR_OVERRIDES)
    model_dir = tmp_path / "gen"
    save_model_dir(model_dir, OneRecGenerator(wrong), wrong.model_dump())
    right = GeneratorConfig.named("tiny", CODEBOOK_SIZES, **GENERATOR_OVERRIDES)
    atomic_write_json(model_dir / "config.json", right.model_dump())
    with pytest.raises(CheckpointError, match="does not match"):
        build_bundle(tmp_path / "b", make_dataset(), generator_dir=model_dir, semantic_ids=ids)


def test_generator_config_may_be_nested(tmp_path: Path) -> None:
    config = GeneratorConfig.named("tiny", CODEBOOK_SIZES)
    save_model_dir(
        tmp_path / "m", OneRecGenerator(config), {"model": config.model_dump(), "run": {"lr": 1}}
    )
    assert read_generator_config(tmp_path / "m") == config
    atomic_write_json(tmp_path / "m" / "config.json", {"model": {"d_model": 7}})
    with pytest.raises(CheckpointError, match="no valid GeneratorConfig"):
        read_generator_config(tmp_path / "m")


def test_crm_trained_on_other_items_is_refused(tmp_path: Path, parts) -> None:  # type: ignore[no-untyped-def]
    _, _, crm = parts
    other = make_dataset()
    other.items = other.items.with_columns(other.items["item_id"].str.replace("v", "w"))
    with pytest.raises(CheckpointError, match="another item list"):
        build_bundle(tmp_path / "b", other, retrieval_dir=crm)
    with pytest.raises(CheckpointError, match="needs a generator_dir"):
        build_bundle(tmp_path / "c", other)


def test_history_items_out_of_range_are_refused(tmp_path: Path, parts) -> None:  # type: ignore[no-untyped-def]
    gen_dir, ids, _ = parts
    dataset = make_dataset()
    bad = [np.array([NUM_ITEMS])] + [np.array([0])] * (dataset.num_users - 1)
    with pytest.raises(CheckpointError, match=r"user_histories\[0\]"):
        build_bundle(
            tmp_path / "b", dataset, generator_dir=gen_dir, semantic_ids=ids, user_histories=bad
        )


def test_generator_service_matches_library_beam_search(bundle_dir: Path) -> None:
    """The service's session equals generation.generate_session on the same inputs."""
    from onerec.generation import generate_session

    bundle = load_bundle(bundle_dir)
    service = bundle.generator
    assert service is not None
    history = bundle.users.history(4)
    got = service.recommend(history, session_items=4, beam_width=6, exclude=history, user_idx=4)
    kept = torch.as_tensor(history[-service.max_history :])
    with torch.inference_mode():
        ref = generate_session(
            service.model,
            service.codes[kept].unsqueeze(0),
            torch.ones(1, len(kept), dtype=torch.bool),
            service.trie,
            session_items=4,
            beam_width=6,
            exclude_items=torch.as_tensor(history).unsqueeze(0),
        )
    assert got.items == ref.items[0, 0].tolist()
    assert got.session_score == pytest.approx(float(ref.scores[0, 0]), abs=1e-5)
    # Per-item scores split the session's log-probability.
    assert sum(got.item_scores) == pytest.approx(got.session_score, abs=1e-4)
    assert all(s < 0 for s in got.item_scores)
    assert len(set(got.items)) == 4 and not set(got.items) & set(history.tolist())
