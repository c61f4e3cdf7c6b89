import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from onerec.tokenizer.trie import PrefixTrie


def _unique_codes(draw_rows: list[tuple[int, int, int]]) -> np.ndarray:
    return np.unique(np.asarray(draw_rows, dtype=np.int64).reshape(-1, 3), axis=0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(*(st.integers(0, 3),) * 3), min_size=1, max_size=40))
def test_every_item_decodes_to_itself_and_paths_are_valid(rows):
    codes = _unique_codes(rows)
    trie = PrefixTrie.from_codes(codes, [4, 4, 4])
    for item, tup in enumerate(codes.tolist()):
        assert trie.lookup(tup) == item
        for depth in range(3):
            assert tup[depth] in trie.allowed_next(tup[:depth])
    # every full path reachable through allowed_next names exactly one item
    seen = set()
    for a in trie.allowed_next([]):
        for b in trie.allowed_next([a]):
            for c in trie.allowed_next([a, b]):
                item = trie.lookup([a, b, c])
                assert item is not None and item not in seen
                seen.add(item)
    assert seen == set(range(len(codes)))


def test_invalid_prefixes_and_round_trip():
    codes = np.array([[0, 1, 2], [0, 1, 3], [2, 0, 0]])
    trie = PrefixTrie.from_codes(codes, [3, 2, 4])
    assert trie.allowed_next([]).tolist() == [0, 2]
    assert trie.allowed_next([0]).tolist() == [1]
    assert trie.allowed_next([1]).size == 0
    assert trie.lookup([0, 1, 0]) is None
    again = PrefixTrie.from_tensors(trie.tensors())
    for a, b in zip(again.level_tables, trie.level_tables, strict=True):
        np.testing.assert_array_equal(a, b)


def test_rejects_duplicates_and_out_of_range():
    import pytest

    with pytest.raises(ValueError, match="unique"):
        PrefixTrie.from_codes(np.array([[0, 0], [0, 0]]), [2, 2])
    with pytest.raises(ValueError, match="level 1"):
        PrefixTrie.from_codes(np.array([[0, 5]]), [2, 2])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 4), st.integers(0, 1)), min_size=1, max_size=30
    )
)
def test_transition_table_matches_level_tables(rows):
    codes = np.unique(np.asarray(rows, dtype=np.int64), axis=0)
    trie = PrefixTrie.from_codes(codes, [3, 5, 2])  # uneven sizes: padding columns are -1
    table, offsets = trie.transition_table()
    assert table.shape == (offsets[-1], 5) and offsets.tolist()[0] == 0
    assert trie.num_items == len(codes)
    for item, tup in enumerate(codes.tolist()):
        row = 0
        for level, code in enumerate(tup):
            assert offsets[level] <= row < offsets[level + 1]
            row = int(table[row, code])
        assert row == item  # the last hop names the item
    # codes beyond a level's codebook are never valid
    assert (table[: offsets[1], 3:] == -1).all() and (table[offsets[2] :, 2:] == -1).all()
    assert trie.equals(PrefixTrie.from_tensors(trie.tensors()))
    if len(codes) > 1:
        assert not trie.equals(PrefixTrie.from_codes(codes[:-1], [3, 5, 2]))
