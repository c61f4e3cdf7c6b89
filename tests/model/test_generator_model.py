"""Generator shapes, heads, sequence log-probabilities, encoder padding and named sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from onerec.model import (
    NAMED_SIZES,
    GeneratorConfig,
    OneRecGenerator,
    parameter_counts,
    print_size_table,
    session_decoder_sequences,
)
from onerec.model.synthetic import random_catalogue, random_histories, random_model
from onerec.model.targets import IGNORE_INDEX


def test_session_decoder_sequence_layout() -> None:
    # Two levels with sizes (3, 2): token ids 1..3 for level 0, 4..5 for level 1; BOS = 0.
    codes = torch.tensor([[[2, 1], [0, 0]], [[1, 0], [0, 0]]])
    mask = torch.tensor([[True, True], [True, False]])
    decoder_input, targets, input_mask = session_decoder_sequences(
        codes, mask, torch.tensor([0, 3])
    )
    # full row 0: [BOS, 3, 5, BOS, 1, 4] -> input drops the last token
    assert decoder_input.tolist() == [[0, 3, 5, 0, 1], [0, 2, 4, 0, 0]]
    assert targets.tolist() == [[2, 1, IGNORE_INDEX, 0, 0], [1, 0] + [IGNORE_INDEX] * 3]
    assert input_mask.tolist() == [[True] * 5, [True, True, True, False, False]]


def test_forward_shapes_and_level_masking() -> None:
    sizes = [6, 5, 3]
    codes, _ = random_catalogue(40, sizes)
    model = random_model(sizes)
    history_codes, history_mask, _ = random_histories(codes, users=3, max_len=5)
    session = torch.as_tensor(codes[[[0, 1], [2, 3], [4, 5]]])
    decoder_input, _, _ = session_decoder_sequences(
        session, torch.ones(3, 2, dtype=torch.bool), model.code_offsets
    )
    out = model(history_codes, history_mask, decoder_input)
    assert out.logits.shape == (3, 7, 6)
    # position 2 predicts level 2 (3 codes): entries 3..5 do not exist
    assert torch.isinf(out.logits[:, 2, 3:]).all() and torch.isfinite(out.logits[:, 2, :3]).all()
    assert torch.isinf(out.logits[:, 1, 5:]).all()
    assert out.expert_load is not None and out.expert_load.shape == (1, 4)
    assert out.aux_loss.dim() == 0


@torch.no_grad()
def test_sequence_logprob_sums_level_logprobs() -> None:
    sizes = [4, 4, 2]
    codes, _ = random_catalogue(20, sizes)
    model = random_model(sizes)
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=4)
    session = torch.as_tensor(codes[[[3, 5], [7, 0]]])
    mask = torch.tensor([[True, True], [True, False]])
    got = model.sequence_logprob(history_codes, history_mask, session, mask)
    # By hand: step through the decoder, summing the log-softmax of each code.
    for row in range(2):
        tokens = [0]
        total = 0.0
        for item in range(int(mask[row].sum())):
            for level in range(3):
                logits = model(
                    history_codes[row : row + 1],
                    history_mask[row : row + 1],
                    torch.tensor([tokens]),
                ).logits
                logp = torch.log_softmax(logits[0, -1, : sizes[level]], dim=-1)
                code = int(session[row, item, level])
                total += float(logp[code])
                tokens.append(1 + model.config.code_offsets[level] + code)
            tokens.append(0)
        assert math.isclose(float(got[row]), total, rel_tol=1e-9)


def test_encoder_is_invariant_to_extra_left_padding() -> None:
    sizes = [5, 5]
    codes, _ = random_catalogue(20, sizes)
    model = random_model(sizes)
    history_codes, history_mask, _ = random_histories(codes, users=3, max_len=4)
    wide_codes = torch.cat([torch.zeros(3, 3, 2, dtype=torch.long), history_codes], dim=1)
    wide_mask = torch.cat([torch.zeros(3, 3, dtype=torch.bool), history_mask], dim=1)
    narrow = model.encode(history_codes, history_mask)
    wide = model.encode(wide_codes, wide_mask)
    torch.testing.assert_close(
        wide.memory[:, 3:][narrow.memory_mask], narrow.memory[narrow.memory_mask]
    )


def test_user_feature_token_changes_memory() -> None:
    sizes = [5, 5]
    codes, _ = random_catalogue(20, sizes)
    model = random_model(sizes, num_user_buckets=7)
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=3)
    a = model.encode(history_codes, history_mask, torch.tensor([1, 2])).memory
    b = model.encode(history_codes, history_mask, torch.tensor([3, 4])).memory
    assert not torch.allclose(a, b)


def test_named_sizes_and_active_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    sizes = [256, 256, 256, 8]
    for name in NAMED_SIZES:
        config = GeneratorConfig.named(name, sizes)
        counts = parameter_counts(OneRecGenerator(config))
        per_expert = (
            2 * config.d_model * config.expert_hidden + config.expert_hidden + config.d_model
        )
        unused = config.decoder_layers * (config.num_experts - config.top_k) * per_expert
        assert counts.total - counts.active == unused
        dense = parameter_counts(OneRecGenerator(GeneratorConfig.named(name, sizes, ffn="dense")))
        assert dense.active == dense.total
        # Equal active matmul work per decoder token (routers aside).
        router = config.decoder_layers * config.d_model * config.num_experts
        assert counts.decoder_matmul_active - router == dense.decoder_matmul_active
    print_size_table(sizes)
    printed = capsys.readouterr().out
    assert all(name in printed for name in NAMED_SIZES) and "active" in printed


def test_config_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(codebook_sizes=[4], d_model=30, num_heads=4)
    with pytest.raises(ValueError):
        GeneratorConfig(codebook_sizes=[4], num_experts=2, top_k=3)


def test_hashed_item_embedding_is_deterministic_and_item_specific() -> None:
    sizes = [16, 16, 4]
    codes, _ = random_catalogue(500, sizes)
    a = random_model(sizes, seed=0, code_hash_buckets=701)
    b = random_model(sizes, seed=1, code_hash_buckets=701)
    rows_a = a.encoder.item_embedding.hash_rows(torch.as_tensor(codes))
    rows_b = b.encoder.item_embedding.hash_rows(torch.as_tensor(codes))
    assert torch.equal(rows_a, rows_b)  # same hashes in every instance (saved models reload)
    assert rows_a.min() >= 0 and rows_a.max() < 701
    assert len({tuple(r) for r in rows_a.tolist()}) == 500  # no two items share both buckets
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=3)
    before = a.encode(history_codes, history_mask).memory
    with torch.no_grad():
        a.encoder.item_embedding.hash_table.weight.normal_()  # type: ignore[union-attr]
    assert not torch.allclose(before, a.encode(history_codes, history_mask).memory)


def test_code_embeddings_start_from_centroid_geometry() -> None:
    sizes = [6, 5, 3]
    model = random_model(sizes, dtype=torch.float32)  # d_model 32
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(4, 50))  # centroids live in a 4-D subspace of R^50
    centroids = rng.normal(size=(2, 6, 4)) @ basis  # two k-means levels of 6 codes each
    model.init_code_embeddings(centroids)
    table = model.decoder.token_table.weight.detach().numpy()
    offsets = model.config.code_offsets
    rows = np.concatenate(
        [table[1 + offsets[0] : 1 + offsets[0] + 6], table[1 + offsets[1] : 1 + offsets[1] + 5]]
    )
    points = np.concatenate([centroids[0], centroids[1, :5]])
    # A PCA projection keeps every pairwise distance up to one global scale.
    ratio = pdist(rows) / pdist(points)
    assert np.allclose(ratio, ratio[0], rtol=1e-3)
    assert np.isclose(np.linalg.norm(rows, axis=1).mean(), 0.02 * np.sqrt(32), rtol=0.1)
    # The disambiguation level (no centroids) keeps its random rows.
    untouched = random_model(sizes, dtype=torch.float32).decoder.token_table.weight.detach().numpy()
    last = slice(1 + offsets[2], 1 + offsets[2] + 3)
    assert np.allclose(table[last], untouched[last])


def pdist(points: np.ndarray) -> np.ndarray:
    diff = points[:, None, :] - points[None, :, :]
    upper = np.triu_indices(len(points), k=1)
    return np.sqrt((diff**2).sum(-1))[upper]
