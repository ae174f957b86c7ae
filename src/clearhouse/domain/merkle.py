"""The period's ledger root: an RFC 9162 Merkle tree over canonical entries, chained by period.

Leaf hash = SHA-256(0x00 ‖ entry), node hash = SHA-256(0x01 ‖ left ‖ right), the tree over n
leaves splits at the largest power of two below n, and the empty tree's head is SHA-256 of
nothing (RFC 9162 section 2.1.1). ``TreeBuilder`` takes the leaves one at a time and keeps only
one hash per level, so a month of millions of entries needs a few kilobytes. The period root is
SHA-256(previous period root ‖ tree head), with 32 zero bytes before the first period.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

FIRST_PREVIOUS_ROOT: Final = bytes(32)


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class TreeBuilder:
    """The Merkle tree head of leaves added in order, in O(log n) memory."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (leaves below, hash), sizes strictly falling
        self.size = 0

    def add(self, entry: bytes) -> None:
        self.add_all((entry,))

    def add_all(self, entries: Iterable[bytes]) -> None:
        """Each of ``entries`` as the next leaf, in order: closing a period adds a batch of the
        month's lines at a time, one call each."""
        stack, push, pop = self._stack, self._stack.append, self._stack.pop
        added = 0
        for entry in entries:
            size, digest = 1, leaf_hash(entry)
            while stack and stack[-1][0] == size:
                left_size, left = pop()
                size, digest = left_size + size, node_hash(left, digest)
            push((size, digest))
            added += 1
        self.size += added

    def head(self) -> bytes:
        if not self._stack:
            return hashlib.sha256(b"").digest()
        digest = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def tree_head(entries: Iterable[bytes]) -> bytes:
    builder = TreeBuilder()
    for entry in entries:
        builder.add(entry)
    return builder.head()


def period_root(previous_root: bytes, head: bytes) -> bytes:
    return hashlib.sha256(previous_root + head).digest()
