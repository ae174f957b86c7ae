"""The ledger root: RFC 9162 tree heads, streamed, against the RFC's recursive definition."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from clearhouse.domain.merkle import FIRST_PREVIOUS_ROOT, TreeBuilder, period_root, tree_head


def rfc9162_head(leaves: list[bytes]) -> bytes:
    """MTH as RFC 9162 section 2.1.1 defines it, recursively, straight from the text."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + rfc9162_head(leaves[:k]) + rfc9162_head(leaves[k:])).digest()


@given(st.lists(st.binary(max_size=40), max_size=70))
def test_the_streamed_head_is_the_rfc_9162_head(leaves: list[bytes]) -> None:
    builder = TreeBuilder()
    for leaf in leaves:
        builder.add(leaf)
    assert builder.size == len(leaves)
    assert builder.head() == rfc9162_head(leaves)
    assert tree_head(leaves) == builder.head()


@given(st.lists(st.binary(max_size=40), max_size=70), st.lists(st.integers(0, 9), max_size=20))
def test_leaves_added_in_batches_make_the_rfc_9162_head(
    leaves: list[bytes], cuts: list[int]
) -> None:
    """Closing a period adds its lines a batch at a time (``add_all``), of any sizes."""
    builder, taken = TreeBuilder(), 0
    for size in [*cuts, len(leaves)]:
        builder.add_all(leaves[taken : taken + size])
        taken = min(taken + size, len(leaves))
    assert builder.size == len(leaves)
    assert builder.head() == rfc9162_head(leaves)


def test_the_empty_tree_and_the_chain() -> None:
    assert tree_head([]) == hashlib.sha256(b"").digest()
    head = tree_head([b"entry"])
    assert head == hashlib.sha256(b"\x00entry").digest()
    first = period_root(FIRST_PREVIOUS_ROOT, head)
    assert first == hashlib.sha256(bytes(32) + head).digest()
    assert period_root(first, head) != first


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=30), st.data())
def test_any_changed_or_reordered_leaf_changes_the_head(
    leaves: list[bytes], data: st.DataObject
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(leaves) - 1))
    changed = [*leaves]
    changed[index] = leaves[index] + b"!"
    assert tree_head(changed) != tree_head(leaves)
    if leaves != leaves[::-1]:
        assert tree_head(leaves[::-1]) != tree_head(leaves)
