"""A set of integer keys (customer ids) kept as a bitmap, for an import's bookkeeping of which customers it touched.

An import of 100,000 customers noted them in eight Python sets (created, changed, each milestone reached, the ones
already stored): about 7 MB each, more than the rows it held at any moment. A bitmap holds 100,000 ids in 12.5 KB.
Keys past BITMAP_LIMIT (which no portal reaches; a file may name one) go in a plain set, so no key makes the
bitmap large.
"""
from __future__ import annotations

from typing import Iterable, Iterator

BITMAP_LIMIT = 1 << 24  # keys below this are bits: at most 2 MB


class Keys:
    """add, update (and |=), in, len and iteration in ascending order, like a set of non-negative ints."""

    __slots__ = ("bits", "others", "count")

    def __init__(self, keys: Iterable[int] = ()) -> None:
        self.bits = bytearray()
        self.others: set[int] = set()
        self.count = 0
        self.update(keys)

    def add(self, key: int) -> None:
        if not 0 <= key < BITMAP_LIMIT:
            if key not in self.others:
                self.others.add(key)
                self.count += 1
            return
        byte, mask = key >> 3, 1 << (key & 7)
        if byte >= len(self.bits):
            self.bits.extend(bytes(max(byte + 1 - len(self.bits), len(self.bits) // 2)))
        if not self.bits[byte] & mask:
            self.bits[byte] |= mask
            self.count += 1

    def update(self, keys: Iterable[int]) -> None:
        for key in keys:
            self.add(key)

    def __ior__(self, keys: Iterable[int]) -> Keys:
        self.update(keys)
        return self

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, int):
            return False
        if not 0 <= key < BITMAP_LIMIT:
            return key in self.others
        byte = key >> 3
        return byte < len(self.bits) and bool(self.bits[byte] & (1 << (key & 7)))

    def __len__(self) -> int:
        return self.count

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Keys):
            return self.count == other.count and list(self) == list(other)
        if isinstance(other, (set, frozenset)):
            return self.count == len(other) and all(key in self for key in other)
        return NotImplemented

    __hash__ = None  # mutable, as a set

    def __repr__(self) -> str:
        return f"Keys({list(self)!r})"

    def __iter__(self) -> Iterator[int]:
        negative = sorted(key for key in self.others if key < 0)
        yield from negative
        for byte, value in enumerate(self.bits):
            if value:
                for bit in range(8):
                    if value & (1 << bit):
                        yield (byte << 3) | bit
        yield from sorted(key for key in self.others if key >= 0)
