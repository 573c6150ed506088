"""The import's key sets: a bitmap that behaves as a set of ints, whatever keys a file names."""
from hypothesis import given, strategies as st

from portal.transfer.keys import BITMAP_LIMIT, Keys

KEY = st.one_of(st.integers(0, 5000), st.integers(-2**40, 2**40), st.sampled_from([BITMAP_LIMIT - 1, BITMAP_LIMIT]))


@given(st.lists(KEY), st.lists(KEY))
def test_keys_behave_as_a_set_of_ints(added, asked):
    keys = Keys(added[: len(added) // 2])
    keys |= added[len(added) // 2:]
    assert list(keys) == sorted(set(added)) and len(keys) == len(set(added)) and bool(keys) == bool(added)
    assert [key in keys for key in asked] == [key in set(added) for key in asked]
    assert "c1001" not in keys and keys == set(added) and keys == Keys(reversed(added))


def test_a_huge_key_does_not_grow_the_bitmap():
    keys = Keys([1, 2**31 - 1])
    assert len(keys.bits) < 16 and list(keys) == [1, 2**31 - 1]
